"""Distributions over the vocabulary, without model calls: a prediction's lists, <unk> left out
and the rest renormalised, the words a half-typed prefix begins, top-k lists."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Prediction:
    """What may follow a text (see ``Completer.predict``); distributions over the vocabulary."""

    partial: str  # the half-typed last word ('' at a word boundary, and always at char level)
    completions: Tensor | None  # words that begin with `partial`, renormalised; None: none do
    next: Tensor | None  # the next token after the text (after `partial` read as a whole word)
    unk: float = 0.0  # p(<unk>) left out of `next` before it was renormalised

    @property
    def first(self) -> Tensor:
        """The list shown first: the completions, else the next token."""
        return self.completions if self.completions is not None else self.next


def without_unk(probs: Tensor) -> tuple[Tensor, float]:
    """(probs with <unk> (id 0) removed and the rest renormalised, the p(<unk>) removed)."""
    unk = float(probs[0])
    rest = probs.clone()
    rest[0] = 0.0
    total = rest.sum()
    return (rest / total if total > 0 else rest), unk


class Vocabulary:
    """A tokenizer's vocabulary as the distributions see it: prefix search and top-k texts."""

    def __init__(self, tokenizer, device: torch.device) -> None:
        self.tok = tokenizer
        self.device = device
        self._sorted: list[tuple[str, int]] | None = None  # (token, id), built on first use
        self._index: dict[str, int] | None = None  # token -> id, built on first use

    def _tokens_sorted(self) -> list[tuple[str, int]]:
        if self._sorted is None:
            self._sorted = sorted((t, i) for i, t in enumerate(self.tok.tokens) if i)
        return self._sorted

    def prefix_ids(self, partial: str) -> Tensor:
        """Ids of the tokens (never <unk>) that start with `partial`, by binary search."""
        tokens = self._tokens_sorted()
        p = partial.lower() if self.tok.lowercase else partial
        lo = bisect.bisect_left(tokens, (p, -1))
        hi = bisect.bisect_left(tokens, (p + "\U0010ffff", -1), lo)
        ids = [i for t, i in tokens[lo:hi] if t.startswith(p)]
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def prefix_mask(self, partial: str) -> Tensor:
        mask = torch.zeros(self.tok.size, dtype=torch.bool, device=self.device)
        mask[self.prefix_ids(partial)] = True
        return mask

    def completions(self, probs: Tensor, partial: str) -> Tensor | None:
        """`probs` restricted to the words that begin with `partial`, renormalised (or None)."""
        return self._restricted(probs, self.prefix_ids(partial))

    def spelling_starts(self, probs: Tensor, partial: str) -> Tensor | None:
        """`probs` restricted to the tokens that are a proper prefix of `partial` (where a
        spelling of it in several tokens begins), renormalised (or None)."""
        if self._index is None:
            self._index = dict(self._tokens_sorted())
        index = self._index
        ids = [index[partial[:k]] for k in range(1, len(partial)) if partial[:k] in index]
        return self._restricted(probs, torch.tensor(ids, dtype=torch.long, device=self.device))

    def _restricted(self, probs: Tensor, idx: Tensor) -> Tensor | None:
        kept = probs[idx]
        total = kept.sum()
        if not len(idx) or not total > 0:
            return None
        return torch.zeros_like(probs).index_copy_(0, idx, kept / total)

    def top_of(self, probs: Tensor, k: int) -> list[tuple[str, float]]:
        """The k most likely tokens of `probs` as (text, probability), zeros left out."""
        k = max(1, min(k, probs.shape[-1]))
        values, idx = probs.topk(k)
        return [
            (self.tok.token_text(int(i)), float(v))
            for v, i in zip(values.tolist(), idx.tolist(), strict=True)
            if v > 0
        ]
