"""Tokenizers: characters or words, with the vocabulary stored inside the model file.

Both share one protocol (``Tokenizer``): ``encode``, ``decode``, ``split_partial``, ``to_dict``.
Id 0 is always ``<unk>``: a symbol never seen in training maps there instead of raising.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from rnnrepl.errors import CheckpointError

UNK = "<unk>"
EOL = "\n"

# A word-level chunk (whitespace-separated) splits as: opening punctuation, a word, closing
# punctuation — "end." -> "end" "." and "(see" -> "(" "see". A chunk that is not of that shape
# ("U.S.", "@-@", "<unk>", "...") stays whole, so already tokenized corpora (WikiText, PTB)
# keep exactly their own tokens.
_PUNCT = r"[^\w\s'’-]"
_WORD = r"[\w'’-]*\w[\w'’-]*"
_CHUNK = re.compile(rf"({_PUNCT}*)({_WORD})({_PUNCT}*)")
_WORD_RE = re.compile(_WORD)
_SPECIAL = re.compile(r"<[\w-]+>")  # <unk>, <eos>: markers that corpora already contain
_CLOSERS = frozenset(".,;:!?)]}")
_OPENERS = frozenset("([{")


class Tokenizer(Protocol):
    level: str
    tokens: list[str]
    lowercase: bool

    @property
    def size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def split_partial(self, text: str) -> tuple[list[int], str]: ...

    def to_dict(self) -> dict[str, Any]: ...


def _check_tokens(tokens: Any) -> list[str]:
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise CheckpointError("tokenizer tokens must be a non-empty list of strings")
    if tokens[0] != UNK:
        raise CheckpointError("tokenizer's first token must be <unk>")
    if len(set(tokens)) != len(tokens):
        raise CheckpointError("tokenizer has duplicate tokens")
    return tokens


class CharVocab:
    """Every Unicode code point seen in training is a token; id 0 is <unk>."""

    level = "char"

    def __init__(self, tokens: list[str], lowercase: bool = False) -> None:
        self.tokens = _check_tokens(tokens)
        if any(len(t) != 1 for t in tokens[1:]):
            raise CheckpointError("character tokenizer holds a token longer than one character")
        self.lowercase = lowercase
        self.index = {t: i for i, t in enumerate(tokens)}
        # Sorted code points -> ids, for vectorised encoding of large texts.
        points = np.array([ord(t) for t in tokens[1:]], dtype=np.int64)
        order = np.argsort(points)
        self._points = points[order]
        self._ids = (order + 1).astype(np.int32)

    @classmethod
    def build(cls, counts: Counter[str], lowercase: bool = False, **_: Any) -> CharVocab:
        symbols = sorted(ch for ch in counts if ch != "")
        return cls([UNK, *symbols], lowercase=lowercase)

    @staticmethod
    def count(text: str, counts: Counter[str], lowercase: bool = False) -> None:
        counts.update(text.lower() if lowercase else text)

    @property
    def size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        """Encode to int32 without a Python object per character (large corpora)."""
        if self.lowercase:
            text = text.lower()
        if not text:
            return np.zeros(0, dtype=np.int32)
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        points = points.astype(np.int64)
        if len(self._points) == 0:
            return np.zeros(len(points), dtype=np.int32)
        pos = np.searchsorted(self._points, points).clip(0, len(self._points) - 1)
        found = self._points[pos] == points
        return np.where(found, self._ids[pos], 0).astype(np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.token_text(i) for i in ids)

    def token_text(self, i: int) -> str:
        return "\ufffd" if i == 0 or not 0 <= i < len(self.tokens) else self.tokens[i]

    def split_partial(self, text: str) -> tuple[list[int], str]:
        return self.encode(text), ""

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "tokens": self.tokens, "lowercase": self.lowercase}


def word_pieces(line: str) -> list[str]:
    """Split one line (no newline inside) into word-level tokens."""
    out: list[str] = []
    for chunk in line.split():
        m = None if _SPECIAL.fullmatch(chunk) else _CHUNK.fullmatch(chunk)
        if m is None:
            out.append(chunk)
        else:
            out.extend(m.group(1))
            out.append(m.group(2))
            out.extend(m.group(3))
    return out


def iter_word_tokens(text: str) -> Iterable[str]:
    """Tokens of a text: the pieces of each line, then an end-of-line token per newline."""
    lines = text.split("\n")
    for n, line in enumerate(lines):
        yield from word_pieces(line)
        if n < len(lines) - 1:
            yield EOL


class WordVocab:
    """Words and punctuation; '\\n' is the end-of-line token; rare words map to <unk>."""

    level = "word"

    def __init__(self, tokens: list[str], lowercase: bool = False) -> None:
        self.tokens = _check_tokens(tokens)
        if any(t == "" or (t != EOL and any(c.isspace() for c in t)) for t in tokens[1:]):
            raise CheckpointError("word tokenizer holds an empty token or one with whitespace")
        self.lowercase = lowercase
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(
        cls,
        counts: Counter[str],
        lowercase: bool = False,
        min_freq: int = 1,
        max_vocab: int = 0,
    ) -> WordVocab:
        kept = [(w, c) for w, c in counts.items() if c >= min_freq and w not in (UNK, EOL)]
        kept.sort(key=lambda wc: (-wc[1], wc[0]))  # most frequent first, ties by spelling
        if max_vocab:
            kept = kept[: max(0, max_vocab - 2)]
        return cls([UNK, EOL, *(w for w, _ in kept)], lowercase=lowercase)

    @staticmethod
    def count(text: str, counts: Counter[str], lowercase: bool = False) -> None:
        counts.update(iter_word_tokens(text.lower() if lowercase else text))

    @property
    def size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        if self.lowercase:
            text = text.lower()
        get = self.index.get
        return [get(t, 0) for t in iter_word_tokens(text)]

    def encode_array(self, text: str) -> np.ndarray:
        return np.asarray(self.encode(text), dtype=np.int32)

    def token_text(self, i: int) -> str:
        return UNK if not 0 <= i < len(self.tokens) else self.tokens[i]

    def decode(self, ids: Iterable[int]) -> str:
        return join_words([self.token_text(i) for i in ids])

    def split_partial(self, text: str) -> tuple[list[int], str]:
        """(ids of the complete tokens, the half-typed last word or '')."""
        if not text or text[-1].isspace():
            return self.encode(text), ""
        head, _, last = text.rpartition("\n")
        pieces = word_pieces(last)
        partial = pieces[-1] if pieces else ""
        if not _WORD_RE.fullmatch(partial):
            return self.encode(text), ""
        cut = len(text) - len(partial)
        return self.encode(text[:cut]), partial

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "tokens": self.tokens, "lowercase": self.lowercase}


def join_words(tokens: Sequence[str]) -> str:
    """Readable text from word tokens that encodes back to the same tokens.

    A closing mark sticks to the word before it ("end."), an opening one to the word after it
    ("(see"); everything else is separated by one space, and end-of-line tokens by nothing.
    """
    out: list[str] = []
    glue = False  # may a closing mark attach to what was just written?
    pending_open = False  # was the last token an opener waiting for its word?
    for tok in tokens:
        if tok == EOL:
            out.append(EOL)
            glue = pending_open = False
            continue
        is_word = _WORD_RE.fullmatch(tok) is not None
        at_line_start = not out or out[-1] == EOL
        if tok in _CLOSERS and glue:
            out.append(tok)
            continue
        if not at_line_start and not (pending_open and is_word):
            out.append(" ")
        out.append(tok)
        pending_open = tok in _OPENERS
        glue = is_word
    return "".join(out)


def tokenizer_from_dict(data: Any) -> CharVocab | WordVocab:
    if not isinstance(data, dict):
        raise CheckpointError("tokenizer metadata must be a JSON object")
    unknown = set(data) - {"level", "tokens", "lowercase"}
    if unknown:
        raise CheckpointError(f"unknown tokenizer keys: {', '.join(sorted(unknown))}")
    lowercase = bool(data.get("lowercase", False))
    level = data.get("level")
    if level == "char":
        return CharVocab(data.get("tokens"), lowercase=lowercase)
    if level == "word":
        return WordVocab(data.get("tokens"), lowercase=lowercase)
    raise CheckpointError(f"unknown tokenizer level {level!r}")


def build_tokenizer(
    level: str, counts: Counter[str], lowercase: bool, min_freq: int, max_vocab: int
) -> CharVocab | WordVocab:
    if level == "char":
        return CharVocab.build(counts, lowercase=lowercase)
    return WordVocab.build(counts, lowercase=lowercase, min_freq=min_freq, max_vocab=max_vocab)


def counter_for(level: str):
    return CharVocab.count if level == "char" else WordVocab.count
