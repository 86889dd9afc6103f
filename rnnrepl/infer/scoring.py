"""Scoring: the probability and J_t = -log p of every token of a text, and the mean over
long token streams in batched chunks (perplexity, bits per token)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnrepl.infer.distributions import Vocabulary
from rnnrepl.infer.prefix_cache import PrefixCache
from rnnrepl.infer.runner import ModelRunner
from rnnrepl.model.lm import State
from rnnrepl.units import bits_per_character, perplexity

CHUNK = 256  # tokens per batched forward call when feeding long text


@dataclass(frozen=True)
class TokenScore:
    token: str
    prob: float
    loss: float  # J_t = -log p(actual token)
    topk: list[tuple[str, float]]
    rank: int = 0  # 1 = the model's most likely token at that step


@dataclass(frozen=True)
class ScoreSummary:
    tokens: int
    mean_loss: float  # nats per token
    characters: int  # of the text scored, as given (context not counted)
    unknown: int  # tokens of it that were <unk> (id 0)

    @property
    def perplexity(self) -> float:
        return perplexity(self.mean_loss) if self.tokens else math.nan

    @property
    def bits_per_character(self) -> float:
        """Bits of all the tokens over the characters of the text (README, "Bits per
        character of the text")."""
        return bits_per_character(self.mean_loss, self.tokens, self.characters)


class Scorer:
    """Per-token scores of a text and their mean, the model fed in chunks of CHUNK tokens."""

    def __init__(self, runner: ModelRunner, cache: PrefixCache, vocab: Vocabulary) -> None:
        self.runner = runner
        self.cache = cache
        self.vocab = vocab
        self.tok = vocab.tok

    def score(
        self, text: str, k: int = 5, context: str = ""
    ) -> tuple[list[TokenScore], ScoreSummary]:
        """p and J_t = -log p of every token of `text` given everything before it (`context`,
        then `text`'s own earlier tokens)."""
        ids = self.tok.encode(text)
        origin = self.cache.state_for(self.tok.encode(context)) if context else None
        scores: list[TokenScore] = []
        total = 0.0
        for pos, logp in self._log_probs(ids, origin=origin):
            actual = ids[pos]
            loss = -float(logp[actual])
            top = self.vocab.top_of(logp.exp(), k)
            rank = int((logp > logp[actual]).sum()) + 1
            token = self.tok.token_text(actual)
            scores.append(TokenScore(token, math.exp(-loss), loss, top, rank))
            total += loss
        mean = total / len(ids) if ids else math.nan
        return scores, ScoreSummary(len(ids), mean, len(text), ids.count(0))

    def _log_probs(
        self,
        ids: list[int],
        origin: tuple[State, Tensor] | None = None,
    ) -> Iterator[tuple]:
        """Yield (position, log-probs predicting ids[position]).

        Starts after the start token, or from `origin` = (state, logits) after some context.
        """
        state, first = origin if origin is not None else (None, None)
        prev = None if origin is not None else self.runner.start_id
        with torch.inference_mode():
            for start in range(0, len(ids), CHUNK):
                block = ids[start : start + CHUNK]
                inputs = block[:-1] if prev is None else [prev, *block[:-1]]
                rows = [] if prev is not None else [first.unsqueeze(0)]  # (1, vocab)
                if inputs:
                    out, state = self.runner.forward(inputs, state)
                    rows.append(out[0])  # (t, vocab)
                logits = rows[0] if len(rows) == 1 else torch.cat(rows)
                logp = torch.log_softmax(logits.float(), dim=-1).cpu()
                prev = block[-1]
                for j in range(len(block)):
                    yield start + j, logp[j]
