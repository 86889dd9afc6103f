"""Tokenizers: characters or words, with the vocabulary stored inside the model file.

Both share one protocol (``Tokenizer``): ``encode``, ``decode``, ``split_partial``, ``to_dict``.
Id 0 is always ``<unk>``: a symbol never seen in training maps there instead of raising.
The byte-level BPE tokenizer (bpe.py) shares the protocol; tokenizer_from_dict loads all three.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from rnnrepl.errors import CheckpointError
from rnnrepl.text.bpe import BpeVocab, bpe_from_dict
from rnnrepl.text.chunktable import code_points
from rnnrepl.text.wordsplit import SPECIAL as _SPECIAL
from rnnrepl.text.wordsplit import SPECIAL_SPLIT as _SPECIAL_SPLIT
from rnnrepl.text.wordsplit import (
    chunk_parts,
    chunk_pieces,
    chunk_table,
    count_words,
    encode_words,
    is_word,
    split_clitics,
)

UNK = "<unk>"
EOL = "\n"

# The splitting rule itself (version 2) is in wordsplit.py.
WORD_VERSION = 2
_NUMBER_SEP = re.compile(r"(?<=\d)([,.])(?=\d)")  # 1,000 and 3.5 -> WikiText's @,@ and @.@
_AT_JOINERS = {"@-@": "-", "@,@": ",", "@.@": "."}
_CLOSERS = frozenset(".,;:!?)]}%")
_OPENERS = frozenset("([{")
_MAX_GLUE = 64  # a glued chunk longer than this is written with a space (keeps joining linear)


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
        # Code point -> id, for vectorised encoding; the last entry (0) stands for every
        # code point past the largest known one.
        points = np.array([ord(t) for t in tokens[1:]], dtype=np.int64)
        self._ids = np.zeros(int(points.max(initial=-1)) + 2, dtype=np.int32)
        self._ids[points] = np.arange(1, len(tokens), dtype=np.int32)

    @classmethod
    def build(cls, counts: Counter[str], lowercase: bool = False, **_: Any) -> CharVocab:
        symbols = sorted(ch for ch in counts if ch != "")
        return cls([UNK, *symbols], lowercase=lowercase)

    @staticmethod
    def count(text: str, counts: Counter[str], lowercase: bool = False) -> None:
        points = code_points(text.lower() if lowercase else text)
        found, n = np.unique(points, return_counts=True)
        counts.update(dict(zip(map(chr, found.tolist()), n.tolist(), strict=True)))

    @property
    def size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        """Encode to int32 without a Python object per character (large corpora)."""
        if self.lowercase:
            text = text.lower()
        return self._ids[np.minimum(code_points(text), len(self._ids) - 1)]

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
    return [piece for chunk in line.split() for piece in chunk_pieces(chunk)]


def iter_word_tokens(text: str) -> Iterable[str]:
    """Tokens of a text: the pieces of each line, then an end-of-line token per newline."""
    lines = text.split("\n")
    for n, line in enumerate(lines):
        yield from word_pieces(line)
        if n < len(lines) - 1:
            yield EOL


class WordVocab:
    """Words and punctuation; '\\n' is the end-of-line token; rare words map to <unk>.

    Encoding knows the vocabulary: a chunk or word that is itself a token stays whole (so models
    saved before version 2, whose tokens include "don't", keep their tokens), and a vocabulary
    of an already tokenized corpus gets its conventions applied to typed text — "well-known" ->
    "well" "@-@" "known" and "1,000" -> "1" "@,@" "000" where "@-@"/"@,@" are tokens, "don't"
    -> "do" "n't" where only PTB's "n't" is.
    """

    level = "word"

    def __init__(self, tokens: list[str], lowercase: bool = False, version: int = WORD_VERSION):
        self.tokens = _check_tokens(tokens)
        if any(t == "" or (t != EOL and any(c.isspace() for c in t)) for t in tokens[1:]):
            raise CheckpointError("word tokenizer holds an empty token or one with whitespace")
        if version not in (1, WORD_VERSION):
            raise CheckpointError(
                f"word tokenizer version {version!r} is not supported (this rnnrepl reads 1 and "
                f"{WORD_VERSION}): upgrade rnnrepl"
            )
        self.lowercase = lowercase
        self.version = version
        self.index = {t: i for i, t in enumerate(tokens)}
        self._at = {t for t in _AT_JOINERS if t in self.index}
        self._table = chunk_table(self.chunk_tokens, self.index)

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
        counts.update(count_words([text.lower() if lowercase else text]))

    @property
    def size(self) -> int:
        return len(self.tokens)

    def pieces(self, text: str) -> list[str]:
        """The token strings of `text`, unknown ones as they are written (what encode_array
        numbers; text/spans.py finds them in the text)."""
        text = self.cased(text)
        out: list[str] = []
        for n, line in enumerate(text.split("\n")):
            if n:
                out.append(EOL)
            for chunk in line.split():
                out.extend(self.chunk_tokens(chunk))
        return out

    def chunk_tokens(self, chunk: str) -> list[str]:
        """Tokens of one whitespace-free chunk (already lowercased where the model is)."""
        if chunk in self.index or chunk.isalnum() or _SPECIAL.fullmatch(chunk):
            return [chunk]
        if "<" in chunk and _SPECIAL.search(chunk):  # "<unk>," -> "<unk>" ","
            return [
                t for part in _SPECIAL_SPLIT.split(chunk) if part for t in self.chunk_tokens(part)
            ]
        if self._at and _NUMBER_SEP.search(chunk):
            spaced = _NUMBER_SEP.sub(lambda m: f" @{m.group(1)}@ ", chunk)
            return [t for part in spaced.split() for t in self.chunk_tokens(part)]
        parts = chunk_parts(chunk)
        if parts is None:
            return [chunk]
        lead, word, trail = parts
        return [*lead, *self._word_tokens(word), *trail]

    def _word_tokens(self, word: str) -> list[str]:
        if word in self.index:
            return [word]
        if "@-@" in self._at and "-" in word:
            parts = word.split("-")
            out = self._word_tokens(parts[0]) if parts[0] else []
            for part in parts[1:]:
                out += ["@-@", *(self._word_tokens(part) if part else [])]
            return out
        stem, tail = word[:-3], word[-3:]
        if tail.lower() in ("n't", "n’t") and stem and tail in self.index and stem in self.index:
            return [stem, tail]  # PTB's "do n't"
        return split_clitics(word)

    def cased(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        """int32 ids of `text`, each distinct chunk tokenized once (see wordsplit.py)."""
        return encode_words(self.cased(text), self._table, self.index.get(EOL, 0))

    def token_text(self, i: int) -> str:
        return UNK if not 0 <= i < len(self.tokens) else self.tokens[i]

    def decode(self, ids: Iterable[int]) -> str:
        return join_words([self.token_text(i) for i in ids], self)

    def split_partial(self, text: str) -> tuple[list[int], str]:
        """(ids of the complete tokens, the half-typed last word or '')."""
        if not text or text[-1].isspace():
            return self.encode(text), ""
        chunk = text.rsplit(None, 1)[-1]
        cased = self.cased(chunk)
        cased = cased if len(cased) == len(chunk) else chunk
        last = self.chunk_tokens(cased)[-1]
        if not is_word(last) or not cased.endswith(last):
            return self.encode(text), ""
        partial = chunk[len(chunk) - len(last) :]
        cut = len(text) - len(partial)
        return self.encode(text[:cut]), partial

    def to_dict(self) -> dict[str, Any]:
        data = {"level": self.level, "tokens": self.tokens, "lowercase": self.lowercase}
        return data if self.version == 1 else data | {"version": self.version}


class Joiner:
    """Writes word tokens as text is written, one token at a time (decode and streaming alike).

    A token gets a space before it unless it is closing punctuation or a clitic ("'s", "n't")
    after a word, follows an opening bracket or quote, or is a WikiText joiner ("@-@" -> "-",
    with the next word glued on). A token is glued on only if the glued chunk encodes back to
    the same tokens, so decode(ids) always encodes back to ids. `line` is the text already
    written on the current line (streaming continues it).
    """

    def __init__(self, vocab: WordVocab | None = None, line: str = "") -> None:
        self.vocab = vocab or WordVocab([UNK])
        self.space = bool(line) and not line[-1].isspace()
        self.chunk = self.vocab.cased(line.rsplit(None, 1)[-1]) if self.space else ""
        self.tokens = self.vocab.chunk_tokens(self.chunk) if self.chunk else []
        self.quotes_open = line.count('"') % 2 == 1

    def push(self, tok: str) -> str:
        """The text that token `tok` adds."""
        if tok == EOL:
            self.chunk, self.tokens, self.quotes_open, self.space = "", [], False, False
            return EOL
        text = _AT_JOINERS.get(tok, tok)
        glued = self.chunk + text
        if self.tokens and len(glued) <= _MAX_GLUE and self._wants_glue(tok):
            # "1" "@,@" is only read back as such before a digit: checked with one ("1,0").
            digit = ["0"] if tok in ("@,@", "@.@") else []
            if self.vocab.chunk_tokens(glued + "".join(digit)) == [*self.tokens, tok, *digit]:
                self._took(glued, [*self.tokens, tok])
                return text
        out = " " + tok if self.space else tok
        self._took(tok, [tok])
        return out

    def _took(self, chunk: str, tokens: list[str]) -> None:
        if tokens[-1] == '"':
            self.quotes_open = not self.quotes_open
        self.chunk, self.tokens, self.space = chunk, tokens, True

    def _wants_glue(self, tok: str) -> bool:
        prev = self.tokens[-1]
        closed = prev == '"' and not self.quotes_open
        after_word = is_word(prev) or prev in _CLOSERS or closed or bool(_SPECIAL.fullmatch(prev))
        if prev in _OPENERS or (prev == '"' and self.chunk == '"' and self.quotes_open):
            return tok not in _CLOSERS  # "(see", "\"see"
        if prev in _AT_JOINERS and self.chunk[-1:] in "-,.":
            return True  # "well-" + "known"
        if tok in _CLOSERS or tok in _AT_JOINERS:
            return after_word
        if tok == '"':
            return self.quotes_open  # the closing quote of a quotation
        return (tok[:1] in "'’" or tok.lower() in ("n't", "n’t")) and is_word(prev)


def join_words(tokens: Sequence[str], vocab: WordVocab | None = None) -> str:
    """Readable text from word tokens that encodes back to the same tokens (with `vocab`)."""
    joiner = Joiner(vocab)
    return "".join(joiner.push(tok) for tok in tokens)


def tokenizer_from_dict(data: Any) -> CharVocab | WordVocab | BpeVocab:
    if not isinstance(data, dict):
        raise CheckpointError("tokenizer metadata must be a JSON object")
    if data.get("level") == "bpe":
        return bpe_from_dict(data)
    unknown = set(data) - {"level", "tokens", "lowercase", "version"}
    if unknown:
        raise CheckpointError(f"unknown tokenizer keys: {', '.join(sorted(unknown))}")
    lowercase = bool(data.get("lowercase", False))
    level = data.get("level")
    if level == "char":
        return CharVocab(data.get("tokens"), lowercase=lowercase)
    if level == "word":  # files saved before the version key was added hold version 1
        return WordVocab(data.get("tokens"), lowercase=lowercase, version=data.get("version", 1))
    raise CheckpointError(f"unknown tokenizer level {level!r}")


def build_tokenizer(
    level: str, counts: Counter[str], lowercase: bool, min_freq: int, max_vocab: int
) -> CharVocab | WordVocab:
    if level == "char":
        return CharVocab.build(counts, lowercase=lowercase)
    return WordVocab.build(counts, lowercase=lowercase, min_freq=min_freq, max_vocab=max_vocab)


def counter_for(level: str):
    return CharVocab.count if level == "char" else WordVocab.count
