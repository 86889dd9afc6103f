"""Pretrained word vectors (GloVe or word2vec text format) for initialising word embeddings."""

from __future__ import annotations

from pathlib import Path

import torch

from rnnrepl.errors import InputDataError


def vector_dim(path: str | Path) -> int:
    """The vector size of a GloVe/word2vec text file (word2vec's 'COUNT DIM' header skipped)."""
    try:
        return _vector_dim(path)
    except UnicodeDecodeError:
        raise InputDataError("the embeddings file is not UTF-8 text", path=str(path)) from None


def _vector_dim(path: str | Path) -> int:
    with _open(path) as f:
        for n, line in enumerate(f):
            parts = line.rstrip("\n").split(" ")
            if n == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
                return int(parts[1])
            if len(parts) > 1:
                return len(parts) - 1
    raise InputDataError("the embeddings file holds no vectors", path=str(path))


def load_vectors(
    path: str | Path, index: dict[str, int], weight: torch.Tensor, lowercase: bool = False
) -> int:
    """Copy the vectors of words in `index` into rows of `weight`; returns how many were found."""
    dim = weight.shape[1]
    found = 0
    with _open(path) as f, torch.no_grad():
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header
            word = parts[0].lower() if lowercase else parts[0]
            row = index.get(word)
            if row is None:
                continue
            if len(parts) - 1 != dim:
                raise InputDataError(
                    f"line {n} has {len(parts) - 1} numbers, expected {dim}",
                    path=str(path),
                    hint="all vectors must have the size given by --embed",
                )
            try:
                weight[row] = torch.tensor([float(x) for x in parts[1:]])
            except ValueError:
                raise InputDataError(
                    f"line {n} holds a value that is not a number", path=str(path)
                ) from None
            found += 1
    return found


def _open(path: str | Path):
    try:
        return open(path, encoding="utf-8", errors="strict")
    except OSError as exc:
        raise InputDataError(
            f"cannot read the embeddings file: {exc.strerror}", path=str(path)
        ) from None
