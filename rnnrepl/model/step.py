"""A fast single-token step for recurrent models at batch 1 (typing, generation).

nn.LSTM at batch 1 spends most of its time in framework overhead (and oneDNN set-up); one fused
matrix product per layer — [x, h] @ [W_ih; W_hh]^T + (b_ih + b_hh) — does the same arithmetic
with the weights laid out once, contiguously. Same contract as the model: ``step(ids, state) ->
(logits, state)``; the results equal ``model(ids, state)`` to float rounding (tests prove it).

With ``int8=True`` the recurrent matrices are quantised per output row to int8 and multiplied by
fbgemm/oneDNN's dynamic int8 kernels (activations quantised per call): a batch-1 step reads a
quarter of the bytes and takes about half the time. That is an approximation, measured close:
on the bundled character model it changes the validation loss by under 0.1% (bench/ and tests
measure it). The output layer is one matrix product laid out once too (transposed: a batch-1
product with a 33k x 400 word matrix takes half the time that way); with ``int8=True`` it is
quantised as well when it is large (more than INT8_OUTPUT_MIN weights, a word vocabulary),
where reading it dominates the step: 4 ms -> 0.2 ms on a 33k-word model. Small outputs (the
characters) stay fp32. The embedding always stays fp32.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from rnnrepl.model.devices import cpu_flags
from rnnrepl.model.lm import RNNLM, LanguageModel, State

Linear = Callable[[Tensor], Tensor]  # (1, in) -> (1, out): x @ W^T + b
INT8_OUTPUT_MIN = 1 << 20  # output-layer weights above which int8 also quantises the output


class FastStep:
    """Wraps an eval-mode RNNLM; call with ids of shape (batch, 1)."""

    def __init__(self, model: RNNLM, int8: bool = False) -> None:
        self.model = model
        self.kind = model.cfg.arch
        self.int8 = int8
        self.layers: list[tuple[Linear, ...]] = []
        rnn = model.rnn
        with torch.no_grad():
            for n in range(model.cfg.layers):
                w_ih = getattr(rnn, f"weight_ih_l{n}")
                w_hh = getattr(rnn, f"weight_hh_l{n}")
                b_ih = getattr(rnn, f"bias_ih_l{n}")
                b_hh = getattr(rnn, f"bias_hh_l{n}")
                if self.kind == "gru":  # the candidate gate needs W_hn h apart (it is reset-gated)
                    self.layers.append((self._linear(w_ih, b_ih), self._linear(w_hh, b_hh)))
                else:
                    self.layers.append((self._linear(torch.cat([w_ih, w_hh], 1), b_ih + b_hh),))
            self.head = self._head(model)
        self.embed = model.embed.weight

    def _linear(self, weight: Tensor, bias: Tensor, int8: bool | None = None) -> Linear:
        """x -> x @ weight^T + bias, fp32 (weights laid out transposed once) or int8."""
        if self.int8 if int8 is None else int8:
            return int8_linear(weight, bias)
        w, b = weight.detach().t().contiguous(), bias.detach().clone().contiguous()
        return lambda x: torch.addmm(b, x, w)

    def _head(self, model: RNNLM) -> Callable[[Tensor], Tensor]:
        """(1, hidden) -> (1, 1, vocab), equal to model.head (int8: measured close)."""
        layer = model.output_layer()
        if layer is None:  # adaptive softmax
            return lambda h: model.head(h.unsqueeze(0))
        proj, weight, bias = layer
        proj_linear = self._linear(proj.weight, proj.bias, int8=False) if proj else None
        out = self._linear(weight, bias, self.int8 and weight.numel() > INT8_OUTPUT_MIN)

        def head(h: Tensor) -> Tensor:
            z = proj_linear(h) if proj_linear else h
            return model.normalize_output(out(z)).unsqueeze(0)

        return head

    @torch.inference_mode()
    def __call__(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if state is None:
            state = self.model.init_state(ids.shape[0])
        x = self.embed[ids[:, 0]]  # (batch, embed): a beam search steps a batch of one token each
        step = {"lstm": self._lstm, "gru": self._gru, "rnn": self._rnn}[self.kind]
        h, new_state = step(x, state)
        return self.head(h).transpose(0, 1), new_state  # (1, batch, vocab) -> (batch, 1, vocab)

    def _lstm(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        hs, cs = [], []
        for n, (linear,) in enumerate(self.layers):
            gates = linear(torch.cat([x, state[0][n]], 1))  # (1, 4 * hidden)
            i, f, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * state[1][n] + torch.sigmoid(i) * torch.tanh(g)
            x = torch.sigmoid(o) * torch.tanh(c)
            hs.append(x)
            cs.append(c)
        return x, (torch.stack(hs), torch.stack(cs))

    def _rnn(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        hs = []
        for n, (linear,) in enumerate(self.layers):
            x = torch.tanh(linear(torch.cat([x, state[0][n]], 1)))
            hs.append(x)
        return x, (torch.stack(hs),)

    def _gru(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        hs = []
        for n, (input_linear, hidden_linear) in enumerate(self.layers):
            h = state[0][n]
            gi = input_linear(x)
            gh = hidden_linear(h)
            ir, iz, inn = gi.chunk(3, 1)
            hr, hz, hn = gh.chunk(3, 1)
            r = torch.sigmoid(ir + hr)
            z = torch.sigmoid(iz + hz)
            cand = torch.tanh(inn + r * hn)
            x = (1 - z) * cand + z * h
            hs.append(x)
        return x, (torch.stack(hs),)


def int8_linear(weight: Tensor, bias: Tensor) -> Linear:
    """x -> x @ weight^T + bias with `weight` quantised to int8, one scale per output row."""
    w = weight.detach().float().contiguous()
    scale = (w.abs().amax(1) / 127).clamp_min(1e-12).double()
    zero = torch.zeros(w.shape[0], dtype=torch.long)
    with warnings.catch_warnings():  # quantized tensor constructors warn of deprecation
        warnings.simplefilter("ignore")
        packed = torch.ops.quantized.linear_prepack(
            torch.quantize_per_channel(w, scale, zero, 0, torch.qint8), bias.detach().float()
        )
    # Without VNNI, fbgemm's u8 x s8 products saturate in 16 bits unless inputs use 7 bits.
    reduce_range = not ({"avx512_vnni", "avx_vnni"} & cpu_flags())
    return lambda x: torch.ops.quantized.linear_dynamic(x, packed, reduce_range)


@functools.cache
def int8_available() -> bool:
    """Whether this torch build can run the int8 step here (x86 fbgemm/oneDNN engines)."""
    try:
        if torch.backends.quantized.engine not in ("x86", "fbgemm", "onednn"):
            return False
        linear = int8_linear(torch.eye(4), torch.zeros(4))
        return bool(torch.allclose(linear(torch.ones(1, 4)), torch.ones(1, 4), atol=0.05))
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


def fast_step(model: LanguageModel, int8: bool = False):
    """The fastest single-token step for `model`: FastStep for recurrent models on the CPU
    (int8 when asked for and available), else the model itself (the window model is one
    matrix product already)."""
    if isinstance(model, RNNLM) and not model.training:
        int8 = int8 and model.embed.weight.device.type == "cpu" and int8_available()
        return FastStep(model, int8=int8)
    return model
