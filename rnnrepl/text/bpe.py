"""Byte-level BPE: a Hugging Face `tokenizers` BPE model trained on the corpus, stored as JSON.

Byte-level means any text encodes: the 256 bytes are all in the base alphabet, so no text ever
maps to <unk>. Our id 0 is still <unk> (the rest of rnnrepl leaves id 0 out of every list and
sample); the Hugging Face ids are shifted by one, so no special token exists that a typed
"<unk>" could match. Pre-tokenization is GPT-2's: a word carries the space before it
(" cat"), and no token crosses a pre-token boundary, so a text cut just before a whitespace
character that follows a non-whitespace one encodes piecewise exactly as whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

import numpy as np

from rnnrepl.errors import CheckpointError
from rnnrepl.text.chunktable import WHITESPACE, ChunkTable, code_points, unused_mark

UNK = "<unk>"
MIN_VOCAB = 257  # <unk> and the 256 bytes
# A safe cut: just before a space or newline that follows a non-whitespace character (only
# those two: a rarer space-like character may be punctuation to the pre-tokenizer's regex).
SAFE_CUT = re.compile(r"(?<=\S)(?=[ \n])")
_IS_SPACE = np.zeros(0x3002, dtype=bool)  # code point (past 0x3000: the last) -> whitespace?
_IS_SPACE[[ord(c) for c in WHITESPACE]] = True
_EMPTY = 0  # the BPE memo's reserved entry: no ids


def default_vocab_size(chars: int) -> int:
    """The vocabulary size when --vocab-size is not given: clamp(chars // 200, 512, 8000).
    8000: the largest vocabulary that train/sizing.cutoffs keeps on a full softmax (BPE ids
    are in merge order, not the frequency order the frequency classes are cut by)."""
    return max(512, min(8000, chars // 200))


@lru_cache(maxsize=1)
def _byte_of() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character that stands for each byte."""
    from tokenizers import pre_tokenizers

    chars = pre_tokenizers.ByteLevel.alphabet()
    # The alphabet comes unordered; GPT-2's map sends printable bytes to themselves and the
    # others to U+0100 + n in byte order.
    printable = [b for b in range(256) if chr(b) in chars]
    others = [b for b in range(256) if chr(b) not in chars]
    table = {chr(b): b for b in printable}
    table.update({chr(256 + n): b for n, b in enumerate(others)})
    return table


def safe_chunks(text: str, size: int) -> Iterator[str]:
    """Slices of about `size` characters, cut only where encoding piecewise equals the whole."""
    start = 0
    while start < len(text):
        end = start + size
        if end >= len(text):
            yield text[start:]
            return
        cut = _last_cut(text, start, end) or _next_cut(text, end) or len(text)
        yield text[start:cut]
        start = cut


def space_pieces(text: str, mark: str) -> tuple[str, list[str]]:
    """(head, pieces): text == head + "".join(" " + p for p in pieces), each " " + p cut out at
    safe places (see SAFE_CUT), or `mark` (absent from text) where it was joined to the one before.

    str.split(" ") cuts before every space; the cuts after whitespace are not safe ("a  b" is
    "a", " ", " b" alone but "a", "  b" whole), so those pieces join the piece before them.
    """
    pieces = text.split(" ")
    points = code_points(text)
    spaces = np.flatnonzero(points == 0x20)  # spaces[k - 1] comes before pieces[k]
    # (before a space at 0: the last character; either answer is right, a cut at 0 cuts nothing)
    before = points[spaces - 1]
    unsafe = _IS_SPACE[np.minimum(before, len(_IS_SPACE) - 1)]
    joins = np.flatnonzero(unsafe) + 1  # pieces that join the one before
    head, rest = pieces[0], pieces[1:]
    if not len(joins):
        return head, rest
    firsts = joins[np.r_[True, joins[1:] != joins[:-1] + 1]] - 1
    lasts = joins[np.r_[joins[1:] != joins[:-1] + 1, True]]
    for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):
        joined = " ".join(pieces[a : b + 1])
        if a == 0:
            head = joined
        else:
            rest[a - 1] = joined
        rest[a:b] = [mark] * (b - a)
    return head, rest


def _last_cut(text: str, start: int, end: int) -> int | None:
    cut = None
    for m in SAFE_CUT.finditer(text, max(start + 1, end - 4096), end):
        cut = m.start()
    return cut


def _next_cut(text: str, end: int) -> int | None:
    m = SAFE_CUT.search(text, end)
    return m.start() if m else None


class BpeVocab:
    """Byte-level BPE over a Hugging Face tokenizer; ids shifted by one (id 0 = <unk>)."""

    level = "bpe"

    def __init__(self, hf_json: dict[str, Any], lowercase: bool = False) -> None:
        self.hf_json = _checked(hf_json)
        self.lowercase = lowercase
        self._hf = _hf_from(self.hf_json)
        self._pre = self._hf.pre_tokenizer
        byte_of = _byte_of()
        pieces = [self._hf.id_to_token(i) for i in range(self._hf.get_vocab_size())]
        self._bytes = [b""] + [bytes(byte_of[c] for c in p) for p in pieces]
        self.tokens = [UNK] + [readable(b) for b in self._bytes[1:]]
        self.index: dict[str, int] = {}  # display text -> id ("\n" is the start token)
        for i, t in enumerate(self.tokens):
            self.index.setdefault(t, i)
        self._table = ChunkTable(self._encode_new, reserved=[[]])

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, lowercase: bool = False) -> BpeVocab:
        """Learn merges from `texts` up to `vocab_size` tokens (counting <unk>); fewer when the
        text has no more pairs to merge."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        hf = Tokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=max(MIN_VOCAB, vocab_size) - 1,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=False,
        )
        cased = (t.lower() if lowercase else t for t in texts)
        hf.train_from_iterator(cased, trainer=trainer)
        return cls(json.loads(hf.to_str()), lowercase=lowercase)

    @property
    def size(self) -> int:
        return len(self.tokens)

    def cased(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        """int32 ids of `text`: cut at safe places, each distinct piece encoded once."""
        text = self.cased(text)
        mark = unused_mark(text)
        if mark is None:  # the text holds every mark character: encoded whole
            return self._encode_whole(text)
        head, pieces = space_pieces(text, mark)
        ids = self._table.encode(pieces, stand_in=(mark, _EMPTY))
        return np.concatenate([self._encode_whole(head), ids])

    def _encode_whole(self, text: str) -> np.ndarray:
        return np.asarray([i + 1 for i in self._hf.encode(text).ids], dtype=np.int32)

    def _encode_new(self, pieces: list[str]) -> list[list[int]]:
        # The pieces of space_pieces, each with its space. One call per piece: encode_batch was
        # no faster here (its threads find the other core busy), and threads once used make the
        # library warn in a process that forks later.
        encode = self._hf.encode
        return [[i + 1 for i in encode(" " + piece).ids] for piece in pieces]

    def token_bytes(self, i: int) -> bytes:
        return self._bytes[i] if 0 < i < len(self._bytes) else b""

    def token_text(self, i: int) -> str:
        return UNK if not 0 < i < len(self.tokens) else self.tokens[i]

    def decode(self, ids: Iterable[int]) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", "replace")

    def split_partial(self, text: str) -> tuple[list[int], str]:
        """(ids of the text before its last pre-token, that last pre-token): the typed piece
        that more typing may still change (" wor" of "hello wor", " " of "hello ")."""
        pieces = self._pre.pre_tokenize_str(text)  # offsets in characters
        if not pieces:
            return [], ""
        start = pieces[-1][1][0]
        return self.encode(text[:start]), text[start:]

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "lowercase": self.lowercase, "bpe": self.hf_json}


def readable(raw: bytes) -> str:
    """A token's text for display: its UTF-8 text, with a byte that is not (a piece of a
    character split across tokens) written as <0xNN>."""
    out: list[str] = []
    rest = raw
    while rest:
        try:
            out.append(rest.decode("utf-8"))
            break
        except UnicodeDecodeError as e:
            out.append(rest[: e.start].decode("utf-8"))
            out.append(f"<0x{rest[e.start]:02X}>")
            rest = rest[e.start + 1 :]
    return "".join(out)


def _checked(data: Any) -> dict[str, Any]:
    """The tokenizer JSON must be a plain byte-level BPE: nothing else is ever loaded."""
    if not isinstance(data, dict):
        raise CheckpointError("BPE tokenizer must be a JSON object")
    model, pre, dec = data.get("model"), data.get("pre_tokenizer"), data.get("decoder")
    kinds = [x.get("type") if isinstance(x, dict) else None for x in (model, pre, dec)]
    if kinds != ["BPE", "ByteLevel", "ByteLevel"] or data.get("added_tokens"):
        raise CheckpointError("BPE tokenizer is not a plain byte-level BPE")
    if data.get("normalizer") is not None or data.get("post_processor") is not None:
        raise CheckpointError("BPE tokenizer has a normalizer or post-processor")
    if pre.get("add_prefix_space") or not pre.get("use_regex", True):
        raise CheckpointError("BPE tokenizer's pre-tokenizer is not GPT-2's")
    return data


def _hf_from(data: dict[str, Any]):
    from tokenizers import Tokenizer

    try:
        hf = Tokenizer.from_str(json.dumps(data))
    except Exception as e:  # the library raises plain Exception on bad JSON
        raise CheckpointError(f"BPE tokenizer does not load: {e}") from None
    vocab = hf.get_vocab()
    if sorted(vocab.values()) != list(range(len(vocab))) or not set(_byte_of()) <= set(vocab):
        raise CheckpointError("BPE tokenizer's vocabulary has gaps or lacks some bytes")
    return hf


def bpe_from_dict(data: dict[str, Any]) -> BpeVocab:
    unknown = set(data) - {"level", "lowercase", "bpe"}
    if unknown:
        raise CheckpointError(f"unknown tokenizer keys: {', '.join(sorted(unknown))}")
    return BpeVocab(data.get("bpe"), lowercase=bool(data.get("lowercase", False)))
