"""Predictor: one loaded model ready for inference, the entry point of every command that loads
a model and of the REPL. A thin facade over the parts that do the work:

    runner.ModelRunner         batch-1 model calls (fast single step, batched spans)
    prefix_cache.PrefixCache   the text read so far: incremental tokens and recurrent states
    distributions.Vocabulary   <unk> left out, prefix search, top-k lists (no model calls)
    completion.Completer       what may follow a text (completions, next word) and ghost text
    words.WordCompleter        the N most likely whole words (beam search at char level)
    word_cache.WordCache       the words the text already holds, mixed into those (a cache LM)
    generation.stream          sampling a continuation, one Step at a time
    scoring.Scorer             per-token probabilities and losses, mean loss over long texts
    typed.TypedScorer          the loss of the typed text so far, kept along it (two models)
    surprisal.Surprisal        each token's rank and colour bucket, kept along a typed text
    branch_states.BranchStates the prefix cache of each REPL branch (/fork, /switch)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING

from torch import Tensor

from rnnrepl.config import SampleConfig
from rnnrepl.infer import generation
from rnnrepl.infer.branch_states import BranchStates
from rnnrepl.infer.buckets import scheme_for
from rnnrepl.infer.completion import Completer
from rnnrepl.infer.distributions import Prediction, Vocabulary
from rnnrepl.infer.generation import Step
from rnnrepl.infer.prefix_cache import PrefixCache
from rnnrepl.infer.runner import ModelRunner
from rnnrepl.infer.scoring import Scorer, ScoreSummary, TokenScore
from rnnrepl.infer.surprisal import Mark, Surprisal
from rnnrepl.infer.unit_track import UnitTrack, parse_kind, unit_problem
from rnnrepl.infer.word_cache import WordCache
from rnnrepl.infer.words import Beam, WordCompleter
from rnnrepl.model.lm import State
from rnnrepl.store.modelfile import LoadedModel

if TYPE_CHECKING:
    from rnnrepl.infer.typed import TypedScore, TypedScorer


class Predictor:
    """Wraps a loaded model for inference. Keeps states along the current context (see
    ``prefix_cache``) so that extending, shortening or editing the end of the context costs
    O(changed tokens), with memory bounded however long the context grows."""

    def __init__(self, loaded: LoadedModel, int8: bool = False) -> None:
        self.loaded = loaded
        self.tok = loaded.tokenizer
        self.runner = ModelRunner(loaded.model, self.tok, int8)
        self.model, self.device = self.runner.model, self.runner.device
        self.start_id, self.int8 = self.runner.start_id, self.runner.int8
        self.cache = PrefixCache(self.runner.step, self.start_id, self.tok)
        self.vocab = Vocabulary(self.tok, self.device)
        self.completer = Completer(self.runner, self.cache, self.vocab)
        self.scorer = Scorer(self.runner, self.cache, self.vocab)
        self.word_completer = WordCompleter(self.completer, self.runner)
        self.word_cache = WordCache()

    def weights_changed(self) -> None:
        """Rebuild everything derived from the model's weights after they changed in place
        (learning as you type): the fast step's fused and int8 copies, the prefix cache's
        states, the word search's memo, the word cache and the surprisal ranks."""
        fresh = Predictor(self.loaded, self.int8)
        self.__dict__.clear()  # cached properties (surprisal) too
        self.__dict__.update(fresh.__dict__)

    # ---- the prefix cache -----------------------------------------------------------------
    def reset(self) -> None:
        self.cache.reset()

    @property
    def tokens_fed(self) -> int:
        """Tokens run through the model by the cache so far (a cost counter)."""
        return self.cache.fed

    def logits_for(self, ids: list[int], interrupt: Callable[[], bool] | None = None) -> Tensor:
        """Next-token logits after the start token followed by `ids`, reusing cached states."""
        return self.cache.logits_for(ids, interrupt)

    def state_for(self, ids: list[int]) -> tuple[State, Tensor]:
        return self.cache.state_for(ids)

    def split(self, text: str) -> tuple[list[int], str]:
        """tokenizer.split_partial(text), incrementally: (complete ids (read-only), partial)."""
        return self.cache.split(text)

    @property
    def unknown_count(self) -> int:
        """How many of the complete tokens of the last split text are <unk>."""
        return self.cache.unknown

    # ---- distributions and completion -----------------------------------------------------
    def predict(self, text: str, interrupt: Callable[[], bool] | None = None) -> Prediction:
        """What may follow `text` (see ``Completer.predict``)."""
        return self.completer.predict(text, interrupt)

    def distribution(
        self, text: str, interrupt: Callable[[], bool] | None = None
    ) -> tuple[Tensor, str]:
        """``predict`` in its older shape: (the completions of the partial word, else the next
        token; the partial word)."""
        pred = self.completer.predict(text, interrupt)
        return pred.first, pred.partial

    def prefix_ids(self, partial: str) -> Tensor:
        return self.vocab.prefix_ids(partial)

    def prefix_mask(self, partial: str) -> Tensor:
        return self.vocab.prefix_mask(partial)

    def top_k(self, text: str, k: int = 10) -> list[tuple[str, float]]:
        probs, _ = self.distribution(text)
        return self.vocab.top_of(probs, k)

    def top_of(self, probs: Tensor, k: int) -> list[tuple[str, float]]:
        return self.vocab.top_of(probs, k)

    def complete(
        self, text: str, max_tokens: int = 24, interrupt: Callable[[], bool] | None = None
    ) -> list[str]:
        """Ghost text: the greedy rest of the current word (see ``Completer.complete``)."""
        return self.completer.complete(text, max_tokens, interrupt)

    def words(
        self,
        text: str,
        n: int = 3,
        beam: Beam | None = None,
        interrupt: Callable[[], bool] | None = None,
        cache: bool = False,
    ) -> list[tuple[str, float]]:
        """The n likeliest whole words ending the text's word (``words``), with those the text
        holds mixed in if `cache` (``word_cache``); `interrupt` as for ``predict``."""
        found = self.word_completer.words(text, n, beam or Beam(), interrupt)
        return self.word_cache.words(found, text, n, interrupt) if cache else found

    # ---- generation -----------------------------------------------------------------------
    def stream(self, text: str, cfg: SampleConfig) -> Iterator[Step]:
        """Sample a continuation of `text`, one Step at a time (see ``generation.stream``)."""
        return generation.stream(self.cache, self.tok, text, cfg)

    def piece(self, token_id: int, before: str) -> str:
        """The text a token adds after `before` (word level spaces it as decode would)."""
        return generation.piece(self.tok, token_id, before)

    def generate(self, text: str, cfg: SampleConfig) -> str:
        return "".join(step.text for step in self.stream(text, cfg))

    # ---- scoring --------------------------------------------------------------------------
    @cached_property
    def typed(self) -> TypedScorer:
        """Running loss of the REPL's text (imported and built on first use: `chat A B`)."""
        from rnnrepl.infer.typed import TypedScorer

        return TypedScorer(self.surprisal)

    def typed_score(self, text: str, interrupt: Callable[[], bool] | None = None) -> TypedScore:
        """p of the last complete token of `text` and the loss of all of them, at the cost of
        the tokens changed since the last call (see ``typed``)."""
        return self.typed.score(text, interrupt)

    def score(
        self, text: str, k: int = 5, context: str = ""
    ) -> tuple[list[TokenScore], ScoreSummary]:
        """p and J_t of every token of `text` after `context` (see ``Scorer.score``)."""
        return self.scorer.score(text, k, context)

    @cached_property
    def branches(self) -> BranchStates:
        """The prefix cache of each REPL branch, kept aside while another is current."""
        return BranchStates(self.cache)

    @cached_property
    def surprisal(self) -> Surprisal:
        """The ranks kept along the text for colours (built on first use: /color is opt-in)."""
        return Surprisal(self.runner, self.cache)

    @cached_property
    def units(self) -> UnitTrack:
        """One hidden unit's value kept along the text (/neuron; built on first use)."""
        return UnitTrack(self.runner, self.tok)

    def colors_pending(self, text: str) -> int:
        """How many tokens of `text` ``colors`` would rank anew (typing: one or two)."""
        track = self.units if self.units.unit is not None else self.surprisal
        return track.pending(self.split(text)[0])

    def colors(
        self, text: str, kind: str, since: int = 0, interrupt: Callable[[], bool] | None = None
    ) -> tuple[Mark, ...]:
        """Surprisal marks (rank or prob buckets), or a hidden unit's (kind "unit L:I"), of
        the complete tokens of `text` ending after character `since`, at the cost of the
        tokens changed since the last call."""
        unit = parse_kind(kind)
        if unit is None:
            self.units.forget()
            return self.surprisal.marks(text, scheme_for(kind, self.tok.level), since, interrupt)
        ids, partial = self.split(text)
        return self.units.marks(text[: len(text) - len(partial)], ids, unit, since, interrupt)

    def unit_problem(self, layer: int, unit: int) -> str | None:
        """Why /neuron L:I cannot follow that unit of this model, or None."""
        return unit_problem(self.model, layer, unit)
