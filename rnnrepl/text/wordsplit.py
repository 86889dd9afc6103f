"""The word-level splitting rule without a vocabulary, and its bulk form for large texts.

A text is cut at whitespace into chunks, and at each newline into lines; each chunk then splits
by the rule below. Large texts are counted and encoded per distinct chunk (see chunktable.py):
``str.split`` and ``collections.Counter`` do the per-chunk work in C.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from itertools import chain

import numpy as np

from rnnrepl.text.chunktable import ChunkTable

EOL = "\n"

# A word-level chunk (whitespace-separated) splits as: opening punctuation, a word, closing
# punctuation — "end." -> "end" "." and "(see" -> "(" "see". A chunk that is not of that shape
# ("U.S.", "@-@", "<unk>", "...") stays whole, so already tokenized corpora (WikiText, PTB)
# keep exactly their own tokens. Version 2 also splits a word before each apostrophe that
# follows a letter, as WikiText does: "don't" -> "don" "'t", "it's" -> "it" "'s" (PTB's "n't"
# stays whole). Both are found by linear scans: a backtracking regex over the whole chunk took
# quadratic time on a long run without spaces.
_PUNCT_RUN = re.compile(r"[^\w\s'’-]*")
_WORDISH = re.compile(r"[\w'’-]*")
_LETTER = re.compile(r"\w")
_CLITIC = re.compile(r"(?<=\w)(?=['’])")
SPECIAL = re.compile(r"<[\w-]+>")  # <unk>, <eos>: markers that corpora already contain
SPECIAL_SPLIT = re.compile(r"(<[\w-]+>)")


def is_word(text: str) -> bool:
    """Letters, digits, apostrophes and hyphens with at least one letter or digit."""
    return _WORDISH.fullmatch(text) is not None and _LETTER.search(text) is not None


def chunk_parts(chunk: str) -> tuple[str, str, str] | None:
    """(opening punctuation, word, closing punctuation) of a chunk, or None if not that shape."""
    lead = _PUNCT_RUN.match(chunk).end()
    trail = len(chunk) - _PUNCT_RUN.match(chunk[::-1]).end()
    word = chunk[lead:trail]
    if lead >= trail or not is_word(word):
        return None
    return chunk[:lead], word, chunk[trail:]


def split_clitics(word: str) -> list[str]:
    """ "don't" -> ["don", "'t"] (WikiText's own split); "n't" and "'s" alone stay whole."""
    if word.lower() in ("n't", "n’t"):
        return [word]
    return _CLITIC.split(word)


def chunk_pieces(chunk: str) -> list[str]:
    """The tokens of one whitespace-free chunk under the version-2 rule (no vocabulary)."""
    if chunk.isalnum() or SPECIAL.fullmatch(chunk):  # isalnum: the common case, fast
        return [chunk]
    if "<" in chunk and SPECIAL.search(chunk):  # "<unk>," -> "<unk>" ","
        return [t for part in SPECIAL_SPLIT.split(chunk) if part for t in chunk_pieces(part)]
    parts = chunk_parts(chunk)
    if parts is None:
        return [chunk]
    lead, word, trail = parts
    return [*lead, *split_clitics(word), *trail]


def count_chunks(text: str, chunk_counts: Counter[str]) -> int:
    """Add the chunks of `text` to chunk_counts; return its number of newlines."""
    lines = text.split(EOL)
    chunk_counts.update(chain.from_iterable(map(str.split, lines)))
    return len(lines) - 1


def add_pieces(chunk_counts: Counter[str], newlines: int, counts: Counter[str]) -> None:
    """Add the word tokens of counted chunks (and the end-of-line tokens) to counts."""
    for chunk, n in chunk_counts.items():
        for piece in chunk_pieces(chunk):
            counts[piece] += n
    if newlines:
        counts[EOL] += newlines


def encode_lines(text: str, table: ChunkTable, eol_id: int) -> np.ndarray:
    """int32 ids of `text`: its chunks through `table`, `eol_id` for each newline."""
    per_line = list(map(str.split, text.split(EOL)))
    ends = np.cumsum(np.fromiter(map(len, per_line), np.int64, len(per_line)))
    return table.encode(chain.from_iterable(per_line), int(ends[-1]), ends[:-1], eol_id)


def chunk_table(tokens_of: Callable[[str], list[str]], index: dict[str, int]) -> ChunkTable:
    """A memo of chunk -> ids under a vocabulary's own chunk rule (unknown tokens -> 0)."""

    def tokenize(chunks: list[str]) -> list[list[int]]:
        get = index.get
        return [[get(t, 0) for t in tokens_of(chunk)] for chunk in chunks]

    return ChunkTable(tokenize)
