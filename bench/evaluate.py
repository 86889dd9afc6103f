"""One evaluator for both sides: mean cross entropy over a whole token sequence, exactly as
`rnnrepl eval` computes it — one stream at batch 1, starting after a start token (a line break
for rnnrepl, '<eos>' for the reference), the state carried through the whole split, fed in
chunks so that the output layer runs as one matrix product per chunk.

Why not batched streams: cutting the split into streams, each warmed up on the 256 (1,024)
tokens before it, was tried and scored the bundled char model 0.037 (0.11) nats/char
worse than `rnnrepl eval` on 20k validation characters — trained LSTMs carry information in
their state far longer than a few hundred characters, so a cold or short-warmed state is a
different (worse) measurement. Batch 1 over the whole split is the only exact one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

# (ids (1, time), state or None) -> (logits or log-probs (1, time, vocab), state)
Forward = Callable[[Tensor, tuple | None], tuple[Tensor, tuple]]


@torch.inference_mode()
def sequence_loss(forward: Forward, ids: Tensor, start_id: int, vocab: int) -> tuple[float, int]:
    """(mean nats per token over all of `ids`, tokens scored)."""
    ids = ids.long().flatten()
    inputs = torch.cat([torch.tensor([start_id]), ids[:-1]])  # input t predicts ids[t]
    chunk = max(64, min(1024, (1 << 24) // vocab))  # a chunk's logits stay near 64 MB
    state, total = None, 0.0
    for i in range(0, len(ids), chunk):
        out, state = forward(inputs[i : i + chunk].unsqueeze(0), state)  # (1, t, vocab)
        total += float(F.cross_entropy(out[0].float(), ids[i : i + chunk], reduction="sum"))
    return total / len(ids), len(ids)
