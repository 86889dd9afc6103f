"""A fast single-token step for recurrent models at batch 1 (typing, generation).

nn.LSTM at batch 1 spends most of its time in framework overhead (and oneDNN set-up); one fused
matrix product per layer — [x, h] @ [W_ih; W_hh]^T + (b_ih + b_hh) — does the same arithmetic
with the weights laid out once, contiguously. Same contract as the model: ``step(ids, state) ->
(logits, state)``; the results equal ``model(ids, state)`` to float rounding (tests prove it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnrepl.models import RNNLM, LanguageModel, State


class FastStep:
    """Wraps an eval-mode RNNLM; call with ids of shape (1, 1)."""

    def __init__(self, model: RNNLM) -> None:
        self.model = model
        self.kind = model.cfg.arch
        self.layers = []
        rnn = model.rnn
        with torch.no_grad():
            for n in range(model.cfg.layers):
                w_ih = getattr(rnn, f"weight_ih_l{n}")
                w_hh = getattr(rnn, f"weight_hh_l{n}")
                b_ih = getattr(rnn, f"bias_ih_l{n}")
                b_hh = getattr(rnn, f"bias_hh_l{n}")
                if self.kind == "gru":  # the candidate gate needs W_hn h apart (it is reset-gated)
                    self.layers.append(
                        (w_ih.t().contiguous(), b_ih.clone(), w_hh.t().contiguous(), b_hh.clone())
                    )
                else:
                    self.layers.append(
                        (torch.cat([w_ih, w_hh], 1).t().contiguous(), (b_ih + b_hh).contiguous())
                    )
        self.embed = model.embed.weight

    @torch.inference_mode()
    def __call__(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if state is None:
            state = self.model.init_state(1)
        x = self.embed[ids[0, 0]].unsqueeze(0)  # (1, embed)
        step = {"lstm": self._lstm, "gru": self._gru, "rnn": self._rnn}[self.kind]
        h, new_state = step(x, state)
        return self.model.head(h.unsqueeze(0)), new_state  # (1, 1, vocab)

    def _lstm(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        hs, cs = [], []
        for n, (w, b) in enumerate(self.layers):
            gates = torch.addmm(b, torch.cat([x, state[0][n]], 1), w)  # (1, 4 * hidden)
            i, f, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * state[1][n] + torch.sigmoid(i) * torch.tanh(g)
            x = torch.sigmoid(o) * torch.tanh(c)
            hs.append(x)
            cs.append(c)
        return x, (torch.stack(hs), torch.stack(cs))

    def _rnn(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        hs = []
        for n, (w, b) in enumerate(self.layers):
            x = torch.tanh(torch.addmm(b, torch.cat([x, state[0][n]], 1), w))
            hs.append(x)
        return x, (torch.stack(hs),)

    def _gru(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        hs = []
        for n, (w_i, b_i, w_h, b_h) in enumerate(self.layers):
            h = state[0][n]
            gi = torch.addmm(b_i, x, w_i)
            gh = torch.addmm(b_h, h, w_h)
            ir, iz, inn = gi.chunk(3, 1)
            hr, hz, hn = gh.chunk(3, 1)
            r = torch.sigmoid(ir + hr)
            z = torch.sigmoid(iz + hz)
            cand = torch.tanh(inn + r * hn)
            x = (1 - z) * cand + z * h
            hs.append(x)
        return x, (torch.stack(hs),)


def fast_step(model: LanguageModel):
    """The fastest exact single-token step for `model`: FastStep for recurrent models, else
    the model itself (the window model is one matrix product already)."""
    if isinstance(model, RNNLM) and not model.training:
        return FastStep(model)
    return model
