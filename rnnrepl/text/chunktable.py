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

import numpy as np

# Distinct chunks kept between calls (~200 bytes each); past this the memo starts afresh, so a
# corpus with ever new chunks costs bounded memory.
MAX_ENTRIES = 1 << 18


class _Numbering(dict):
    """chunk -> entry number; a chunk not seen yet gets the next number and waits in `new`."""

    def __init__(self) -> None:
        super().__init__()
        self.new: list[str] = []

    def __missing__(self, chunk: str) -> int:
        entry = self[chunk] = len(self)
        self.new.append(chunk)
        return entry


class ChunkTable:
    """Token ids of chunks, memoised; `tokenize` maps a list of new chunks to their id lists."""

    def __init__(self, tokenize: Callable[[list[str]], Iterable[Sequence[int]]]) -> None:
        self._tokenize = tokenize
        self._lock = threading.Lock()  # the REPL encodes from two threads
        self._reset()

    def _reset(self) -> None:
        self._numbers = _Numbering()
        self._start = np.zeros(0, dtype=np.int64)  # entry -> first id in _pool
        self._length = np.zeros(0, dtype=np.int64)  # entry -> how many ids
        self._pool = np.zeros(0, dtype=np.int32)

    def encode(
        self, chunks: Iterable[str], count: int, eols: np.ndarray | None = None, eol_id: int = 0
    ) -> np.ndarray:
        """int32 ids of `count` chunks in order; with `eols` (ascending positions in that list),
        `eol_id` is inserted before the chunk at each position (an end of line)."""
        with self._lock:
            if len(self._numbers) > MAX_ENTRIES:
                self._reset()
            entries = np.fromiter(map(self._numbers.__getitem__, chunks), np.int64, count)
            self._add_new()
            ids = self._gather(entries)
            if eols is None or not len(eols):
                return ids
            return np.insert(ids, self._id_positions(entries, eols), eol_id)

    def _add_new(self) -> None:
        new = self._numbers.new
        if not new:
            return
        self._numbers.new = []
        lists = list(self._tokenize(new))
        lengths = np.fromiter(map(len, lists), np.int64, len(lists))
        flat = np.fromiter((i for ids in lists for i in ids), np.int32, int(lengths.sum()))
        starts = len(self._pool) + np.cumsum(lengths) - lengths
        self._start = np.concatenate([self._start, starts])
        self._length = np.concatenate([self._length, lengths])
        self._pool = np.concatenate([self._pool, flat])

    def _gather(self, entries: np.ndarray) -> np.ndarray:
        """The concatenated id lists of `entries` (a ragged gather, no Python loop)."""
        lengths = self._length[entries]
        if not len(entries) or bool((lengths == 1).all()):
            return self._pool[self._start[entries]]
        ends = np.cumsum(lengths)
        # output position j of entry k reads pool[start[k] + j - (ends[k] - lengths[k])]
        shift = np.repeat(self._start[entries] - (ends - lengths), lengths)
        return self._pool[np.arange(int(ends[-1])) + shift]

    def _id_positions(self, entries: np.ndarray, eols: np.ndarray) -> np.ndarray:
        """Chunk positions -> positions in the id array (chunks may have 0 or several ids)."""
        before = np.concatenate([[0], np.cumsum(self._length[entries])])
        return before[eols]
