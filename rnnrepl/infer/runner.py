"""Batch-1 calls into a model for inference: one token through the fused fast step, a span
through the recurrent body with few distinct input shapes and only its last position through
the output layer."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from rnnrepl.model.lm import State
from rnnrepl.model.step import fast_step

SHAPE_STEP = 64  # batched inputs are cut to multiples of this (see ModelRunner.forward)


class ModelRunner:
    """A model in eval mode with its fast step, its device and the id a text starts after."""

    def __init__(self, model: torch.nn.Module, tokenizer, int8: bool = False) -> None:
        self.model = model.eval()
        self.device = self.model.embed.weight.device
        self.start_id = start_id(tokenizer)
        # Fused batch-1 single-token step (typing, generation); int8 where asked and available.
        self.fast = fast_step(self.model, int8)
        self.int8 = bool(getattr(self.fast, "int8", False))

    def step(self, ids: list[int], state: State | None) -> tuple[Tensor, State]:
        """Feed `ids`: (logits after the last one, (vocab,), state).

        A span is run through the recurrent body in one batched call and only its last position
        through the output layer: logits for every position of a long paste (16,000 words wide
        at word level) cost more than the recurrence itself."""
        with torch.inference_mode():
            if len(ids) == 1:
                out, state = self.fast(torch.tensor([ids], device=self.device), state)
                return out[0, -1].clone(), state  # clone: a view would pin the (1, t, vocab) output
            h, state = self.forward(ids, state, self.model.features)  # (1, t, feat)
            return self.model.head(h[:, -1:])[0, -1], state

    def forward(
        self, ids: list[int], state: State | None, run: Callable | None = None
    ) -> tuple[Tensor, State]:
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


def start_id(tokenizer) -> int:
    """The token a text is fed after: a line break, or the unknown token (id 0) without one."""
    start = tokenizer.index.get("\n")
    return 0 if start is None else start
