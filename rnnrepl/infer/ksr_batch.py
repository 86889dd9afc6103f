"""``eval --ksr`` fast: every suggestion the simulated typist may see, computed in batches.

The text typed is fixed, so the model's state after every prefix of it does not depend on the
suggestions. The text's tokens are cut into LANES lanes of equal length; one pass of the model
over the text (batch 1, chunked, the state carried) gives the state where each lane begins, and
then the lanes are stepped side by side (one batch of LANES rows per token), which gives the
state and the next-token logits after every prefix. At every position inside a word, the
suggestions Predictor.words would give there are computed from them: the beam searches of all
the positions of one step together (``BatchWordSearch``), or read off the vocabulary (word
level). ``ksr.replay`` then types the text from that table. A position whose word was already
accepted earlier is skipped (the typist never sees it), unless a word cache mixes the lists
afterwards (``cached``), which can move an acceptance later.

Where the tokenizer reads a prefix of the text with other complete tokens than the text's own
(a BPE merge across the cursor, a word split differently when half typed), that query starts
from the state after the tokens both agree on and steps its own ones, batch 1.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnrepl.infer.distributions import Prediction, without_unk
from rnnrepl.infer.ksr import KsrResult, Progress, SuggestAt, replay, word_spans
from rnnrepl.infer.prefix_cache import IncrementalEncoder
from rnnrepl.infer.runner import SHAPE_STEP
from rnnrepl.infer.word_batch import BatchWordSearch, Words
from rnnrepl.infer.word_cache import WordCache
from rnnrepl.infer.words import Beam, WordSearch

# Lanes stepped side by side: with ~3 live hypotheses a query, the beams of a step are some
# 750 rows, where shakespeare-char's step costs 0.12 ms a row (0.75 ms a row at the 3 rows of one
# search: measured on one thread).
LANES = 256
REBASE = 2048  # characters (see PrefixReader)


@dataclass(frozen=True)
class Query:
    """Predictor.words(text[:pos]) as the batch computes it."""

    pos: int  # characters typed
    word: int  # the index of the word being typed
    typed: str  # its typed part (typed_part(text[:pos]))
    partial: str  # the tokenizer's half-typed word (word level) or last pre-token (BPE)
    at: int  # leading complete tokens of text[:pos] that are the text's own tokens
    extra: tuple[int, ...]  # its other complete tokens (mostly none)


def plan(tok, text: str) -> tuple[list[int], list[Query]]:
    """(the tokens of `text`, a query for every position inside every word, in text order)."""
    ref = tok.encode(text)
    reader = PrefixReader(tok, text, ref)
    queries = []
    for word, (start, end) in enumerate(word_spans(text)):
        for pos in range(start, end):
            at, extra, partial = reader.read(pos)
            queries.append(Query(pos, word, text[start:pos], partial, at, extra))
    return ref, queries


class PrefixReader:
    """How the Predictor's encoder splits text[:pos], for a growing pos, against the text's own
    tokens `ref`: (leading complete tokens that are ref's, the other complete ones, the
    half-typed word). The encoder is restarted from one of its own marks (where the tokens
    before and after are encoded apart) every REBASE characters, so that no call copies or
    compares the whole text read so far (quadratic: 17 s over 20,000 words)."""

    def __init__(self, tok, text: str, ref: list[int]) -> None:
        self.tok, self.text, self.ref = tok, text, ref
        self.offset = self.tokens = 0  # where the encoder begins: characters, tokens
        self.encoder = IncrementalEncoder(tok)
        self.agree = 0  # leading complete tokens that are ref's

    def read(self, pos: int) -> tuple[int, tuple[int, ...], str]:
        if self.encoder.anywhere:  # plain characters: one token each, cut anywhere, no partial
            return pos, (), ""
        if pos - self.offset > REBASE:
            self._rebase()
        ids, partial, stable = self.encoder.split(self.text[self.offset : pos])
        base, end = self.tokens, self.tokens + len(ids)
        self.agree = min(self.agree, base + stable, end)
        while (
            self.agree < min(end, len(self.ref)) and ids[self.agree - base] == self.ref[self.agree]
        ):
            self.agree += 1
        return self.agree, tuple(ids[self.agree - base :]), partial

    def _rebase(self) -> None:
        """Restart at the encoder's last mark whose tokens all agree with ref's."""
        mark = [m for m in self.encoder.marks if self.tokens + m.tokens <= self.agree][-1]
        if mark.offset:
            self.offset, self.tokens = self.offset + mark.offset, self.tokens + mark.tokens
            self.encoder = IncrementalEncoder(self.tok)


def lanes(runner, seq: list[int], width: int = LANES) -> Iterator[tuple[int, int, tuple, Tensor]]:
    """Step `seq` in lanes: yields (step i, lane length, state, logits (lanes, vocab)) where row
    k holds the state and next-token logits after seq[: k * length + i + 1]."""
    length = -(-len(seq) // width)
    if length >= SHAPE_STEP // 2:  # a multiple of SHAPE_STEP: the pass runs on oneDNN's kernels
        length = -(-length // SHAPE_STEP) * SHAPE_STEP  # (twice as fast per token as native)
    count = -(-len(seq) // length)
    model = runner.model
    with torch.inference_mode():
        starts = [model.init_state(1)]
        for k in range(1, count):  # the state where each lane begins, in one pass
            _, state = runner.forward(
                seq[(k - 1) * length : k * length], starts[-1], model.features
            )
            starts.append(state)
        state = model.join_states(starts)
        for i in range(length):
            ids = [seq[p] if (p := k * length + i) < len(seq) else 0 for k in range(count)]
            out, state = runner.fast(torch.tensor(ids, device=runner.device).unsqueeze(1), state)
            yield i, length, state, out[:, -1]


class SuggestionTable:
    """The suggestions after text[:pos] for every position the typist may see."""

    def __init__(
        self, predictor, n: int, beam: Beam | None = None, width: int = LANES, skip: bool = True
    ) -> None:
        self.predictor, self.width, self.skip = predictor, width, skip
        self.runner, self.tok = predictor.runner, predictor.tok
        self.n, self.beam = n, beam or Beam()
        self.batch: BatchWordSearch | None = None
        if self.tok.level != "word":
            r = self.runner
            self.batch = BatchWordSearch(WordSearch(r.model, r.fast, self.tok, r.device))

    def build(self, text: str, on_progress: Progress = None) -> dict[int, Words]:
        ref, queries = plan(self.tok, text)
        words = [text[s:e] for s, e in word_spans(text)]
        by_at: dict[int, list[Query]] = defaultdict(list)
        for q in queries:
            by_at[q.at].append(q)
        self.table: dict[int, Words] = {}
        self.accepted: dict[int, int] = {}  # word -> the first position known to accept it
        for i, length, state, logits in lanes(
            self.runner, [self.runner.start_id, *ref], self.width
        ):
            rows = [(k, q) for k in range(len(logits)) for q in by_at.get(k * length + i, ())]
            self._answer(rows, state, logits, words)
            if on_progress is not None:
                on_progress(len(words) * (i + 1) // length, len(words))
        return self.table

    def _needed(self, q: Query) -> bool:
        return not self.skip or q.pos <= self.accepted.get(q.word, q.pos)

    def _record(self, q: Query, found: Words, words: list[str]) -> None:
        self.table[q.pos] = found
        if any(w == words[q.word] for w, _ in found):
            self.accepted[q.word] = min(q.pos, self.accepted.get(q.word, q.pos))

    def _answer(self, rows: list, state, logits: Tensor, words: list[str]) -> None:
        plain = [(k, q) for k, q in rows if not q.extra and self._needed(q)]
        if self.batch is not None and plain:
            index = torch.tensor([k for k, _ in plain], device=self.runner.device)
            sub = self.runner.model.select_state(state, index)
            typed, spell = [q.typed for _, q in plain], [self._spell(q) for _, q in plain]
            found = self.batch.search(sub, logits[index], typed, self.n, self.beam, spell)
            for (_, q), f in zip(plain, found, strict=True):
                self._record(q, f, words)
        for k, q in rows:
            if self._needed(q) and (q.extra or self.batch is None):
                self._record(q, self._one(q, state, logits, k), words)

    def _one(self, q: Query, state, logits: Tensor, k: int) -> Words:
        """One query on its own: its extra tokens stepped; the vocabulary at word level."""
        row = self.runner.model.select_state(state, torch.tensor([k], device=self.runner.device))
        out = logits[k]
        if q.extra:
            out, row = self.runner.step(list(q.extra), row)
        if self.batch is not None:
            spell = [self._spell(q)]
            return self.batch.search(row, out.unsqueeze(0), [q.typed], self.n, self.beam, spell)[0]
        return self.predictor.word_completer.vocabulary_words(self._prediction(q, out), self.n)

    def _spell(self, q: Query) -> str:
        """The piece a subword level spells again from the boundary (WordCompleter.words)."""
        return self.tok.cased(q.partial) if q.partial else ""

    def _prediction(self, q: Query, logits: Tensor) -> Prediction:
        """Completer.predict's lists, from logits already computed (word level)."""
        probs = torch.softmax(logits.float(), dim=-1)
        if not q.partial:
            return Prediction("", None, *without_unk(probs))
        return Prediction(q.partial, self.predictor.vocab.completions(probs, q.partial), None)


def simulate_batched(
    predictor,
    text: str,
    n: int = 3,
    on_progress: Progress = None,
    beam: Beam | None = None,
    cache: bool = False,
) -> KsrResult:
    """``ksr.simulate(predictor.words, text, n)`` (with ``cache`` passed on), its suggestions
    computed in batches."""
    table = SuggestionTable(predictor, n, beam, skip=not cache).build(text, on_progress)
    return replay(cached(table, text, n) if cache else table.__getitem__, text)


def cached(table: dict[int, Words], text: str, n: int, cache: WordCache | None = None) -> SuggestAt:
    """The lists of `table` mixed with a word cache (a new one, or `cache`, empty) of the text
    before each word, as ``Predictor.words(..., cache=True)`` mixes them: for positions asked
    in text order."""
    spans = list(word_spans(text))
    starts = [start for start, _ in spans]
    cache = cache or WordCache()

    def at(pos: int) -> Words:
        word = bisect.bisect_right(starts, pos) - 1  # pos is inside a word
        while cache.count < word:
            start, end = spans[cache.count]
            cache.add(text[start:end])
        return cache.mix(table[pos], text[starts[word] : pos], n)

    return at
