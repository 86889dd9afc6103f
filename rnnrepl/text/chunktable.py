"""A memo of chunk -> token ids that encodes a long list of chunks without a Python call per chunk.

Large corpora repeat their chunks (words, or " word" with its space for BPE): 100 MB of English
holds ~20 million chunks but only ~100 thousand distinct ones. Each distinct chunk is tokenized
once, by the slow exact rule, and numbered; a list of chunks then becomes entry numbers through
dict lookups at C speed (``map(dict.__getitem__, ...)``), and the entries' ids are gathered with
numpy. Any rule that tokenizes chunks independently encodes exactly as it does one chunk at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from itertools import chain

import numpy as np

# Distinct chunks kept between calls, and their characters; past either the memo starts
# afresh, so a corpus with ever new chunks (or long ones: text without spaces) costs bounded
# memory, ~100 MB at most.
MAX_ENTRIES = 1 << 18
MAX_CHARS = 1 << 24
# Characters that mark places in a text for str.split, the first one the text lacks: controls
# that are not whitespace (they keep a Latin-1 string narrow), then Unicode's noncharacters.
MARKS = [chr(c) for c in (*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F, *range(0xFDD0, 0xFDF0))]
WHITESPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()]  # str.split's; none above


def code_points(text: str) -> np.ndarray:
    """The code points of text, lone surrogates included, as uint32."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def unused_mark(text: str) -> str | None:
    """A character of MARKS that `text` does not hold (None if it holds them all)."""
    return next((m for m in MARKS if m not in text), None)


class _Numbering(dict):
    """chunk -> entry number; a chunk not seen yet gets the next number and waits in `new`."""

    def __init__(self, first: int) -> None:
        super().__init__()
        self.next = first
        self.chars = 0
        self.new: list[str] = []

    def __missing__(self, chunk: str) -> int:
        entry = self[chunk] = self.next
        self.next += 1
        self.chars += len(chunk)
        self.new.append(chunk)
        return entry


class ChunkTable:
    """Token ids of chunks, memoised; `tokenize` maps a list of new chunks to their id lists.
    Entries 0, 1, ... are `reserved` id lists that no chunk maps to by itself (see encode)."""

    def __init__(
        self,
        tokenize: Callable[[list[str]], Iterable[Sequence[int]]],
        reserved: Sequence[Sequence[int]] = (),
    ) -> None:
        self._tokenize = tokenize
        self._reserved = [list(ids) for ids in reserved]
        self._lock = threading.Lock()  # the REPL encodes from two threads
        self._reset()

    def _reset(self) -> None:
        self._numbers = _Numbering(len(self._reserved))
        # Filled up to _n_entries / _n_ids, with room to grow (doubling, not a copy per call).
        self._start = np.zeros(0, dtype=np.int64)  # entry -> first id in _pool
        self._length = np.zeros(0, dtype=np.int64)  # entry -> how many ids
        self._pool = np.zeros(0, dtype=np.int32)
        self._n_entries = self._n_ids = 0
        self._append(self._reserved)

    def encode(self, chunks: list[str], stand_in: tuple[str, int] | None = None) -> np.ndarray:
        """int32 ids of `chunks` in order. With `stand_in` (chunk, reserved entry), that chunk
        (a mark the text lacks) takes the reserved entry's ids."""
        with self._lock:
            if len(self._numbers) > MAX_ENTRIES or self._numbers.chars > MAX_CHARS:
                self._reset()
            try:
                entries = self._entries(chunks, stand_in)
            except BaseException:  # a chunk the rule refuses, Ctrl-C: numbers without ids
                self._reset()
                raise
            return self._gather(entries)

    def _entries(self, chunks: list[str], stand_in: tuple[str, int] | None) -> np.ndarray:
        entries = np.fromiter(map(self._numbers.__getitem__, chunks), np.int64, len(chunks))
        if stand_in is not None and stand_in[0] in self._numbers:
            entries[entries == self._numbers[stand_in[0]]] = stand_in[1]
        self._add_new()
        return entries

    def _add_new(self) -> None:
        new = self._numbers.new
        if new:
            self._numbers.new = []
            self._append(list(self._tokenize(new)))

    def _append(self, lists: list[Sequence[int]]) -> None:
        lengths = np.fromiter(map(len, lists), np.int64, len(lists))
        flat = np.fromiter(chain.from_iterable(lists), np.int32, int(lengths.sum()))
        n, m = self._n_entries, self._n_ids
        self._start = _room(self._start, n, len(lists))
        self._length = _room(self._length, n, len(lists))
        self._pool = _room(self._pool, m, len(flat))
        self._start[n : n + len(lists)] = m + np.cumsum(lengths) - lengths
        self._length[n : n + len(lists)] = lengths
        self._pool[m : m + len(flat)] = flat
        self._n_entries, self._n_ids = n + len(lists), m + len(flat)

    def _gather(self, entries: np.ndarray) -> np.ndarray:
        """The concatenated id lists of `entries` (a ragged gather, no Python loop)."""
        lengths = self._length[entries]
        if not len(entries) or bool((lengths == 1).all()):
            return self._pool[self._start[entries]]
        ends = np.cumsum(lengths)
        # output position j of entry k reads pool[start[k] + j - (ends[k] - lengths[k])]
        shift = np.repeat(self._start[entries] - (ends - lengths), lengths)
        return self._pool[np.arange(int(ends[-1])) + shift]


def _room(array: np.ndarray, used: int, more: int) -> np.ndarray:
    """`array` (its first `used` items kept) with room for `more`: doubled when it lacks it."""
    if used + more <= len(array):
        return array
    grown = np.empty(max(2 * len(array), used + more, 64), dtype=array.dtype)
    grown[:used] = array[:used]
    return grown
