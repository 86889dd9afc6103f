"""Cross entropy in the units people read: nats (what training minimises), bits, perplexity.

The one place that converts: bits = nats / ln 2 (bits per character at the char level),
perplexity = exp(nats). A base module (no torch, no UI), so every layer may use it.
"""

from __future__ import annotations

import math

LN2 = math.log(2.0)


def bits(nats: float) -> float:
    """Nats to bits: bits per token (per character at the char level)."""
    return nats / LN2


def bits_per_character(mean_nats: float, tokens: int, characters: int) -> float:
    """Bits per character of a text: the bits of all its `tokens` (mean_nats each) over the
    `characters` of the text scored, so every level is on one scale (at the char level,
    where tokens are the characters, it is bits(mean_nats)). NaN for a text of no characters."""
    if characters <= 0:
        return math.nan
    return bits(mean_nats) * tokens / characters


def perplexity(nats: float) -> float:
    """exp(nats); inf past the largest float (a mean loss above ~709.78 nats), never an
    OverflowError."""
    try:
        return math.exp(nats)
    except OverflowError:
        return math.inf


def level_figure(nats: float, level: str) -> tuple[str, float]:
    """The figure users of a level expect: ("bpc", bits) for characters, ("ppl", perplexity)
    for words."""
    return ("bpc", bits(nats)) if level == "char" else ("ppl", perplexity(nats))


def finite_or_none(value: float) -> float | None:
    """A figure for JSON, which has no inf or NaN: None for those."""
    return value if math.isfinite(value) else None
