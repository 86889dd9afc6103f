"""Language models with ONE contract: ``forward(ids, state=None) -> (logits, state)``.

``ids`` is a LongTensor (batch, time); ``logits`` is (batch, time, vocab); ``state`` is a tuple
of tensors whose layout differs per model — callers treat it as opaque and only use
``init_state`` and ``detach_state``. Feeding a sequence in one
call or one token at a time while carrying the state gives the same logits: that is what lets the
REPL predict incrementally.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnrepl.config import ModelConfig

State = tuple[Tensor, ...]


class LanguageModel(nn.Module):
    """Shared plumbing: embedding, optional tied decoder, state helpers."""

    def __init__(self, cfg: ModelConfig, embed_rows: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(embed_rows, cfg.embed)
        self.drop = nn.Dropout(cfg.dropout)
        feat = self.feature_size()
        # Tying needs the decoder input to be `embed` wide; project when the body is wider.
        self.proj = nn.Linear(feat, cfg.embed) if cfg.tie and feat != cfg.embed else None
        self.asm = None
        self.clusters = None
        if cfg.cutoffs and cfg.tie:
            # Tied and factored by frequency class: P(word) = P(class) * P(word | class), every
            # word scored with its own embedding row. Training computes only the head and the
            # classes its targets fall in (see _class_nll).
            self.clusters = nn.Linear(cfg.embed, len(cfg.cutoffs))
        elif cfg.cutoffs:
            # Frequent words get a full softmax, rarer clusters smaller projections: the
            # output layer stops dominating the cost of a 30k-word vocabulary.
            self.asm = nn.AdaptiveLogSoftmaxWithLoss(
                feat, cfg.vocab_size, list(cfg.cutoffs), div_value=4.0
            )
        full = not cfg.tie and not cfg.cutoffs
        self.decoder = nn.Linear(feat, cfg.vocab_size, bias=False) if full else None
        self.decoder_bias = (
            None if self.asm is not None else nn.Parameter(torch.zeros(cfg.vocab_size))
        )
        nn.init.normal_(self.embed.weight, std=0.1 if cfg.tie else 1.0)
        if cfg.one_hot:  # row i is token i's one-hot vector (the window model's padding: zeros)
            with torch.no_grad():
                self.embed.weight.copy_(torch.eye(embed_rows, cfg.embed))
            self.embed.weight.requires_grad_(False)

    def feature_size(self) -> int:
        return self.cfg.hidden

    def head(self, h: Tensor) -> Tensor:
        """(batch, time, feat) -> (batch, time, vocab) logits (log-probabilities when classed)."""
        h = self.drop(h)
        if self.asm is not None:
            b, t, f = h.shape
            with torch.autocast(h.device.type, enabled=False):  # its index_copy_ needs one dtype
                return self.asm.log_prob(h.reshape(b * t, f).float()).view(b, t, -1)
        if self.cfg.tie:
            z = self.proj(h) if self.proj is not None else h
            weight = self.embed.weight[: self.cfg.vocab_size]
            logits = nn.functional.linear(z, weight, self.decoder_bias)
            if self.clusters is not None:
                return self.normalize_output(torch.cat([logits, self.clusters(z)], -1))
            return logits
        return self.decoder(h) + self.decoder_bias

    def output_layer(self) -> tuple[nn.Module | None, Tensor, Tensor] | None:
        """The output as (projection or None, weight, bias): head(h) equals
        normalize_output(linear(proj(h), weight, bias)) in eval mode. None for the adaptive
        softmax, which is not one matrix product. Lets the batch-1 fast path lay it out once."""
        if self.asm is not None:
            return None
        if not self.cfg.tie:
            return None, self.decoder.weight, self.decoder_bias
        weight, bias = self.embed.weight[: self.cfg.vocab_size], self.decoder_bias
        if self.clusters is not None:
            weight = torch.cat([weight, self.clusters.weight])
            bias = torch.cat([bias, self.clusters.bias])
        return self.proj, weight, bias

    def normalize_output(self, logits: Tensor) -> Tensor:
        """Logits of output_layer() -> what head() returns. With frequency classes the input is
        every word's logit then each rarer class's, and the result the log-probability of
        each word: the shortlist's and the classes' from one softmax, then each class's
        words given the class."""
        if self.clusters is None:
            return logits
        v, c0 = self.cfg.vocab_size, self.cfg.cutoffs[0]
        head = torch.log_softmax(torch.cat([logits[..., :c0], logits[..., v:]], -1).float(), -1)
        bounds = (*self.cfg.cutoffs, v)
        parts = [head[..., :c0]]
        for i, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
            within = torch.log_softmax(logits[..., lo:hi].float(), -1)
            parts.append(within + head[..., c0 + i, None])
        return torch.cat(parts, -1)

    def _class_nll(self, z: Tensor, targets: Tensor) -> Tensor:
        """Negative log-likelihood of each of `targets` (n,) given z (n, embed): the shortlist and
        class logits for every row, each class's words only for the rows whose target is in it."""
        cutoffs, v = self.cfg.cutoffs, self.cfg.vocab_size
        bounds = (0, *cutoffs, v)
        sizes = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
        extra = self.embed.weight.shape[0] - v  # rows past the vocabulary (none for recurrent)
        # One split, not a slice per class: its backward writes a single full-size gradient.
        weights = self.embed.weight.split([*sizes, extra] if extra else sizes)
        biases = self.decoder_bias.split(sizes)
        c0 = cutoffs[0]
        logits = torch.cat([nn.functional.linear(z, weights[0], biases[0]), self.clusters(z)], -1)
        head = torch.log_softmax(logits.float(), -1)
        cls = torch.bucketize(targets, targets.new_tensor(cutoffs), right=True)  # 0 = shortlist
        head_target = torch.where(cls == 0, targets, c0 - 1 + cls)
        ll = head.gather(1, head_target[:, None]).squeeze(1)
        for i in range(1, len(sizes)):
            rows = (cls == i).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            within = nn.functional.linear(z[rows], weights[i], biases[i])
            lp = torch.log_softmax(within.float(), -1).gather(
                1, (targets[rows] - bounds[i])[:, None]
            )
            ll = ll.index_add(0, rows, lp.squeeze(1))
        return -ll

    def forward(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        h, state = self.features(ids, state)
        return self.head(h), state

    def loss(
        self, ids: Tensor, targets: Tensor, state: State | None = None
    ) -> tuple[Tensor, State]:
        """Mean cross entropy of `targets` (batch, time) given `ids`, and the new state."""
        losses, state = self.token_losses(ids, targets, state)
        return losses.mean(), state

    def token_losses(
        self, ids: Tensor, targets: Tensor, state: State | None = None
    ) -> tuple[Tensor, State]:
        """-log p of each of `targets` (batch, time), flattened to (batch * time,), and the new
        state. Equal to cross_entropy(forward(ids), reduction="none") but, with an adaptive or
        class-factored softmax, computes only the clusters the targets fall in instead of the
        full distribution."""
        if self.clusters is not None:
            h, state = self.features(ids, state)
            h = self.drop(h)
            z = self.proj(h) if self.proj is not None else h
            return self._class_nll(z.flatten(0, 1), targets.flatten()), state
        if self.asm is None:
            logits, state = self(ids, state)
            return nn.functional.cross_entropy(
                logits.flatten(0, 1).float(), targets.flatten(), reduction="none"
            ), state
        h, state = self.features(ids, state)
        h = self.drop(h)
        with torch.autocast(h.device.type, enabled=False):  # its index_copy_ needs one dtype
            return -self.asm(h.flatten(0, 1).float(), targets.flatten()).output, state

    def features(self, ids: Tensor, state: State | None) -> tuple[Tensor, State]:
        raise NotImplementedError

    def init_state(self, batch: int) -> State:
        raise NotImplementedError

    def num_parameters(self) -> int:
        """The learned weights (a one-hot model's identity input table is not learned)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # State helpers: the state is opaque to every caller outside this module.
    def detach_state(self, state: State) -> State:
        return tuple(s.detach() for s in state)

    def select_state(self, state: State, rows: Tensor) -> State:
        """The batch rows `rows` of `state`, in that order (a beam search's survivors)."""
        return tuple(s.index_select(1, rows) for s in state)  # (layers, batch, hidden)

    def join_states(self, states: list[State]) -> State:
        """One state whose batch rows are those of `states`, in order (select_state's inverse)."""
        return tuple(torch.cat(parts, 1) for parts in zip(*states, strict=True))


class RNNLM(LanguageModel):
    """Embedding -> vanilla RNN (tanh) | GRU | LSTM, 1..N layers -> (projection) -> softmax."""

    _CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg, cfg.vocab_size)
        kwargs = {"nonlinearity": "tanh"} if cfg.arch == "rnn" else {}
        self.rnn = self._CELLS[cfg.arch](
            cfg.embed,
            cfg.hidden,
            num_layers=cfg.layers,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            batch_first=True,
            **kwargs,
        )
        self.is_lstm = cfg.arch == "lstm"
        if self.is_lstm:
            # A forget-gate bias of 1 lets gradients flow through long spans from the start.
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_hh"):
                    with torch.no_grad():
                        p[cfg.hidden : 2 * cfg.hidden].fill_(1.0)

    def init_state(self, batch: int) -> State:
        w = self.embed.weight
        shape = (self.cfg.layers, batch, self.cfg.hidden)
        if self.is_lstm:
            return (w.new_zeros(shape), w.new_zeros(shape))
        return (w.new_zeros(shape),)

    def features(self, ids: Tensor, state: State | None) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(ids.shape[0])
        x = self.drop(self.embed(ids))  # (b, t, embed)
        if self.is_lstm:
            h, (hn, cn) = self.rnn(x, (state[0], state[1]))
            return h, (hn, cn)
        h, hn = self.rnn(x, state[0])  # h: (b, t, hidden); hn: (layers, b, hidden)
        return h, (hn,)


class WindowLM(LanguageModel):
    """Bengio et al. (2003): the last `window` tokens' embeddings, concatenated -> tanh -> softmax.

    The state is the previous window-1 token ids (batch, window-1), padded at the start of a text
    with a dedicated padding row of the embedding (id vocab_size), so the contract and the
    one-token-at-a-time equivalence are the same as for the recurrent models.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg, cfg.vocab_size + 1)
        self.pad = cfg.vocab_size
        self.hidden = nn.Linear(cfg.window * cfg.embed, cfg.hidden)
        nn.init.uniform_(
            self.hidden.weight,
            -1 / math.sqrt(cfg.window * cfg.embed),
            1 / math.sqrt(cfg.window * cfg.embed),
        )

    def init_state(self, batch: int) -> State:
        w = self.embed.weight
        ctx = torch.full((batch, self.cfg.window - 1), self.pad, dtype=torch.long, device=w.device)
        return (ctx,)

    def features(self, ids: Tensor, state: State | None) -> tuple[Tensor, State]:
        if state is None:
            state = self.init_state(ids.shape[0])
        n = self.cfg.window
        seq = torch.cat([state[0], ids], dim=1)  # (b, n-1+t)
        windows = seq.unfold(1, n, 1)  # (b, t, n): the n tokens ending at each position
        x = self.drop(self.embed(windows))  # (b, t, n, embed)
        h = torch.tanh(self.hidden(x.flatten(2)))  # (b, t, hidden)
        return h, (seq[:, seq.shape[1] - (n - 1) :],)

    def select_state(self, state: State, rows: Tensor) -> State:
        return (state[0].index_select(0, rows),)  # (batch, window-1)

    def join_states(self, states: list[State]) -> State:
        return (torch.cat([s[0] for s in states], 0),)


def parameter_count(cfg: ModelConfig) -> int:
    """The number of weights `build_model(cfg)` holds, computed without building it.

    Lets a loader check a config against the tensors of a file before allocating anything.
    """
    feat = cfg.hidden
    v, e = cfg.vocab_size, cfg.embed
    total = (v + (cfg.arch == "window")) * e
    if cfg.tie and feat != e:
        total += feat * e + e  # projection to the embedding width
    if cfg.cutoffs and cfg.tie:
        total += v + len(cfg.cutoffs) * (e + 1)  # bias, and one class vector (+ bias) each
    elif cfg.cutoffs:
        bounds = (*cfg.cutoffs, v)
        total += feat * (cfg.cutoffs[0] + len(cfg.cutoffs))  # head: shortlist + one per cluster
        for i in range(len(cfg.cutoffs)):
            width = int(feat // (4.0 ** (i + 1)))
            total += feat * width + width * (bounds[i + 1] - bounds[i])
    else:
        total += v  # decoder bias
        if not cfg.tie:
            total += feat * v
    if cfg.arch == "window":
        return total + cfg.window * e * cfg.hidden + cfg.hidden
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cfg.arch]
    for layer in range(cfg.layers):
        width = e if layer == 0 else cfg.hidden
        total += gates * cfg.hidden * (width + cfg.hidden + 2)
    return total


def learned_parameter_count(cfg: ModelConfig) -> int:
    """parameter_count less a one-hot model's fixed identity table: num_parameters, unbuilt."""
    table = (cfg.vocab_size + (cfg.arch == "window")) * cfg.embed if cfg.one_hot else 0
    return parameter_count(cfg) - table


def build_model(cfg: ModelConfig) -> LanguageModel:
    if cfg.arch == "window":
        return WindowLM(cfg)
    return RNNLM(cfg)
