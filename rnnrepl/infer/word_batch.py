"""``WordSearch.search`` for many texts at once: the beams of Q queries, each with its own state
and typed part, stepped together (all their live hypotheses one batch, one model call per
depth). Every query keeps the rules of the one-text search exactly (same candidates, same
pruning against its own n-th best finished word, same order of the result), so the answers are
the same words in the same order, their probabilities equal to float rounding (a batch of many
rows is multiplied with other blocking than a batch of three).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rnnrepl.infer.words import Beam, WordSearch, add_spelling

Words = list[tuple[str, float]]


class BatchWordSearch:
    """Beam searches over a token model's own tokens for many (state, typed part) at once."""

    def __init__(self, search: WordSearch) -> None:
        self.single = search  # its spelling masks (token healing)
        self.model, self.step = search.model, search.step
        self.cont, self.ends, self.texts = search.cont, search.ends, search.texts
        self.device = search.device

    def search(
        self,
        state,
        logits: Tensor,
        typed: list[str],
        n: int,
        beam: Beam,
        spell: list[str] | None = None,
    ) -> list[Words]:
        """For each query q (row q of `state` and of `logits` (Q, vocab), `typed[q]`, `spell[q]`
        or ''), what ``WordSearch.search(state_q, logits_q, typed[q], n, beam, spell=spell[q])``
        returns."""
        q = len(typed)
        spell = spell or [""] * q
        limits = torch.tensor([beam.depth + len(s) for s in spell], device=self.device)
        owner = torch.arange(q, device=self.device)  # (rows,) the query of each hypothesis
        words, scores = [""] * q, torch.zeros(q, device=self.device)  # (rows,) log-probs
        done: list[dict[str, float]] = [{} for _ in range(q)]  # finished word -> cost (nats)
        # (q,) log p(the text goes on with spell[q]) (WordSearch.covered), 0 with nothing to spell
        cover = torch.tensor([-math.inf if s else 0.0 for s in spell], device=self.device)
        logp = torch.log_softmax(logits.float(), -1)  # (rows, vocab)
        for depth in range(int(limits.max()) + 1):
            self._finish(owner.tolist(), words, scores, logp, typed, spell, done)
            cover = self._cover(cover, owner, words, scores, logp, spell)
            live = limits[owner] > depth  # a query stops at its own depth
            if not live.any():
                break
            if not live.all():
                at = live.nonzero().flatten()
                owner, scores, logp = owner[at], scores[at], logp[at]
                words = [words[i] for i in at.tolist()]
                state = self.model.select_state(state, at)
            owner, words, scores, rows, ids = self._extend(
                owner, words, scores, logp, beam, q, spell
            )
            keep = -scores < _worst(done, n, self.device)[owner]  # probabilities only shrink
            if not keep.any():
                break
            rows, ids, scores, owner = rows[keep], ids[keep], scores[keep], owner[keep]
            words = [w for w, k in zip(words, keep.tolist(), strict=True) if k]
            state = self.model.select_state(state, rows)
            with torch.inference_mode():
                out, state = self.step(ids.unsqueeze(1), state)  # (rows, 1, vocab)
            logp = torch.log_softmax(out[:, -1].float(), -1)
        return [_best(d, n, c) for d, c in zip(done, cover.tolist(), strict=True)]

    def _cover(self, cover: Tensor, owner: Tensor, words, scores: Tensor, logp: Tensor, spell):
        """`cover` (q,) with the mass of the paths of each query that spell the whole piece
        with their next token added."""
        rests = [spell[o][len(w) :] for o, w in zip(owner.tolist(), words, strict=True)]
        if not any(rests):
            return cover
        at = torch.tensor([j for j, r in enumerate(rests) if r], device=self.device)
        mass = self.single.covered([rests[j] for j in at.tolist()], scores[at], logp[at])
        grid = cover.new_full((len(cover), len(at)), -torch.inf)  # (q, at)
        grid[owner[at], torch.arange(len(at), device=self.device)] = mass
        return torch.logaddexp(cover, torch.logsumexp(grid, 1))

    def _finish(
        self, owner: list[int], words, scores: Tensor, logp: Tensor, typed, spell, done
    ) -> None:
        """Every hypothesis past its query's spelling followed by a boundary is a finished
        word (never an empty one); the probabilities of one word's spellings add up."""
        end = torch.logsumexp(logp.masked_fill(~self.ends, -torch.inf), -1)  # (rows,)
        for q, word, s in zip(owner, words, (scores + end).tolist(), strict=True):
            whole = typed[q] + word[len(spell[q]) :]
            if len(word) >= len(spell[q]) and whole and s > -torch.inf:
                add_spelling(done[q], whole, s)

    def _extend(
        self, owner: Tensor, words, scores: Tensor, logp: Tensor, beam: Beam, q: int, spell
    ):
        """Each query's `beam.width` best one-token extensions inside the word (or along its
        spelling), best first, the queries in order: (owner, words, scores, parent rows, ids)."""
        vocab = logp.shape[1]
        rests = [spell[o][len(w) :] for o, w in zip(owner.tolist(), words, strict=True)]
        allowed = torch.stack([self.single.allowed(r) for r in rests]) if any(rests) else self.cont
        total = (scores.unsqueeze(1) + logp).masked_fill(~allowed, -torch.inf)  # (rows, vocab)
        count = torch.bincount(owner, minlength=q)  # (q,) live hypotheses per query
        first = torch.cumsum(count, 0) - count  # (q,) the row of each query's first one
        slot = torch.arange(len(owner), device=self.device) - first[owner]  # (rows,)
        grid = total.new_full((q, max(int(count.max()), 1), vocab), -torch.inf)  # (q, beam, vocab)
        grid[owner, slot] = total
        top, flat = grid.flatten(1).topk(min(beam.width, grid[0].numel()))  # (q, width)
        qs, ks = torch.isfinite(top).nonzero(as_tuple=True)  # row-major: by query, then rank
        picked = flat[qs, ks]
        rows, ids = first[qs] + picked // vocab, picked % vocab
        new = [words[r] + self.texts[i] for r, i in zip(rows.tolist(), ids.tolist(), strict=True)]
        return qs, new, top[qs, ks], rows, ids


def _worst(done: list[dict[str, float]], n: int, device: torch.device) -> Tensor:
    """(queries,) the cost of each query's n-th best finished word (inf while fewer)."""
    costs = [sorted(d.values())[n - 1] if len(d) >= n else math.inf for d in done]
    return torch.tensor(costs, device=device)


def _best(done: dict[str, float], n: int, cover: float) -> Words:
    """The n best words, their probabilities divided by the spelt piece's (log) mass `cover`."""
    best = sorted(done.items(), key=lambda kv: kv[1])[:n]
    return [(w, math.exp(-cost - cover)) for w, cost in best]
