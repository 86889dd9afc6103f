"""Inference: next-token distributions with a prefix state cache, top-k, streaming generation,
per-token scoring. Used by every command that loads a model, and by the REPL.
"""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnrepl.config import SampleConfig
from rnnrepl.infer.prefix_cache import IncrementalEncoder, StateCache, Superseded
from rnnrepl.model.lm import State
from rnnrepl.model.sampling import mask_unk, pick
from rnnrepl.model.step import fast_step
from rnnrepl.store.modelfile import LoadedModel
from rnnrepl.text.tokenizers import Joiner

CHUNK = 256  # tokens per batched forward call when feeding long text
SHAPE_STEP = 64  # batched inputs are cut to multiples of this (see Predictor._forward)


@dataclass(frozen=True)
class Step:
    """One generated token: its id, its text, and the probability it was drawn with."""

    token_id: int
    text: str
    prob: float


@dataclass(frozen=True)
class Prediction:
    """What may follow a text (see ``Predictor.predict``); distributions over the vocabulary."""

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
    """Wraps a loaded model for inference. Keeps states along the current context (see
    ``prefix_cache``) so that extending, shortening or editing the end of the context costs
    O(changed tokens), with memory bounded however long the context grows."""

    def __init__(self, loaded: LoadedModel, int8: bool = False) -> None:
        self.loaded = loaded
        self.model = loaded.model.eval()
        self.tok = loaded.tokenizer
        self.device = self.model.embed.weight.device
        start = self.tok.index.get("\n")
        self.start_id = 0 if start is None else start  # a text starts after a line break
        # Fused batch-1 single-token step (typing, generation); int8 where asked and available.
        self._fast = fast_step(self.model, int8)
        self.int8 = bool(getattr(self._fast, "int8", False))
        self._cache = StateCache(self._step, self.start_id)
        self._enc = IncrementalEncoder(self.tok)
        self._synced = True  # the cache holds exactly the encoder's last ids
        self._sorted: list[tuple[str, int]] | None = None

    # ---- the prefix cache -----------------------------------------------------------------
    def _step(self, ids: list[int], state: State | None) -> tuple[Tensor, State]:
        """Feed `ids`: (logits after the last one, (vocab,), state).

        A span is run through the recurrent body in one batched call and only its last position
        through the output layer: logits for every position of a long paste (16,000 words wide
        at word level) cost more than the recurrence itself."""
        with torch.inference_mode():
            if len(ids) == 1:
                out, state = self._fast(torch.tensor([ids], device=self.device), state)
                return out[0, -1].clone(), state  # clone: a view would pin the (1, t, vocab) output
            h, state = self._forward(ids, state, self.model.features)  # (1, t, feat)
            return self.model.head(h[:, -1:])[0, -1], state

    def _forward(self, ids: list[int], state: State | None, run=None) -> tuple[Tensor, State]:
        """model(ids, state) — or `run` (model.features) — for a (1, t) input, with few
        distinct input lengths.

        oneDNN keeps a compiled kernel per input shape (up to 1,024 of them): fed the arbitrary
        lengths of a long session, a REPL grew by ~8 MB per 1,000 actions (bench/soak.py). The
        part that is a multiple of SHAPE_STEP tokens takes oneDNN (fastest for long inputs); the
        rest, shorter, takes torch's native kernels, which cache nothing."""
        run = run or self.model
        head = len(ids) - len(ids) % SHAPE_STEP
        outs = []
        if head:
            out, state = run(torch.tensor([ids[:head]], device=self.device), state)
            outs.append(out)
        if head < len(ids):
            with warnings.catch_warnings():  # toggling oneDNN warns about TF32 on Intel GPUs
                warnings.simplefilter("ignore")
                with torch.backends.mkldnn.flags(enabled=False):
                    out, state = run(torch.tensor([ids[head:]], device=self.device), state)
            outs.append(out)
        return (outs[0] if len(outs) == 1 else torch.cat(outs, 1)), state

    def reset(self) -> None:
        self._cache.reset()
        self._enc.reset()
        self._synced = True

    @property
    def tokens_fed(self) -> int:
        """Tokens run through the model by the cache so far (a cost counter)."""
        return self._cache.fed

    def logits_for(self, ids: list[int], interrupt: Callable[[], bool] | None = None) -> Tensor:
        """Next-token logits after the start token followed by `ids`, reusing cached states."""
        self._synced = False
        return self._cache.logits(ids, interrupt=interrupt)

    def state_for(self, ids: list[int]) -> tuple[State, Tensor]:
        logits = self.logits_for(ids)
        return self._cache.state(len(ids)), logits

    def split(self, text: str) -> tuple[list[int], str]:
        """tokenizer.split_partial(text), incrementally: (complete ids (read-only), partial)."""
        if text != self._enc.text:
            self._synced = False  # the encoder moves on without the cache
        ids, partial, _ = self._enc.split(text)
        return ids, partial

    @property
    def unknown_count(self) -> int:
        """How many of the complete tokens of the last split text are <unk>."""
        return self._enc.unknown

    # ---- distributions --------------------------------------------------------------------
    def predict(self, text: str, interrupt: Callable[[], bool] | None = None) -> Prediction:
        """What may follow `text`: completions of the half-typed word and/or the next token.

        At word level a half-typed word restricts the distribution to the words it begins,
        renormalised. When that word is itself a whole word (or no word begins with it), the
        next token after it is computed too, as if a space followed. <unk> is never offered:
        it is left out of every list and the rest renormalised. `interrupt` is polled between
        batched calls while a long text is fed; when it returns True, ``Superseded`` is raised
        (the cache keeps the work done so far).
        """
        ids, partial, stable = self._enc.split(text)
        known = stable if self._synced else 0
        self._synced = False  # until the cache has really moved to these ids
        logits = self._cache.logits(ids, known=known, interrupt=interrupt)
        self._synced = True
        probs = torch.softmax(logits.float(), dim=-1)
        if not partial:
            return Prediction("", None, *without_unk(probs))
        completions = self._completions(probs, partial)
        word = self.tok.encode(partial)
        if completions is not None and 0 in word:  # it only begins longer words
            return Prediction(partial, completions, None, 0.0)
        after, _ = self._step(word, self._cache.state(len(ids)))
        return Prediction(partial, completions, *without_unk(torch.softmax(after.float(), -1)))

    def _completions(self, probs: Tensor, partial: str) -> Tensor | None:
        """`probs` restricted to the words that begin with `partial`, renormalised (or None)."""
        idx = self.prefix_ids(partial)
        kept = probs[idx]
        total = kept.sum()
        if not len(idx) or not total > 0:
            return None
        return torch.zeros_like(probs).index_copy_(0, idx, kept / total)

    def distribution(
        self, text: str, interrupt: Callable[[], bool] | None = None
    ) -> tuple[Tensor, str]:
        """``predict`` in its older shape: (the completions of the partial word, else the next
        token; the partial word)."""
        pred = self.predict(text, interrupt)
        return pred.first, pred.partial

    def prefix_ids(self, partial: str) -> Tensor:
        """Ids of the tokens (never <unk>) that start with `partial`, by binary search."""
        if self._sorted is None:
            self._sorted = sorted((t, i) for i, t in enumerate(self.tok.tokens) if i)
        p = partial.lower() if self.tok.lowercase else partial
        lo = bisect.bisect_left(self._sorted, (p, -1))
        hi = bisect.bisect_left(self._sorted, (p + "\U0010ffff", -1), lo)
        ids = [i for t, i in self._sorted[lo:hi] if t.startswith(p)]
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def prefix_mask(self, partial: str) -> Tensor:
        mask = torch.zeros(self.tok.size, dtype=torch.bool, device=self.device)
        mask[self.prefix_ids(partial)] = True
        return mask

    def top_k(self, text: str, k: int = 10) -> list[tuple[str, float]]:
        probs, _ = self.distribution(text)
        return self.top_of(probs, k)

    def top_of(self, probs: Tensor, k: int) -> list[tuple[str, float]]:
        k = max(1, min(k, probs.shape[-1]))
        values, idx = probs.topk(k)
        return [
            (self.tok.token_text(int(i)), float(v))
            for v, i in zip(values.tolist(), idx.tolist(), strict=True)
            if v > 0
        ]

    # ---- ghost text -------------------------------------------------------------------------
    def complete(
        self, text: str, max_tokens: int = 24, interrupt: Callable[[], bool] | None = None
    ) -> list[str]:
        """Greedy continuation of `text` to the end of the current word, as token pieces.

        Mid-word: the rest of that word. At a word boundary: the separator and the next word.
        A completed word is followed by a " " piece, as on a phone keyboard: always at word
        level (except after an opening bracket); at char level when the model's most likely
        next character is a space. Never crosses a line break, never offers <unk>. Runs after
        ``predict(text)`` without moving the cache.
        """
        pred = self.predict(text, interrupt)
        if self.tok.level == "word":
            return self._complete_word(text, pred)
        ids = self._enc.ids
        state, logits = self._cache.state(len(ids)), self._cache.last[1]
        pieces: list[str] = []
        in_word = False
        for _ in range(max_tokens):
            nxt = int(mask_unk(logits).argmax())
            ch = self.tok.token_text(nxt)
            word = ch.isalnum() or ch in "_'’-"
            if nxt == 0 or ch == "\n" or (in_word and not word):
                if in_word and ch == " ":
                    pieces.append(" ")
                break
            in_word = in_word or word
            pieces.append(ch)
            if interrupt is not None and interrupt():
                raise Superseded
            logits, state = self._step([nxt], state)
        return pieces if in_word else []

    def _complete_word(self, text: str, pred: Prediction) -> list[str]:
        """Word level: the rest of the half-typed word, or the next word after a whole one."""
        if pred.partial and pred.completions is None:
            return []  # no word begins with it: nothing to complete
        if pred.completions is not None:
            best = int(pred.completions.argmax())
            word = self.tok.token_text(best)
            typed = pred.partial.lower() if self.tok.lowercase else pred.partial
            if word != typed:
                return [word[len(typed) :], " "]
        if pred.next is None or not pred.next.any():
            return []
        best = int(pred.next.argmax())
        piece = self.tok.token_text(best)
        if piece == "\n":
            return []
        return [self.piece(best, text), *([] if piece in ("(", "[", "{") else [" "])]

    # ---- generation -----------------------------------------------------------------------
    def stream(self, text: str, cfg: SampleConfig) -> Iterator[Step]:
        """Sample a continuation of `text`, one Step at a time, as it is produced.

        Stops after cfg.max_tokens tokens or once the generated text contains cfg.stop (the stop
        string itself is not yielded beyond the token that completed it). Each step extends the
        prefix cache by one token, so the REPL's next keystroke after a stream costs nothing.
        """
        gen = torch.Generator()
        if cfg.seed is not None:
            gen.manual_seed(cfg.seed)
        else:
            gen.seed()
        ids = self.tok.encode(text)
        logits = self.logits_for(ids)
        version = self._cache.version
        before, produced = text[-200:], ""
        for _ in range(cfg.max_tokens):
            probs = torch.softmax(logits.float(), dim=-1)
            nxt = int(pick(logits.cpu() if cfg.allow_unk else mask_unk(logits.cpu()), cfg, gen))
            piece = self.piece(nxt, before)
            before = (before + piece)[-200:]
            produced += piece
            yield Step(nxt, piece, float(probs[nxt]))
            if cfg.stop and cfg.stop in produced[-(len(cfg.stop) + len(piece)) :]:
                return
            ids.append(nxt)
            if self._cache.version == version:  # nobody moved the cache since our last step
                self._synced = False
                logits = self._cache.extend(nxt)
            else:
                logits = self.logits_for(ids)
            version = self._cache.version

    def piece(self, token_id: int, before: str) -> str:
        """The text a token adds after `before` (word level spaces it as decode would)."""
        text = self.tok.token_text(token_id)
        if self.tok.level == "char":
            return text
        return Joiner(self.tok, before.rpartition("\n")[2][-200:]).push(text)

    def generate(self, text: str, cfg: SampleConfig) -> str:
        return "".join(step.text for step in self.stream(text, cfg))

    # ---- scoring --------------------------------------------------------------------------
    def score(
        self, text: str, k: int = 5, context: str = ""
    ) -> tuple[list[TokenScore], ScoreSummary]:
        """p and J_t = -log p of every token of `text` given everything before it (`context`,
        then `text`'s own earlier tokens)."""
        ids = self.tok.encode(text)
        origin = self.state_for(self.tok.encode(context)) if context else None
        scores: list[TokenScore] = []
        total = 0.0
        for pos, logp in self._log_probs(ids, origin=origin):
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

    def mean_loss(
        self, ids: list[int], on_progress: Callable[[int, int], None] | None = None
    ) -> ScoreSummary:
        """Mean cross entropy of ids (given the start token), the same figure score() reports.

        on_progress(tokens done, tokens in all) is called after each chunk of CHUNK tokens."""
        total = 0.0
        for pos, logp in self._log_probs(ids, chunked=True):
            total -= float(logp.gather(-1, torch.tensor(ids[pos[0] : pos[1]]).unsqueeze(-1)).sum())
            if on_progress is not None:
                on_progress(pos[1], len(ids))
        return ScoreSummary(len(ids), total / len(ids) if ids else math.nan)

    def _log_probs(self, ids: list[int], chunked: bool = False, origin=None):
        """Yield (position, log-probs predicting ids[position]) — or (span, block) when chunked.

        Starts after the start token, or from `origin` = (state, logits) after some context.
        """
        state, first = origin if origin is not None else (None, None)
        prev = None if origin is not None else self.start_id
        with torch.inference_mode():
            for start in range(0, len(ids), CHUNK):
                block = ids[start : start + CHUNK]
                inputs = block[:-1] if prev is None else [prev, *block[:-1]]
                rows = [] if prev is not None else [first.unsqueeze(0)]  # (1, vocab)
                if inputs:
                    out, state = self._forward(inputs, state)
                    rows.append(out[0])  # (t, vocab)
                logits = rows[0] if len(rows) == 1 else torch.cat(rows)
                logp = torch.log_softmax(logits.float(), dim=-1).cpu()
                prev = block[-1]
                if chunked:
                    yield (start, start + len(block)), logp
                else:
                    for j in range(len(block)):
                        yield start + j, logp[j]
