"""The held-out loss (training's validation and `rnnrepl eval`) and short sample previews."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from rnnrepl.config import SampleConfig
from rnnrepl.model.lm import LanguageModel
from rnnrepl.model.sampling import pick

CHUNK = 256  # tokens per forward call; the figure does not depend on it


def start_token(tokenizer) -> int:
    """The id a held-out text is read after: a line break, as if it began a document (<unk>,
    id 0, where the vocabulary has no line break)."""
    return tokenizer.index.get("\n", 0)


def held_out_loss(
    model: LanguageModel,
    ids: Sequence[int] | np.ndarray,
    start_id: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[float, int]:
    """Mean cross entropy (nats per token) of every token of `ids`, and how many were scored.

    The one held-out loss of rnnrepl: training's validation and `rnnrepl eval` both report it.
    Each token is predicted from all the text before it: one stream read after `start_id`, the
    state carried from chunk to chunk, so the figure is exact (what `score` sums token by
    token). Cutting the text into batched streams is faster but starts each stream from a cold
    state in the middle of the text, and a trained LSTM that starts cold mid-text can stay
    worse for thousands of tokens (README, "Held-out loss"). on_progress(done, total) is called
    after each chunk.
    """
    losses = held_out_token_losses(model, ids, start_id, on_progress)
    return (float(losses.sum()) / len(losses) if len(losses) else math.nan), len(losses)


@torch.inference_mode()
def held_out_token_losses(
    model: LanguageModel,
    ids: Sequence[int] | np.ndarray,
    start_id: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """-log p (nats, float64) of every token of `ids`, read as ``held_out_loss`` reads them."""
    was_training = model.training
    model.eval()
    device = model.embed.weight.device
    out, state, prev = np.empty(len(ids)), None, start_id
    for i in range(0, len(ids), CHUNK):
        y = torch.as_tensor(np.asarray(ids[i : i + CHUNK], dtype=np.int64))  # (t,)
        x = torch.cat([torch.tensor([prev]), y[:-1]])  # input t predicts ids[t]
        losses, state = model.token_losses(x[None].to(device), y[None].to(device), state)
        out[i : i + len(y)] = losses.float().cpu().numpy()
        prev = int(y[-1])
        if on_progress is not None:
            on_progress(i + len(y), len(ids))
    model.train(was_training)
    return out


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
