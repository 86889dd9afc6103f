"""What happens inside a model at each step (`rnnrepl explain`, `rnnrepl neurons`).

For a text fed from the start, every step's input token, each layer's hidden state h_t (and,
for an LSTM, the cell state c_t and the gates i, f, g, o; for a GRU the gates r, z, n), the
output distribution y_t and the loss J_t = -log y_t[actual next token] — the quantities of the
notes' figure, computed from the model's own weights.

The recurrent layers are run one at a time through torch's own kernels (h_t for all t in one
call), and the gates are then recovered from h_{t-1} and x_t in one matrix product per layer;
only the LSTM cell state needs a loop, of element-wise operations. Tests check that h_t and the
logits equal the model's forward pass and that the gates reproduce h_t.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from rnnrepl.model.lm import RNNLM, LanguageModel


@dataclass(frozen=True)
class LayerTrace:
    """One layer over T steps: h (T, H); the LSTM cell state c (T, H); gates name -> (T, H)."""

    h: np.ndarray
    c: np.ndarray | None = None
    gates: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Trace:
    """A text through a model. Step t feeds inputs[t] (the start token, then the text's tokens)
    and predicts targets[t]; logp (T, vocab) is log y_t."""

    inputs: list[int]
    targets: list[int]
    input_norm: np.ndarray  # (T,) the input vector's Euclidean norm (1 for a one-hot model)
    layers: list[LayerTrace]
    logp: np.ndarray

    @property
    def loss(self) -> np.ndarray:
        """J_t = -log y_t[target], (T,)."""
        return -self.logp[np.arange(len(self.targets)), self.targets]


def trace(model: LanguageModel, ids: list[int], start_id: int, detail: bool = True) -> Trace:
    """Feed `ids` after `start_id` from the model's initial state, recording the insides
    (without `detail`, only each layer's h_t: a long text's gates would not fit in memory)."""
    model = model.eval()
    inputs = [start_id, *ids[:-1]]
    device = model.embed.weight.device
    x_ids = torch.tensor([inputs], device=device)
    with torch.no_grad():
        x = model.embed(x_ids)[0].float()  # (T, embed)
        if isinstance(model, RNNLM):
            layers = _recurrent_layers(model, x, detail)
            top = torch.from_numpy(layers[-1].h).to(device)[None]
        else:  # the fixed-window model: one hidden layer over the last `window` tokens
            top, _ = model.features(x_ids, None)
            layers = [LayerTrace(h=top[0].float().cpu().numpy())]
        logp = torch.log_softmax(model.head(top).float(), -1)[0]
    return Trace(
        inputs=inputs,
        targets=list(ids),
        input_norm=x.norm(dim=-1).cpu().numpy(),
        layers=layers,
        logp=logp.cpu().numpy(),
    )


def _recurrent_layers(model: RNNLM, x: Tensor, detail: bool) -> list[LayerTrace]:
    arch, rnn = model.cfg.arch, model.rnn
    out = []
    for layer in range(model.cfg.layers):
        w_ih, w_hh = (getattr(rnn, f"{n}_l{layer}").float() for n in ("weight_ih", "weight_hh"))
        b_ih, b_hh = (getattr(rnn, f"{n}_l{layer}").float() for n in ("bias_ih", "bias_hh"))
        single = _single_layer(arch, w_ih, w_hh, b_ih, b_hh)
        layer_in = x
        h = single(x[None])[0][0]  # (T, H)
        x = h
        if not detail:
            out.append(LayerTrace(h=h.cpu().numpy()))
            continue
        h_prev = torch.cat([h.new_zeros(1, h.shape[1]), h[:-1]])
        gi, gh = layer_in @ w_ih.T + b_ih, h_prev @ w_hh.T + b_hh
        out.append(_gates(arch, gi, gh, h))
    return out


def _single_layer(arch: str, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> nn.Module:
    kinds = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
    extra = {"nonlinearity": "tanh"} if arch == "rnn" else {}
    hidden, width = w_hh.shape[1], w_ih.shape[1]
    single = kinds[arch](width, hidden, batch_first=True, **extra).to(w_ih.device)
    for name, value in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh)):
        getattr(single, name).copy_(value)
    for name, value in (("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)):
        getattr(single, name).copy_(value)
    return single


def _gates(arch: str, gi: Tensor, gh: Tensor, h: Tensor) -> LayerTrace:
    """Gate activations from the input and recurrent pre-activations (torch's gate order)."""
    if arch == "rnn":
        return LayerTrace(h=h.cpu().numpy())
    if arch == "gru":
        (ir, iz, i_n), (hr, hz, hn) = gi.chunk(3, -1), gh.chunk(3, -1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(i_n + r * hn)
        return LayerTrace(h=h.cpu().numpy(), gates=_numpy({"r": r, "z": z, "n": n}))
    i, f, g, o = (gi + gh).chunk(4, -1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = torch.empty_like(h)
    prev = h.new_zeros(h.shape[1])
    for t in range(h.shape[0]):  # c_t = f_t * c_{t-1} + i_t * g_t
        prev = f[t] * prev + i[t] * g[t]
        c[t] = prev
    gates = _numpy({"i": i, "f": f, "g": g, "o": o})
    return LayerTrace(h=h.cpu().numpy(), c=c.cpu().numpy(), gates=gates)


def _numpy(tensors: dict[str, Tensor]) -> dict[str, np.ndarray]:
    return {k: v.cpu().numpy() for k, v in tensors.items()}


def most_active(layer: LayerTrace, n: int) -> np.ndarray:
    """Indices of the n units with the largest mean |h_t| over the text, in unit order."""
    if layer.h.shape[1] <= n:
        return np.arange(layer.h.shape[1])
    return np.sort(np.argsort(-np.abs(layer.h).mean(0), kind="stable")[:n])
