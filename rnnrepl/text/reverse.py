"""Backward language models (Flair's recipe) read every text reversed: a file's text as a whole,
after decoding, code point by code point (a combining mark then comes before its base, an astral
character stays one character). Training and every command that feeds a backward model text use
this one rule, so the figures agree."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module at start-up: numpy comes when it is used
    import numpy as np


def reverse_text(text: str) -> str:
    """`text` read right to left, by code points."""
    return text[::-1]


def reversed_ids(pieces: Iterable[str], encode: Callable[[str], np.ndarray]) -> np.ndarray:
    """The ids of the text of `pieces` (one file, cut where encoding piecewise equals encoding
    whole) reversed as a whole: each piece reversed and encoded, the pieces in reverse order."""
    import numpy as np

    parts = [encode(reverse_text(piece)) for piece in pieces]
    parts.reverse()
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
