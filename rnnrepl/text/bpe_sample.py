"""The text a BPE vocabulary is learnt from: the whole corpus up to SAMPLE_CHARS characters, else
a sample of that size, so that learning takes bounded memory whatever the corpus size.

`tokenizers`' trainer keeps what it counted of every text (about 1.5 bytes per byte of text
here), so a 2 GB corpus would need 3 GB. The sample takes from every file its share of
SAMPLE_CHARS in proportion to its size, as windows of at most WINDOW_CHARS spread evenly over
the file, each trimmed to safe cuts (no word is cut in two). It depends on the corpus alone:
the same corpus always gives the same sample, and so the same vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from rnnrepl.text.bpe import SAFE_CUT, safe_chunks
from rnnrepl.text.corpus_scan import ScannedCorpus
from rnnrepl.text.streaming import safe_pieces

SAMPLE_CHARS = 100_000_000
WINDOW_CHARS = 1 << 20


@dataclass
class BpeSample:
    """The texts to learn from, and once they are read, how much of the corpus they held."""

    scanned: ScannedCorpus
    lowercase: bool
    budget: int = SAMPLE_CHARS
    window: int = WINDOW_CHARS
    chars: int = 0  # characters given so far
    windows: int = 0  # windows given so far (0: the whole corpus)

    @property
    def whole(self) -> bool:
        return self.scanned.report.chars <= self.budget

    def texts(self) -> Iterator[str]:
        """Texts of at most 1 MiB characters (the trainer's memory grows with their length)."""
        if self.whole:  # as before sampling existed: the same texts, the same vocabulary
            pieces = safe_pieces(self.scanned.pieces(), "bpe", self.lowercase)
            for piece in pieces:
                for chunk in safe_chunks(piece, WINDOW_CHARS):
                    self.chars += len(chunk)
                    yield chunk
            return
        for text in self._window_texts():
            self.chars += len(text)
            self.windows += 1
            yield text

    def to_dict(self) -> dict[str, int]:
        return {"chars": self.chars, "of": self.scanned.report.chars, "windows": self.windows}

    def _window_texts(self) -> Iterator[str]:
        ends = self.scanned.report.ends
        starts = [0, *ends[:-1]]
        for i, pieces in self.scanned.file_texts():
            size = ends[i] - starts[i]
            share = self.budget * size // self.scanned.report.chars
            yield from cut_windows(pieces, size, windows(size, share, self.window))


def windows(size: int, share: int, window: int = WINDOW_CHARS) -> list[tuple[int, int]]:
    """[start, end) ranges of a file of `size` characters: `share` characters in all, as k
    windows of at most `window`, each centred in its k-th of the file."""
    if share <= 0 or size <= 0:
        return []
    k = math.ceil(share / window)
    out = []
    for j in range(k):
        a, b = j * size // k, (j + 1) * size // k
        length = share // k + (j < share % k)
        start = a + (b - a - length) // 2
        out.append((start, start + length))
    return out


def cut_windows(pieces: Iterator[str], size: int, ranges: list[tuple[int, int]]) -> Iterator[str]:
    """The text of each range of the file read as `pieces`, trimmed to safe cuts (a range's
    edge at the file's start or end is kept)."""
    pos, parts, todo = 0, [], iter(ranges)
    current = next(todo, None)
    for piece in pieces:
        while current is not None and current[0] < pos + len(piece):
            start, end = current
            parts.append(piece[max(start - pos, 0) : end - pos])
            if end > pos + len(piece):
                break  # the range goes on in the next piece
            if text := _trimmed("".join(parts), start > 0, end < size):
                yield text
            parts, current = [], next(todo, None)
        pos += len(piece)  # (read to the end all the same: reading checks the file's size)


def _trimmed(text: str, cut_head: bool, cut_tail: bool) -> str:
    """`text` from its first safe cut to its last one near its end (only at the ends asked),
    or whole where there is none (a text without spaces)."""
    start, end = 0, len(text)
    if cut_head and (first := SAFE_CUT.search(text)):
        start = first.start()
    if cut_tail:
        for m in SAFE_CUT.finditer(text, max(start, len(text) - 4096)):
            end = m.start()
    return text[start:end]
