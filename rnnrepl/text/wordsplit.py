"""The word-level splitting rule without a vocabulary, and its bulk form for large texts.

A text is cut at whitespace into chunks, and at each newline into lines; each chunk then splits
by the rule below. Large texts are counted and encoded per distinct chunk (see chunktable.py):
``str.split`` and ``collections.Counter`` do the per-chunk work in C.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from rnnrepl.text.chunktable import ChunkTable, unused_mark

EOL = "\n"
EOL_ENTRY = 0  # chunk_table's reserved entry for the end-of-line token
# Texts are split, counted and encoded in pieces of about this many characters, so that one
# call holds ~13 thousand chunk strings at a time, not 20 million for 100 MB (as fast as 1 Mi
# pieces on the busy test machine, and up to 1.5x faster in one measurement).
PIECE_CHARS = 1 << 16
_SPACE = re.compile(r"\s")

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


def text_pieces(text: str) -> Iterator[str]:
    """Slices of about PIECE_CHARS characters, each cut just after whitespace (so no chunk
    spans two of them, and each newline is in one)."""
    start, size = 0, PIECE_CHARS
    while len(text) - start > size:
        end = start + size
        cut = max(text.rfind(" ", start, end), text.rfind(EOL, start, end)) + 1
        if cut <= start:
            found = _SPACE.search(text, end)
            if found is None:
                break
            cut = found.end()
        yield text[start:cut]
        start = cut
    yield text[start:]


def count_chunks(text: str, chunk_counts: Counter[str]) -> int:
    """Add the chunks of `text` to chunk_counts; return its number of newlines."""
    for piece in text_pieces(text):
        chunks, mark = chunks_and_marks(piece)
        chunk_counts.update(chunks)
        if mark is not None and EOL in piece:  # the marks counted as chunks: take them out
            chunk_counts[mark] -= piece.count(EOL)
            if not chunk_counts[mark]:
                del chunk_counts[mark]
    return text.count(EOL)


def chunks_and_marks(text: str) -> tuple[list[str], str | None]:
    """The chunks of `text` with `mark` (a character it lacks) for each newline, and the mark.
    A text that holds every mark character gives its chunks alone, and None."""
    mark = unused_mark(text)
    if mark is None:
        return text.split(), None
    return text.replace(EOL, f" {mark} ").split(), mark


def count_words(texts: Iterable[str]) -> Counter[str]:
    """Word-token counts of `texts` (lowercased already where wanted): the chunks are counted,
    then each distinct chunk is split once."""
    chunk_counts: Counter[str] = Counter()
    newlines = sum(count_chunks(text, chunk_counts) for text in texts)
    counts: Counter[str] = Counter()
    for chunk, n in chunk_counts.items():
        for piece in chunk_pieces(chunk):
            counts[piece] += n
    if newlines:
        counts[EOL] += newlines
    return counts


def encode_words(text: str, table: ChunkTable, eol_id: int) -> np.ndarray:
    """int32 ids of `text` through a `chunk_table`: its chunks, and `eol_id` per newline."""
    parts = [_encode_piece(piece, table, eol_id) for piece in text_pieces(text)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _encode_piece(text: str, table: ChunkTable, eol_id: int) -> np.ndarray:
    chunks, mark = chunks_and_marks(text)
    if mark is not None:
        return table.encode(chunks, stand_in=(mark, EOL_ENTRY))
    parts = []  # a text that holds every mark character: line by line
    for n, line in enumerate(text.split(EOL)):
        parts += [np.array([eol_id] if n else [], dtype=np.int32), table.encode(line.split())]
    return np.concatenate(parts)


def chunk_table(tokens_of: Callable[[str], list[str]], index: dict[str, int]) -> ChunkTable:
    """A memo of chunk -> ids under a vocabulary's own chunk rule (unknown tokens -> 0); its
    reserved entry EOL_ENTRY is the end-of-line token."""

    def tokenize(chunks: list[str]) -> list[list[int]]:
        get = index.get
        return [[get(t, 0) for t in tokens_of(chunk)] for chunk in chunks]

    return ChunkTable(tokenize, reserved=[[index.get(EOL, 0)]])
