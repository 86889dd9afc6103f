"""The model file: NAME.safetensors holds the weights (fp32, or fp16 to halve the file) and, as JSON
metadata, the ModelConfig, the tokenizer and a training summary.

Read by rnnrepl.store.container (never runs code, verifies digests) and written by rnnrepl.atomic
(never half-written). Loading also checks the config, the tokenizer against the vocabulary size,
every tensor's shape against the model (without allocating it first) and that all are finite.
A model is named by a path, a directory holding one, or a bare name (the model home, then the
bundled models).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor

from rnnrepl.atomic import atomic_write_bytes
from rnnrepl.config import ModelConfig
from rnnrepl.errors import CheckpointError, ResourceError
from rnnrepl.model.lm import LanguageModel, build_model, parameter_count
from rnnrepl.store.container import encode, envelope, json_entry, json_text, read_verified
from rnnrepl.store.home import (
    MODEL_SUFFIX,
    STATE_SUFFIX,
    bundled_model,
    bundled_names,
    home_model,
    is_model_file_name,
    model_names,
)
from rnnrepl.text.tokenizers import CharVocab, WordVocab, tokenizer_from_dict

_MODEL_DTYPES = {"float32": torch.float32, "float16": torch.float16}
T = TypeVar("T")


# Which way a model reads text: a backward model (train --reverse) reads each text reversed.
DIRECTIONS = ("forward", "backward")


@dataclass
class LoadedModel:
    model: LanguageModel
    config: ModelConfig
    tokenizer: CharVocab | WordVocab
    training: dict
    path: Path

    @property
    def direction(self) -> str:
        """The way it reads text, forward or backward (training summary; older files: forward)."""
        return self.training.get("direction", "forward")


# ---------------------------------------------------------------- saving


def save_model(
    path: str | Path,
    model: LanguageModel,
    tokenizer: CharVocab | WordVocab,
    training: dict,
    *,
    half: bool = False,
) -> Path:
    """Write `model` (fp32, or fp16 if `half`) with its config, tokenizer and training summary."""
    target = _model_target(path)
    cfg: ModelConfig = model.cfg
    if tokenizer.size != cfg.vocab_size:
        raise CheckpointError(
            f"tokenizer has {tokenizer.size} tokens but the model {cfg.vocab_size}",
            path=str(target),
        )
    if not isinstance(training, dict):
        raise CheckpointError("training summary must be a dict", path=str(target))
    meta = envelope("model") | {
        "model_config": json_text(cfg.to_dict(), "model config", target),
        "tokenizer": json_text(tokenizer.to_dict(), "tokenizer", target),
        "training": json_text(training, "training summary", target),
        "dtype": "float16" if half else "float32",
    }
    atomic_write_bytes(target, encode(_model_tensors(model, half, target), meta, target))
    return target


def _model_tensors(model: LanguageModel, half: bool, target: Path) -> dict[str, Tensor]:
    out = {}
    for name, t in model.state_dict().items():
        t = t.detach().to("cpu", copy=True)
        if not torch.isfinite(t).all():
            raise CheckpointError(
                f"refusing to save: weight {name} holds NaN or Inf",
                path=str(target),
                hint="training diverged; lower the learning rate or keep the last good checkpoint",
            )
        if half:
            t = t.half()
            if not torch.isfinite(t).all():
                raise CheckpointError(
                    f"weight {name} overflows float16", path=str(target), hint="save without half"
                )
        out[name] = t.contiguous()
    return out


def update_training(path: str | Path, updates: dict) -> None:
    """Merge `updates` into a saved model's training summary; the weights are written back as
    they were read (verified). Used to record how long a run went on after its best model."""
    target = _model_target(path)
    meta, tensors = read_verified(target, "model")
    training = json_entry(meta, "training", target)
    if not isinstance(training, dict):
        raise CheckpointError("training summary is not a JSON object", path=str(target))
    if all(training.get(k) == v for k, v in updates.items()):
        return
    meta = {k: v for k, v in meta.items() if k not in ("payload_sha256", "header_sha256")}
    meta["training"] = json_text(training | updates, "training summary", target)
    atomic_write_bytes(target, encode(tensors, meta, target))


# ---------------------------------------------------------------- loading


def load_model(spec: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model file, a directory holding one, or a bundled model by name."""
    path = resolve_model_path(spec)
    meta, tensors = read_verified(path, "model")
    config = _guard(lambda: ModelConfig.from_dict(json_entry(meta, "model_config", path)), path)
    tokenizer = _guard(lambda: tokenizer_from_dict(json_entry(meta, "tokenizer", path)), path)
    training = json_entry(meta, "training", path)
    if not isinstance(training, dict):
        raise CheckpointError("training summary is not a JSON object", path=str(path))
    if training.get("direction", "forward") not in DIRECTIONS:
        raise CheckpointError(f"unknown direction {training['direction']!r}", path=str(path))
    if tokenizer.size != config.vocab_size:
        raise CheckpointError(
            f"tokenizer has {tokenizer.size} tokens but the config says vocab_size "
            f"{config.vocab_size}",
            path=str(path),
        )
    model = _model_with_weights(meta, tensors, config, path)
    model.eval()
    try:
        model = model.to(torch.device(device))
    except (RuntimeError, AssertionError, ValueError) as exc:
        raise ResourceError(f"cannot use device {device!r}: {exc}", path=str(path)) from None
    return LoadedModel(model, config, tokenizer, training, path)


# How many more weights than the file holds a config may describe before it is refused unbuilt.
_SLACK_WEIGHTS = 1 << 22


def _model_with_weights(
    meta: dict[str, str], tensors: dict[str, Tensor], config: ModelConfig, path: Path
) -> LanguageModel:
    dtype = _MODEL_DTYPES.get(meta.get("dtype", ""))
    if dtype is None:
        raise CheckpointError(f"unknown weight dtype {meta.get('dtype')!r}", path=str(path))
    # A config that lies about its size is refused before the model is allocated; counting
    # (rather than building on the meta device) also keeps a cold load free of torch's
    # one-second lazy set-up of meta tensors.
    want, have = parameter_count(config), sum(t.numel() for t in tensors.values())
    if want > have + _SLACK_WEIGHTS:  # small mismatches get the precise message below
        raise CheckpointError(
            f"the model config needs {want:,} weights but the file holds only {have:,}",
            path=str(path),
            hint="vocabulary size or model config does not match the weights",
        )
    model = build_model(config).float()
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    names = sorted(set(expected) ^ set(tensors))
    if names:
        side = "missing" if names[0] in expected else "unexpected"
        raise CheckpointError(f"{side} tensor {names[0]} for this model config", path=str(path))
    out = {}
    for name, shape in expected.items():  # in model order: the embedding is named first
        t = tensors[name]
        if tuple(t.shape) != shape:
            raise CheckpointError(
                f"tensor {name} has shape {list(t.shape)}, the model expects {list(shape)}",
                path=str(path),
                hint="vocabulary size or model config does not match the weights",
            )
        if t.dtype != dtype:
            raise CheckpointError(f"tensor {name} is {t.dtype}, not {dtype}", path=str(path))
        if not torch.isfinite(t).all():
            raise CheckpointError(f"tensor {name} holds NaN or Inf", path=str(path))
        out[name] = t.float()
    model.load_state_dict(out, strict=True)
    table = out["embed.weight"]
    if config.one_hot and not torch.equal(table, torch.eye(*table.shape)):
        raise CheckpointError("a one-hot model's input table is not the identity", path=str(path))
    return model


def _guard(build: Callable[[], T], path: Path) -> T:
    """Run a validator; give its CheckpointError the path of the file."""
    try:
        return build()
    except CheckpointError as exc:
        raise CheckpointError(exc.message, hint=exc.hint, path=exc.path or str(path)) from None


# ---------------------------------------------------------------- paths


def resolve_model_path(spec: str | Path) -> Path:
    """A file, a directory holding one model, NAME for NAME.safetensors, or a bare name: in the
    model home first, then among the bundled models."""
    raw = os.fspath(spec)
    if not raw:
        raise CheckpointError("no model given")
    p = Path(raw).expanduser()
    try:
        if p.is_dir():
            # A folder holding no model (say the corpus of `train poems/`) does not hide the
            # home's model of that name.
            stored = None if model_names(p) else home_model(raw)
            return stored or _model_in_dir(p)
        if os.path.lexists(p):
            return p.resolve()
        with_suffix = Path(raw + MODEL_SUFFIX).expanduser()
        if not raw.endswith(MODEL_SUFFIX) and os.path.lexists(with_suffix):
            return with_suffix.resolve()
    except OSError as exc:
        raise CheckpointError(f"cannot open model: {exc.strerror}", path=raw) from None
    name = raw[: -len(MODEL_SUFFIX)] if raw.endswith(MODEL_SUFFIX) else raw
    stored = home_model(name)
    if stored is not None:
        return stored
    bundled = bundled_model(name)
    if bundled is not None:
        return bundled
    available = ", ".join(bundled_names()) or "none"
    raise CheckpointError(
        "model not found",
        path=raw,
        hint=f"give a .safetensors file or a name from `rnnrepl list`; bundled models: {available}",
    )


def _model_in_dir(directory: Path) -> Path:
    found = sorted(c for c in directory.iterdir() if is_model_file_name(c.name) and c.is_file())
    if len(found) == 1:
        return found[0].resolve()
    if not found:
        raise CheckpointError("no model file (*.safetensors) in directory", path=str(directory))
    preferred = directory / (directory.resolve().name + MODEL_SUFFIX)
    if preferred in found:
        return preferred.resolve()
    names = ", ".join(c.name for c in found)
    raise CheckpointError(
        f"directory holds several models: {names}", path=str(directory), hint="name the file"
    )


def _model_target(path: str | Path) -> Path:
    """Where save_model writes: NAME -> NAME.safetensors; an existing directory D -> D/D.safetensors."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / (p.resolve().name + MODEL_SUFFIX)
    elif not p.name.endswith(MODEL_SUFFIX):
        p = p.with_name(p.name + MODEL_SUFFIX)
    if p.name.endswith(STATE_SUFFIX):
        raise CheckpointError("a model file name must not end in .state.safetensors", path=str(p))
    return p
