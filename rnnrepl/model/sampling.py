"""Pure next-token selection: temperature, top-k, top-p (nucleus), greedy.

Shared by generation, the REPL and the sample previews shown during training.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnrepl.config import SampleConfig


def filtered_probs(logits: Tensor, cfg: SampleConfig) -> Tensor:
    """Probabilities after temperature, top-k and top-p, over the last dimension.

    Temperature 0 puts all the mass on the argmax. top-k keeps the k most likely tokens; top-p
    keeps the smallest set of most likely tokens whose mass reaches p. The result sums to 1.
    """
    logits = logits.float()
    if cfg.temperature == 0:
        probs = torch.zeros_like(logits)
        probs.scatter_(-1, logits.argmax(dim=-1, keepdim=True), 1.0)
        return probs
    # Shifted so the best logit is 0: a temperature so small that the division overflows (or
    # underflows to 0 in float32) still leaves the best token(s) at 0 and the rest at -inf, i.e.
    # greedy, instead of inf - inf = NaN.
    shifted = logits - logits.amax(dim=-1, keepdim=True)
    scaled = torch.where(shifted == 0, torch.zeros_like(shifted), shifted / cfg.temperature)
    probs = torch.softmax(scaled, dim=-1)
    vocab = probs.shape[-1]
    if 0 < cfg.top_k < vocab:
        # Exactly the k highest logits (ties by position): ranking the logits, not the
        # probabilities, keeps the choice exact where softmax rounds two logits to one value.
        order = logits.argsort(dim=-1, descending=True, stable=True)
        keep = torch.zeros_like(probs, dtype=torch.bool)
        keep.scatter_(-1, order[..., : cfg.top_k], True)
        probs = torch.where(keep, probs, torch.zeros_like(probs))
    if cfg.top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)
        before = sorted_p.cumsum(-1) - sorted_p  # mass strictly before each token
        keep_sorted = before < cfg.top_p * sorted_p.sum(-1, keepdim=True)
        keep_sorted[..., 0] = True  # a top-p that underflows still keeps the most likely token
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        probs = torch.where(keep, probs, torch.zeros_like(probs))
    return probs / probs.sum(-1, keepdim=True)


def mask_unk(logits: Tensor) -> Tensor:
    """A copy of (..., vocab) logits where <unk> (id 0 in every vocabulary) can never be picked.

    A vocabulary of <unk> alone is left as it is: something must be picked."""
    if logits.shape[-1] < 2:
        return logits
    out = logits.clone()
    out[..., 0] = float("-inf")
    return out


def pick(logits: Tensor, cfg: SampleConfig, generator: torch.Generator | None = None) -> Tensor:
    """Sample one token id per row of (..., vocab) logits."""
    probs = filtered_probs(logits, cfg)
    if cfg.temperature == 0:
        return probs.argmax(dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    ids = torch.multinomial(flat, 1, generator=generator)
    return ids.reshape(probs.shape[:-1])
