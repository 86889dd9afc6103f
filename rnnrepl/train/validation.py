"""Validation loss over a token array and short sample previews, for the training loop."""

from __future__ import annotations

import math

import numpy as np
import torch

from rnnrepl.config import SampleConfig
from rnnrepl.model.lm import LanguageModel
from rnnrepl.model.sampling import pick


@torch.inference_mode()
def evaluate(
    model: LanguageModel, ids: np.ndarray, seq_len: int = 256, batch: int = 16
) -> tuple[float, int]:
    """Mean cross entropy (nats per token) over `ids` and the number of tokens scored.

    The text is cut into `batch` contiguous streams (state carried across spans); the few tokens
    left over at the end are scored in a final single-row pass, so every token but the first counts.
    """
    was_training = model.training
    model.eval()
    device = model.embed.weight.device
    total, count = 0.0, 0
    batch = max(1, min(batch, (len(ids) - 1) // max(1, seq_len)))
    n = len(ids) // batch
    streams = torch.from_numpy(np.ascontiguousarray(ids[: n * batch]).astype(np.int64)).view(
        batch, n
    )
    state = None
    for i in range(0, n - 1, seq_len):
        x = streams[:, i : i + seq_len].to(device)
        y = streams[:, i + 1 : i + 1 + seq_len].to(device)
        loss, state = model.loss(x[:, : y.shape[1]], y, state)
        total += loss.item() * y.numel()
        count += y.numel()
    model.train(was_training)
    return (total / count if count else math.nan), count


def sample_text(
    model: LanguageModel, tokenizer, n: int, seed: int, temperature: float = 0.8
) -> str:
    """A short preview from the current weights, with its own generator (training RNG untouched)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    cfg = SampleConfig(temperature=temperature)
    device = model.embed.weight.device
    out: list[int] = []
    with torch.inference_mode():
        start = tokenizer.encode("\n")[-1:] or [0]
        logits, state = model(torch.tensor([start], device=device))
        for _ in range(n):
            nxt = int(pick(logits[0, -1].cpu(), cfg, gen))
            out.append(nxt)
            logits, state = model(torch.tensor([[nxt]], device=device), state)
    model.train(was_training)
    return tokenizer.decode(out)
