"""Surprisal buckets: how a token's rank or probability under the model falls into four
colours, 0 = the most expected. No torch here: the REPL's UI thread reads the labels.

By rank, as GLTR does: the token was the model's most likely (rank 1), in its top 10, top 100,
or beyond (word and BPE models); top 1, 3, 10 or beyond for characters (a character model
has some 60-100 tokens, so top 100 would be everything). Or by probability: p >= 0.5, >= 0.1,
>= 0.01, or below.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("rank", "prob")


@dataclass(frozen=True)
class Scheme:
    """How ranks or probabilities fall into four buckets, 0 = most expected."""

    kind: str  # "rank" or "prob"
    limits: tuple[float, float, float]  # rank <= limit, or prob >= limit, for buckets 0..2

    def bucket(self, rank: int, prob: float) -> int:
        if self.kind == "rank":
            return next((i for i, top in enumerate(self.limits) if rank <= top), 3)
        return next((i for i, low in enumerate(self.limits) if prob >= low), 3)

    @property
    def labels(self) -> tuple[str, str, str, str]:
        a, b, c = self.limits
        if self.kind == "rank":
            return (f"top {a:g}", f"top {b:g}", f"top {c:g}", f"beyond {c:g}")
        return (f"p ≥ {a:g}", f"p ≥ {b:g}", f"p ≥ {c:g}", f"p < {c:g}")

    @property
    def short_labels(self) -> tuple[str, str, str, str]:
        """The labels for a status line: '1 ≤3 ≤10 >10', '≥.5 ≥.1 ≥.01 <.01'."""
        a, b, c = self.limits
        if self.kind == "rank":
            return (f"{a:g}", f"≤{b:g}", f"≤{c:g}", f">{c:g}")
        a, b, c = (f"{x:g}".removeprefix("0") for x in self.limits)
        return (f"≥{a}", f"≥{b}", f"≥{c}", f"<{c}")


def scheme_for(kind: str, level: str) -> Scheme:
    """The buckets for `kind` ("rank" or "prob") at a tokenizer level."""
    if kind == "prob":
        return Scheme("prob", (0.5, 0.1, 0.01))
    if kind != "rank":
        raise ValueError(f"colour by rank or prob, not {kind!r}")
    return Scheme("rank", (1, 3, 10) if level == "char" else (1, 10, 100))
