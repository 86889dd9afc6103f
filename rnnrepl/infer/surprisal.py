"""Surprisal colours: how expected each token of a text was under the model (its rank, 1 =
the most likely, and its probability), and the bucket that colours it (``buckets.py``).

``Surprisal`` keeps the ranks of the REPL's text as it is typed: a keystroke costs the new
tokens only. The rank of a typed token comes from the distribution the panel computed before
it was typed (no model call); a paste or an edit re-feeds from the nearest cached state.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnrepl.infer.buckets import Scheme
from rnnrepl.infer.prefix_cache import FEED_LIMIT, PrefixCache, Superseded, common_prefix
from rnnrepl.infer.runner import ModelRunner
from rnnrepl.text.spans import Span, token_spans

CHUNK = 256  # positions per batched model call (each gives a full-vocabulary row)
# Only the last LIMIT tokens of a long text are coloured (older ones stay plain): the tokens the
# prefix cache reads a long paste from (see prefix_cache.FEED_LIMIT).
LIMIT = FEED_LIMIT


def ranks_of(logits: Tensor, actual: list[int]) -> tuple[list[int], list[float]]:
    """Rank (1 = the most likely) and probability of each actual token; logits (t, vocab).
    In numpy: for the one row a keystroke brings, a dozen torch calls cost more than the work."""
    x = logits.detach().float().cpu().numpy()  # (t, vocab)
    rows = np.arange(len(actual))
    mine = x[rows, actual]  # (t,)
    ranks = (x > mine[:, None]).sum(axis=1) + 1
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return ranks.tolist(), (e[rows, actual] / e.sum(axis=1)).tolist()


@dataclass(frozen=True)
class Mark:
    """A coloured token: characters [start, end) of the text, its bucket (0..3), rank, p."""

    start: int
    end: int
    bucket: int
    rank: int
    prob: float


def marks(spans: list[Span], ranks: list[int], probs: list[float], scheme: Scheme) -> list[Mark]:
    """One Mark per token with a rank (0: not computed), spans as token_spans gives them."""
    return [
        Mark(a, b, scheme.bucket(r, p), r, p)
        for (a, b), r, p in zip(spans, ranks, probs, strict=True)
        if r > 0
    ]


class Surprisal:
    """Ranks and spans of the complete tokens of a text read through a PrefixCache, kept
    along the text as it changes (see the module docstring). Worker thread only."""

    def __init__(self, runner: ModelRunner, cache: PrefixCache) -> None:
        self.runner = runner
        self.cache = cache
        self.tok = cache.encoder.tok
        self.ids: list[int] = []  # the tokens ranked so far (a prefix of the text's ids)
        self.ranks: list[int] = []  # 0: left uncoloured (beyond LIMIT)
        self.probs: list[float] = []
        self.frontier: tuple[int, object, Tensor] | None = None  # (position, state, logits)
        self.text = ""  # the text the spans are of
        self.spans: list[Span] = []
        self.made: list[Mark | None] = []  # per token, kept while its rank and span are
        self.scheme: Scheme | None = None  # the scheme `made` is in
        self.valid = 0  # made[:valid] still hold

    def marks(
        self, text: str, scheme: Scheme, since: int = 0, interrupt: Callable[[], bool] | None = None
    ) -> tuple[Mark, ...]:
        """The marks of the complete tokens of `text` that end after character `since`."""
        ids, partial, _ = self.cache.read(text, interrupt)
        self._rank(ids, interrupt)
        self._span(text[: len(text) - len(partial)], len(ids))
        self._make(scheme)
        first = bisect.bisect_right(self.spans, since, key=lambda span: span[1])
        return tuple(m for m in self.made[first:] if m is not None)

    def rank(self, text: str, interrupt: Callable[[], bool] | None = None) -> int:
        """Rank the complete tokens of `text` (then in ``ids``, ``ranks``, ``probs``); returns
        how many characters of `text` they cover (all but the half-typed word)."""
        ids, partial, _ = self.cache.read(text, interrupt)
        self._rank(ids, interrupt)
        return len(text) - len(partial)

    def pending(self, ids: list[int]) -> int:
        """How many of `ids` ``marks`` would rank anew (at most LIMIT)."""
        return min(LIMIT, len(ids) - common_prefix(self.ids, ids))

    def _make(self, scheme: Scheme) -> None:
        """Marks for the tokens whose rank or span changed (all of them for a new scheme)."""
        if scheme != self.scheme:
            self.scheme, self.valid = scheme, 0
        del self.made[self.valid :]
        for i in range(len(self.made), len(self.spans)):
            (a, b), r, p = self.spans[i], self.ranks[i], self.probs[i]
            self.made.append(Mark(a, b, scheme.bucket(r, p), r, p) if r > 0 else None)
        self.valid = len(self.made)

    def _rank(self, ids: list[int], interrupt) -> None:
        """Ranks for ids[c:] where ids[:c] were ranked before; the cache is at `ids`."""
        c = common_prefix(self.ids, ids)
        self.valid = min(self.valid, c)
        frontier = self.frontier if self.frontier and self.frontier[0] == c else None
        del self.ids[c:], self.ranks[c:], self.probs[c:]
        self.frontier = None
        n = len(ids)
        low = max(c, n - LIMIT)
        self.ids += ids[c:low]
        self.ranks += [0] * (low - c)
        self.probs += [0.0] * (low - c)
        if low < n:
            self._feed(ids, low, frontier[1:] if frontier and low == c else None, interrupt)
        state, logits = self.cache.end()
        self.frontier = (n, state, logits)

    def _feed(self, ids: list[int], low: int, origin, interrupt) -> None:
        """Rank ids[low:], from `origin` (state, logits after ids[:low]) or a cached state."""
        pos, state, first = self._start(low, origin)
        with torch.inference_mode():
            while len(self.ids) < len(ids):
                block = ids[pos : min(len(ids) - 1, pos + CHUNK)]
                rows = [first] if first is not None else []
                if block:
                    out, state = self.runner.forward(block, state)
                    rows.append(out[0])  # (t, vocab): after ids[:pos + 1 .. pos + t]
                skip = len(self.ids) - (pos + (first is None))  # rows before `low`
                self._take(ids, torch.cat(rows)[skip:])
                pos, first = pos + len(block), None
                if interrupt is not None and len(self.ids) < len(ids) and interrupt():
                    raise Superseded

    def _start(self, low: int, origin) -> tuple[int, object, Tensor | None]:
        """(pos, the state after ids[:pos], the logits after it or None): where to feed from
        to rank ids[low:]. Without logits, the first row comes after feeding ids[pos]."""
        states = self.cache.states
        if origin is None and low > 0:
            pos, state = states.nearest(low - 1)
            if low - pos <= states.spacing:  # a grid state: the text below was fed
                return pos, state, None
        if origin is None:  # the start, or a long paste's unread part below (FEED_LIMIT):
            origin = (states.states[0], states.first)  # read as if the text began at `low`
        return low, origin[0], origin[1].unsqueeze(0)  # (1, vocab)

    def _take(self, ids: list[int], logits: Tensor) -> None:
        """Rank the next len(logits) tokens: logits[i] predicts ids[len(self.ids) + i]."""
        at = len(self.ids)
        ranks, probs = ranks_of(logits, ids[at : at + len(logits)])
        self.ids += ids[at : at + len(logits)]
        self.ranks += ranks
        self.probs += probs

    def _span(self, body: str, n: int) -> None:
        """Spans of the n complete tokens of `body`, recomputed from the last encoder mark
        before the first changed character (the text before a mark tokenizes on its own)."""
        same = common_prefix(self.text, body)
        offset, tokens = 0, 0
        for mark in reversed(self.cache.encoder.marks):
            if mark.offset < same and mark.tokens <= len(self.spans):
                offset, tokens = mark.offset, mark.tokens
                break
        tail = [(a + offset, b + offset) for a, b in token_spans(self.tok, body[offset:])]
        old, self.spans = self.spans, self.spans[:tokens] + tail
        self.text = body
        self.valid = min(self.valid, common_prefix(old, self.spans))
        if len(self.spans) != n:  # never expected: a safe fallback
            self.spans, self.valid = token_spans(self.tok, body)[:n], 0
