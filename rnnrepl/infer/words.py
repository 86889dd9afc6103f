"""Whole-word completions: the N most likely words that complete the word being typed (or the
next word, after a boundary), each with its probability.

A word ends at a boundary: any character that is not a letter, a digit or one of WORD_CHARS
(_ ' ’ -: space, newline, punctuation). Token models (char level; a subword level later) are searched
with a beam over their own tokens until a boundary, the whole beam one batch: one model call per
step. Word models read the list off their vocabulary (``Prediction``), never <unk>.

The probability of a word w after text x with typed part u (w = u + rest) is
p(rest, then a boundary | x), the product of the step probabilities of rest's tokens times the
total probability of the boundary tokens after them; at word level, the renormalised
completion probability of w (or p(next token = w) after a boundary). Both read as
p(w | x, the word begins with u).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnrepl.infer.completion import WORD_CHARS, Completer
from rnnrepl.infer.distributions import Prediction
from rnnrepl.infer.prefix_cache import Superseded
from rnnrepl.infer.runner import ModelRunner
from rnnrepl.text.tokenizers import is_word

WIDTH = 3  # beam width: live hypotheses kept per step (README "predict --words"; measured)
DEPTH = 12  # at most this many tokens are added to the typed part of a word
Interrupt = Callable[[], bool] | None


@dataclass(frozen=True)
class Beam:
    """How wide and how deep the search goes."""

    width: int = WIDTH
    depth: int = DEPTH


def in_word(ch: str) -> bool:
    return ch.isalnum() or ch in WORD_CHARS


def typed_part(text: str) -> str:
    """The word characters at the end of `text` (the word being typed; '' after a boundary)."""
    i = len(text)
    while i and in_word(text[i - 1]):
        i -= 1
    return text[i:]


def word_table(tok, device: torch.device) -> tuple[Tensor, Tensor, list[str]]:
    """(continues, ends, texts) over the vocabulary: which tokens extend a word, which end it
    (their first character is a boundary), and each token's text. <unk> does neither.

    The tokenizer says what ends a word through its ``word_ends`` (a BPE level whose tokens
    carry their leading space can say so); without one, by each token's text."""
    texts = [tok.token_text(i) for i in range(tok.size)]
    ends_of = getattr(tok, "word_ends", None)
    ends = [bool(ends_of(t)) if ends_of else bool(t) and not in_word(t[0]) for t in texts]
    cont = [bool(t) and all(in_word(c) for c in t) for t in texts]
    ends[0] = cont[0] = False  # <unk> spells nothing
    as_mask = lambda flags: torch.tensor(flags, dtype=torch.bool, device=device)  # noqa: E731
    return as_mask(cont), as_mask(ends), texts


class WordSearch:
    """Beam search over a token model's own tokens until a word boundary."""

    def __init__(self, model, step, tok, device: torch.device) -> None:
        self.model = model  # its select_state
        self.step = step  # (ids (beam, 1), state) -> (logits (beam, 1, vocab), state)
        self.tok = tok
        self.cont, self.ends, self.texts = word_table(tok, device)
        self.device = device
        self.index = {t: i for i, t in enumerate(self.texts) if i}  # for spelling (healing)
        self._sorted = sorted((t, i) for t, i in self.index.items() if t)
        self._spelling: dict[str, Tensor] = {}  # rest of a spelling -> allowed tokens

    def search(
        self,
        state,
        logits: Tensor,
        typed: str,
        n: int,
        beam: Beam,
        interrupt: Interrupt = None,
        spell: str = "",
    ) -> list:
        """The n most likely whole words after `state` (whose next-token logits are `logits`),
        each `typed` + tokens up to a boundary, as (word, probability), best first.

        `spell` (token healing, at a subword level): the typed piece of text that `state` is
        before, the last pre-token (" wor" of "hello wor"). Hypotheses first spell it, in any
        tokenization, then go on in the word; a word's probability sums over its spellings.
        `interrupt` is polled before each model call; when it returns True, ``Superseded``."""
        words, scores = [""], torch.zeros(1, device=self.device)  # (beam,) log-probabilities
        done: dict[str, float] = {}  # finished word -> its cost -log p (nats)
        logp = torch.log_softmax(logits.float().reshape(1, -1), -1)  # (beam, vocab)
        limit = beam.depth + len(spell)  # a token spells at least one character
        for depth in range(limit + 1):
            self._finish(words, scores, logp, typed, spell, done)
            if depth == limit:
                break
            if interrupt is not None and interrupt():
                raise Superseded
            words, scores, rows, ids = self._extend(words, scores, logp, beam.width, spell)
            worst = sorted(done.values())[n - 1] if len(done) >= n else math.inf
            keep = -scores < worst  # a hypothesis's probability only shrinks as it grows
            if not keep.any():
                break
            rows, ids, scores = rows[keep], ids[keep], scores[keep]
            words = [w for w, k in zip(words, keep.tolist(), strict=True) if k]
            state = self.model.select_state(state, rows)
            with torch.inference_mode():
                out, state = self.step(ids.unsqueeze(1), state)  # (beam, 1, vocab)
            logp = torch.log_softmax(out[:, -1].float(), -1)
        best = sorted(done.items(), key=lambda kv: kv[1])[:n]
        return [(w, math.exp(-cost)) for w, cost in best]

    def _finish(
        self, words, scores: Tensor, logp: Tensor, typed: str, spell: str, done: dict
    ) -> None:
        """Every hypothesis past `spell` followed by a boundary is a finished word (never an
        empty one); the probabilities of one word's spellings add up."""
        end = torch.logsumexp(logp.masked_fill(~self.ends, -torch.inf), -1)  # (beam,)
        for word, s in zip(words, (scores + end).tolist(), strict=True):
            whole = typed + word[len(spell) :]
            if len(word) >= len(spell) and whole and s > -torch.inf:
                done[whole] = -s if whole not in done else -float(np.logaddexp(-done[whole], s))

    def _extend(self, words, scores: Tensor, logp: Tensor, width: int, spell: str):
        """The `width` best one-token extensions inside the word (or along `spell`): (words,
        scores, parent rows, token ids)."""
        allowed = torch.stack([self.allowed(spell[len(w) :]) for w in words])  # (beam, vocab)
        total = (scores.unsqueeze(1) + logp).masked_fill(~allowed, -torch.inf)
        k = min(width, int(torch.isfinite(total).sum()))
        top, flat = total.flatten().topk(k)
        rows, ids = flat // total.shape[1], flat % total.shape[1]
        new = [words[r] + self.texts[i] for r, i in zip(rows.tolist(), ids.tolist(), strict=True)]
        return new, top, rows, ids

    def allowed(self, rest: str) -> Tensor:
        """The tokens that may come next with `rest` of the spelling still to go: inside the
        word when nothing is left; else a token that spells a prefix of `rest`, or all of it
        and then only word characters."""
        if not rest:
            return self.cont
        if rest not in self._spelling:
            if len(self._spelling) > 256:
                self._spelling.clear()
            ids = [self.index[rest[:k]] for k in range(1, len(rest)) if rest[:k] in self.index]
            lo = bisect.bisect_left(self._sorted, (rest, -1))
            hi = bisect.bisect_left(self._sorted, (rest + "\U0010ffff", -1), lo)
            ids += [i for t, i in self._sorted[lo:hi] if all(in_word(c) for c in t[len(rest) :])]
            mask = torch.zeros_like(self.cont)
            mask[torch.tensor(ids, dtype=torch.long, device=self.device)] = True
            self._spelling[rest] = mask
        return self._spelling[rest]


class WordCompleter:
    """Whole-word completions over a Predictor's parts: its completer (which reads the text
    through the prefix cache) and, for token models, a beam search from the cache's end."""

    def __init__(self, completer: Completer, runner: ModelRunner) -> None:
        self.completer = completer
        self.cache = completer.cache
        self.tok = completer.tok
        self.runner = runner
        self._search: WordSearch | None = None  # built on first use
        self._is_word: Tensor | None = None

    def words(
        self, text: str, n: int, beam: Beam, interrupt: Interrupt = None
    ) -> list[tuple[str, float]]:
        """The n most likely whole words completing the word at the end of `text` (or the next
        word after a boundary), as (word, probability), best first."""
        pred = self.completer.predict(text, interrupt)
        if self.tok.level == "word":
            return self._vocabulary(pred, n)
        if self._search is None:
            self._search = WordSearch(
                self.runner.model, self.runner.fast, self.tok, self.runner.device
            )
        # the text read up to its partial piece, which is empty at char level; a subword level
        # spells that piece again from the boundary before it (token healing)
        state, logits = self.cache.end()
        spell = self.tok.cased(pred.partial) if pred.partial else ""
        return self._search.search(state, logits, typed_part(text), n, beam, interrupt, spell)

    def vocabulary_words(self, pred: Prediction, n: int) -> list[tuple[str, float]]:
        """Word level: ``words`` from a prediction made elsewhere (``eval --ksr``'s batch)."""
        return self._vocabulary(pred, n)

    def _vocabulary(self, pred: Prediction, n: int) -> list[tuple[str, float]]:
        """Word level: the completions of the typed word (or the next token after a boundary)
        that are words; <unk> never (id 0 is zero in both lists, and left out here too)."""
        probs = pred.completions if pred.partial else pred.next
        if probs is None:
            return []
        if self._is_word is None:
            flags = [bool(i) and is_word(t) for i, t in enumerate(self.tok.tokens)]
            self._is_word = torch.tensor(flags, dtype=torch.bool, device=probs.device)
        values, idx = probs.masked_fill(~self._is_word, 0.0).topk(min(n, probs.shape[-1]))
        typed = pred.partial  # shown as typed; a lowercased vocabulary adds the rest
        return [
            (typed + self.tok.token_text(i)[len(typed) :], v)
            for v, i in zip(values.tolist(), idx.tolist(), strict=True)
            if v > 0
        ]
