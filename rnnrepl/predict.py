"""Inference: next-token distributions with a prefix state cache, top-k, streaming generation,
per-token scoring. Used by every command that loads a model, and by the REPL.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnrepl.checkpoint import LoadedModel
from rnnrepl.config import SampleConfig
from rnnrepl.models import State
from rnnrepl.sampling import pick

CHUNK = 256  # tokens per batched forward call when feeding long text


@dataclass(frozen=True)
class Step:
    """One generated token: its id, its text, and the probability it was drawn with."""

    token_id: int
    text: str
    prob: float


@dataclass(frozen=True)
class TokenScore:
    token: str
    prob: float
    loss: float  # J_t = -log p(actual token)
    topk: list[tuple[str, float]]


@dataclass(frozen=True)
class ScoreSummary:
    tokens: int
    mean_loss: float  # nats per token

    @property
    def perplexity(self) -> float:
        return math.exp(self.mean_loss) if self.tokens else math.nan

    @property
    def bits_per_token(self) -> float:
        return self.mean_loss / math.log(2) if self.tokens else math.nan


class Predictor:
    """Wraps a loaded model for inference. Keeps a cache of states along the current context so
    that extending, shortening or editing the end of the context costs O(changed tokens)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.model = loaded.model.eval()
        self.tok = loaded.tokenizer
        self.device = self.model.embed.weight.device
        start = self.tok.index.get("\n")
        self.start_id = 0 if start is None else start  # a text starts after a line break
        self._ids: list[int] = []  # cached context (after the start token)
        self._states: dict[int, tuple[State, Tensor]] = {}  # position -> (state, next logits)
        self.reset()

    # ---- the prefix cache -----------------------------------------------------------------
    def reset(self) -> None:
        with torch.inference_mode():
            logits, state = self.model(torch.tensor([[self.start_id]], device=self.device))
        self._ids = []
        self._states = {0: (state, logits[0, -1])}

    def logits_for(self, ids: list[int]) -> Tensor:
        """Next-token logits after the start token followed by `ids`, reusing cached states."""
        common = 0
        for a, b in zip(self._ids, ids, strict=False):
            if a != b:
                break
            common += 1
        base = max(p for p in self._states if p <= common)
        for p in [p for p in self._states if p > base]:
            del self._states[p]
        self._ids = list(ids)
        state, logits = self._states[base]
        pos = base
        with torch.inference_mode():
            while pos < len(ids):
                n = min(CHUNK, len(ids) - pos) if len(ids) - pos > 8 else 1
                x = torch.tensor([ids[pos : pos + n]], device=self.device)
                out, state = self.model(x, state)
                pos += n
                logits = out[0, -1]
                self._states[pos] = (state, logits)
        return logits

    def state_for(self, ids: list[int]) -> tuple[State, Tensor]:
        self.logits_for(ids)
        return self._states[len(ids)]

    # ---- distributions --------------------------------------------------------------------
    def distribution(self, text: str) -> tuple[Tensor, str]:
        """(probabilities over the vocabulary for what follows `text`, the partial word).

        At word level a half-typed word restricts the distribution to the words it begins,
        renormalised — next-word completion.
        """
        ids, partial = self.tok.split_partial(text)
        probs = torch.softmax(self.logits_for(ids).float(), dim=-1)
        if partial:
            mask = self.prefix_mask(partial)
            if mask.any():
                probs = torch.where(mask, probs, torch.zeros_like(probs))
                probs = probs / probs.sum()
        return probs, partial

    def prefix_mask(self, partial: str) -> Tensor:
        lower = self.tok.lowercase
        p = partial.lower() if lower else partial
        return torch.tensor(
            [t.startswith(p) and t != "<unk>" for t in self.tok.tokens], device=self.device
        )

    def top_k(self, text: str, k: int = 10) -> list[tuple[str, float]]:
        probs, _ = self.distribution(text)
        return self.top_of(probs, k)

    def top_of(self, probs: Tensor, k: int) -> list[tuple[str, float]]:
        k = max(1, min(k, probs.shape[-1]))
        values, idx = probs.topk(k)
        return [
            (self.tok.token_text(int(i)), float(v))
            for v, i in zip(values, idx, strict=True)
            if v > 0
        ]

    # ---- generation -----------------------------------------------------------------------
    def stream(self, text: str, cfg: SampleConfig) -> Iterator[Step]:
        """Sample a continuation of `text`, one Step at a time, as it is produced.

        Stops after cfg.max_tokens tokens or once the generated text contains cfg.stop (the stop
        string itself is not yielded beyond the token that completed it).
        """
        gen = torch.Generator()
        if cfg.seed is not None:
            gen.manual_seed(cfg.seed)
        else:
            gen.seed()
        ids = self.tok.encode(text)
        state, logits = self.state_for(ids)
        produced = ""
        with torch.inference_mode():
            for _ in range(cfg.max_tokens):
                probs = torch.softmax(logits.float(), dim=-1)
                nxt = int(pick(logits.cpu(), cfg, gen))
                piece = self.piece(nxt, produced)
                produced += piece
                yield Step(nxt, piece, float(probs[nxt]))
                if cfg.stop and cfg.stop in produced:
                    return
                out, state = self.model(torch.tensor([[nxt]], device=self.device), state)
                logits = out[0, -1]

    def piece(self, token_id: int, before: str) -> str:
        """The text a token adds after `before` (word level inserts spaces as decode would)."""
        if self.tok.level == "char":
            return self.tok.token_text(token_id)
        text = self.tok.token_text(token_id)
        if text == "\n" or not before or before.endswith("\n"):
            return text
        joined = self.tok.decode([0, token_id])  # "<unk>" + separator + token
        return joined[len("<unk>") :]

    def generate(self, text: str, cfg: SampleConfig) -> str:
        return "".join(step.text for step in self.stream(text, cfg))

    # ---- scoring --------------------------------------------------------------------------
    def score(self, text: str, k: int = 5) -> tuple[list[TokenScore], ScoreSummary]:
        """p and J_t = -log p of every token of `text` given everything before it."""
        ids = self.tok.encode(text)
        scores: list[TokenScore] = []
        total = 0.0
        for pos, logp in self._log_probs(ids):
            actual = ids[pos]
            loss = -float(logp[actual])
            probs = logp.exp()
            scores.append(
                TokenScore(
                    self.tok.token_text(actual), math.exp(-loss), loss, self.top_of(probs, k)
                )
            )
            total += loss
        return scores, ScoreSummary(len(ids), total / len(ids) if ids else math.nan)

    def mean_loss(self, ids: list[int]) -> ScoreSummary:
        """Mean cross entropy of ids (given the start token), the same figure score() reports."""
        total = 0.0
        for pos, logp in self._log_probs(ids, chunked=True):
            total -= float(logp.gather(-1, torch.tensor(ids[pos[0] : pos[1]]).unsqueeze(-1)).sum())
        return ScoreSummary(len(ids), total / len(ids) if ids else math.nan)

    def _log_probs(self, ids: list[int], chunked: bool = False):
        """Yield (position, log-probs predicting ids[position]) — or (span, block) when chunked."""
        state = None
        prev = self.start_id
        with torch.inference_mode():
            for start in range(0, len(ids), CHUNK):
                block = ids[start : start + CHUNK]
                x = torch.tensor([[prev, *block[:-1]]], device=self.device)
                out, state = self.model(x, state)
                logp = torch.log_softmax(out[0].float(), dim=-1).cpu()
                prev = block[-1]
                if chunked:
                    yield (start, start + len(block)), logp
                else:
                    for j in range(len(block)):
                        yield start + j, logp[j]
