"""The training text as (batch, n) contiguous streams, read in spans; its fingerprint for resume."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import Tensor

from rnnrepl.config import ModelConfig


def batchify(ids: np.ndarray, batch: int) -> Tensor:
    """Cut the token stream into `batch` contiguous streams, one per row.

    ┌ a g m s ┐  each row is read left to right in spans of seq_len; the state carried from one
    │ b h n t │  span to the next is exactly the context the model would have seen, which is
    └ c i o u ┘  what truncated BPTT approximates.
    """
    n = len(ids) // batch
    # A view, never a copy: ids mapped from the token cache stay on disk until a span is read,
    # in their compact dtype (uint8/16/32); `span` converts only the slice it returns.
    data = torch.from_numpy(np.ascontiguousarray(ids[: n * batch]))
    return data.view(batch, n)  # (batch, n)


def spans_per_epoch(streams: Tensor, seq_len: int, offset: int = 0) -> int:
    return max(0, (streams.shape[1] - 1 - offset) // seq_len)


def epoch_offset(streams: Tensor, seq_len: int, gen: torch.Generator) -> int:
    """A new epoch's random start offset (0..seq_len-1), so that spans do not always begin at
    the same tokens; 0 when the offset would leave no whole span."""
    offset = int(torch.randint(0, seq_len, (1,), generator=gen))
    return offset if spans_per_epoch(streams, seq_len, offset) > 0 else 0


def span(streams: Tensor, start: int, seq_len: int, device) -> tuple[Tensor, Tensor]:
    """(inputs, targets), each (batch, seq_len): the span at `start` and the same one token on."""
    # to long on the CPU first: the streams may be uint16/uint32, which CUDA barely supports
    x = streams[:, start : start + seq_len].long().to(device)
    y = streams[:, start + 1 : start + 1 + seq_len].long().to(device)
    return x, y


def fingerprint(ids: np.ndarray, tokenizer, cfg: ModelConfig) -> str:
    """What resuming must find unchanged: the data, the tokenizer and the model's config. Ids
    mapped from the token cache are named by the digest its sidecar holds (reading them all would
    page the whole file into memory); other arrays are hashed in blocks."""
    h = hashlib.sha256()
    digest = getattr(ids, "digest", None)
    if digest:
        h.update(digest.encode())
    else:
        for i in range(0, len(ids), 1 << 22):
            h.update(np.ascontiguousarray(ids[i : i + (1 << 22)]).data)
    h.update(repr(sorted(tokenizer.to_dict().items())).encode())
    h.update(repr(sorted(cfg.to_dict().items())).encode())
    return h.hexdigest()
