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
p(w | x, the word begins with u). A subword level spells the typed piece s again from the
boundary before it (token healing, x = b + s) and divides by the probability that b goes on
with s at all: p(s + rest, then a boundary | b) / p(s | b), the same conditional figure.

In the REPL each keystroke inside a word searches again from one token further on, mostly along
paths the previous search already stepped; a ``StepMemo`` keeps those steps, so a search takes
the same decisions with fewer model rows (README "Keystroke latency").
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnrepl.infer.completion import Completer, in_word
from rnnrepl.infer.distributions import Prediction
from rnnrepl.infer.prefix_cache import Superseded
from rnnrepl.infer.runner import ModelRunner
from rnnrepl.model.lm import State
from rnnrepl.text.tokenizers import is_word

WIDTH = 3  # beam width: live hypotheses kept per step (README "predict --words"; measured)
DEPTH = 12  # at most this many tokens are added to the typed part of a word
MEMO_ROWS = 512  # beam rows a StepMemo keeps (by reference to their batch) before starting afresh
Interrupt = Callable[[], bool] | None


@dataclass(frozen=True)
class Beam:
    """How wide and how deep the search goes."""

    width: int = WIDTH
    depth: int = DEPTH


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


def add_spelling(done: dict[str, float], word: str, logp: float) -> None:
    """Count one more spelling of a finished `word` (log-probability `logp`) into `done`
    (word -> cost -log p): the probabilities of a word's spellings add up."""
    done[word] = -logp if word not in done else -float(np.logaddexp(-done[word], logp))


class StepMemo:
    """Beam steps kept from one search to the next: the state and next-token log-probabilities
    after `anchor + prefix + path` (token ids), for every path a search stepped.

    A search given a memo takes exactly the decisions it takes without one; it only calls the
    model for the rows the memo lacks (none when a backspace returns to a text already
    searched). A row read back was computed in another batch, so it equals a fresh one to float
    rounding (and, in int8, to the per-batch scale of the quantised activations)."""

    def __init__(self, limit: int = MEMO_ROWS) -> None:
        self.limit = limit
        self.anchor: list[int] = []  # the complete token ids the rows are relative to
        self.prefix: tuple[int, ...] = ()  # the next search starts after anchor + prefix
        # path -> (state, log-probabilities (batch, vocab), row): the batch a row was stepped in
        self.rows: dict[tuple[int, ...], tuple[State, Tensor, int]] = {}

    def follow(self, ids: list[int], at_word_start: bool) -> StepMemo:
        """Key the next search, which starts after `ids`, to the rows kept so far; forget them
        when `ids` no longer extend the anchor, past the limit, or at a new word's start."""
        m = len(self.anchor)
        moved = len(ids) < m or ids[:m] != self.anchor or (at_word_start and len(ids) != m)
        if moved or len(self.rows) > self.limit:
            self.anchor, self.rows, m = list(ids), {}, len(ids)
        self.prefix = tuple(ids[m:])
        return self

    def put(self, keys: list[tuple[int, ...]], state: State, logp: Tensor) -> None:
        """Keep the rows of one step (by reference: nothing is copied unless read back)."""
        for j, key in enumerate(keys):
            self.rows[key] = (state, logp, j)

    def batch(self, keys: list[tuple[int, ...]], model) -> tuple[State, Tensor]:
        """The kept rows of `keys` as one batch: (state, log-probabilities (beam, vocab))."""
        kept = [self.rows[key] for key in keys]
        at = [torch.tensor([j], device=logp.device) for _, logp, j in kept]
        states = [model.select_state(state, j) for (state, _, _), j in zip(kept, at, strict=True)]
        logps = [logp.index_select(0, j) for (_, logp, _), j in zip(kept, at, strict=True)]
        return model.join_states(states), torch.cat(logps)


class WordSearch:
    """Beam search over a token model's own tokens until a word boundary."""

    def __init__(self, model, step, tok, device: torch.device) -> None:
        self.model = model  # its select_state
        self.step = step  # (ids (beam, 1), state) -> (logits (beam, 1, vocab), state)
        self.tok = tok
        self.cont, self.ends, self.texts = word_table(tok, device)
        self._inside, self._outside = ~self.ends, ~self.cont  # masked out by _finish, _extend
        self.device = device
        self.index = {t: i for i, t in enumerate(self.texts) if i}  # for spelling (healing)
        self._sorted = sorted((t, i) for t, i in self.index.items() if t)
        self._spelling: dict[str, Tensor] = {}  # rest of a spelling -> allowed tokens
        self._texts = sorted((t, i) for i, t in enumerate(self.texts) if i and t)  # every token
        self._covers: dict[str, Tensor] = {}  # rest of a spelling -> tokens that spell it all
        self.rows_stepped = 0  # beam rows run through the model so far (a cost counter)

    def search(
        self,
        state,
        logits: Tensor,
        typed: str,
        n: int,
        beam: Beam,
        interrupt: Interrupt = None,
        spell: str = "",
        memo: StepMemo | None = None,
    ) -> list:
        """The n most likely whole words after `state` (whose next-token logits are `logits`),
        each `typed` + tokens up to a boundary, as (word, probability), best first.

        `spell` (token healing, at a subword level): the typed piece of text that `state` is
        before, the last pre-token (" wor" of "hello wor"). Hypotheses first spell it, in any
        tokenization, then go on in the word; a word's probability sums over its spellings and
        is divided by the mass of every path that spelled the whole piece (``covered``), so it
        reads p(word | text, typed part) as without healing. A path pruned from the beam is
        missing from both sums.
        `interrupt` is polled before each model call; when it returns True, ``Superseded``.
        `memo`: steps kept from earlier searches (see StepMemo), else every row is stepped."""
        words, scores = [""], torch.zeros(1, device=self.device)  # (beam,) log-probabilities
        paths: list[tuple[int, ...]] = [() if memo is None else memo.prefix]  # memo keys
        done: dict[str, float] = {}  # finished word -> its cost -log p (nats)
        logp = torch.log_softmax(logits.float().reshape(1, -1), -1)  # (beam, vocab)
        cover = -math.inf if spell else 0.0  # log p(the text goes on with `spell`)
        limit = beam.depth + len(spell)  # a token spells at least one character
        for depth in range(limit + 1):
            self._finish(words, scores, logp, typed, spell, done)
            if spell:
                rests = [spell[len(w) :] for w in words]
                mass = torch.logsumexp(self.covered(rests, scores, logp), 0)
                cover = float(np.logaddexp(cover, float(mass)))
            if depth == limit:
                break
            if interrupt is not None and interrupt():
                raise Superseded
            words, scores, rows, ids = self._extend(words, scores, logp, beam.width, spell)
            worst = sorted(done.values())[n - 1] if len(done) >= n else math.inf
            # A word's probability only shrinks as it grows; scores are sorted: keep a prefix.
            keep = sum(1 for s in scores.tolist() if -s < worst)
            if not keep:
                break
            rows, ids, scores, words = rows[:keep], ids[:keep], scores[:keep], words[:keep]
            paths = [paths[r] + (i,) for r, i in zip(rows.tolist(), ids.tolist(), strict=True)]
            state, logp = self._step(state, rows, ids, paths, memo)
        best = sorted(done.items(), key=lambda kv: kv[1])[:n]
        return [(w, math.exp(-cost - cover)) for w, cost in best]

    def _step(self, state, rows: Tensor, ids: Tensor, paths: list, memo: StepMemo | None):
        """(state, log-probabilities (beam, vocab)) after each parent row `rows` takes its token
        `ids`: one batched model call for the rows `memo` does not hold."""
        new = [j for j, path in enumerate(paths) if memo is None or path not in memo.rows]
        if len(new) < len(paths):
            at = torch.tensor(new, dtype=torch.long, device=self.device)
            rows, ids = rows[at], ids[at]
        if new:
            self.rows_stepped += len(new)
            with torch.inference_mode():
                picked = self.model.select_state(state, rows)
                out, stepped = self.step(ids.unsqueeze(1), picked)  # (new, 1, vocab)
            logp = torch.log_softmax(out[:, -1].float(), -1)
            if memo is not None:
                memo.put([paths[j] for j in new], stepped, logp)
            if len(new) == len(paths):
                return stepped, logp
        return memo.batch(paths, self.model)

    def _finish(
        self, words, scores: Tensor, logp: Tensor, typed: str, spell: str, done: dict
    ) -> None:
        """Every hypothesis past `spell` followed by a boundary is a finished word (never an
        empty one); the probabilities of one word's spellings add up."""
        end = torch.logsumexp(logp.masked_fill(self._inside, -torch.inf), -1)  # (beam,)
        for word, s in zip(words, (scores + end).tolist(), strict=True):
            whole = typed + word[len(spell) :]
            if len(word) >= len(spell) and whole and s > -torch.inf:
                add_spelling(done, whole, s)

    def _extend(self, words, scores: Tensor, logp: Tensor, width: int, spell: str):
        """The `width` best one-token extensions inside the word (or along `spell`): (words,
        scores, parent rows, token ids), best first."""
        rests = [spell[len(w) :] for w in words] if spell else []
        outside = (
            ~torch.stack([self.allowed(r) for r in rests]) if any(rests) else self._outside
        )  # (beam, vocab) or (vocab,)
        total = (scores.unsqueeze(1) + logp).masked_fill(outside, -torch.inf)  # (beam, vocab)
        top, flat = total.flatten().topk(min(width, total.numel()))  # best first
        k = sum(1 for s in top.tolist() if s > -math.inf)  # fewer when fewer tokens continue
        top, flat = top[:k], flat[:k]
        rows, ids = flat // total.shape[1], flat % total.shape[1]
        new = [words[r] + self.texts[i] for r, i in zip(rows.tolist(), ids.tolist(), strict=True)]
        return new, top, rows, ids

    def covered(self, rests: list[str], scores: Tensor, logp: Tensor) -> Tensor:
        """(beam,) log-probability that each hypothesis spells the rest of the piece, `rests`,
        with its next token (which may go on past it, with any characters): the mass of the
        paths that have spelled the whole piece; -inf for a hypothesis already past it."""
        if not any(rests):
            return torch.full_like(scores, -torch.inf)
        mask = torch.stack([self.covers(r) for r in rests])  # (beam, vocab)
        return scores + torch.logsumexp(logp.masked_fill(~mask, -torch.inf), -1)

    def covers(self, rest: str) -> Tensor:
        """The tokens whose text begins with `rest` (none for an empty `rest`)."""
        if rest not in self._covers:
            if len(self._covers) > 256:
                self._covers.clear()
            lo = bisect.bisect_left(self._texts, (rest, -1))
            hi = bisect.bisect_left(self._texts, (rest + "\U0010ffff", -1), lo)
            ids = [i for _, i in self._texts[lo:hi]] if rest else []
            mask = torch.zeros_like(self.cont)
            mask[torch.tensor(ids, dtype=torch.long, device=self.device)] = True
            self._covers[rest] = mask
        return self._covers[rest]

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
        self._memo = StepMemo()  # the beam's steps since the word's start (see StepMemo)
        self._is_word: Tensor | None = None

    def words(
        self, text: str, n: int, beam: Beam, interrupt: Interrupt = None
    ) -> list[tuple[str, float]]:
        """The n most likely whole words completing the word at the end of `text` (or the next
        word after a boundary), as (word, probability), best first."""
        if self.tok.level == "word":
            return self._vocabulary(self.completer.predict(text, interrupt), n)
        _, partial, _ = self.cache.read(text, interrupt)  # not predict: no lists, no extra step
        if self._search is None:
            self._search = WordSearch(
                self.runner.model, self.runner.fast, self.tok, self.runner.device
            )
        # the text read up to its partial piece, which is empty at char level; a subword level
        # spells that piece again from the boundary before it (token healing)
        state, logits = self.cache.end()
        typed = typed_part(text)
        spell = self.tok.cased(partial) if partial else ""
        memo = self._memo.follow(self.cache.split(text)[0], not typed)
        return self._search.search(state, logits, typed, n, beam, interrupt, spell, memo)

    def vocabulary_words(self, pred: Prediction, n: int) -> list[tuple[str, float]]:
        """Word level: ``words`` from a prediction made elsewhere (``eval --ksr``'s batch)."""
        return self._vocabulary(pred, n)

    @property
    def rows_stepped(self) -> int:
        """Beam rows run through the model so far (a cost counter; bench/ and tests read it)."""
        return 0 if self._search is None else self._search.rows_stepped

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
