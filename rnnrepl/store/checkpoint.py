"""Pickle-free checkpoints: a model is one safetensors file, its resume state another.

`checkpoints/x.safetensors` holds the weights (fp32, or fp16 to halve the file) and, as JSON
metadata, the ModelConfig, the tokenizer and a training summary; `checkpoints/x.state.safetensors`
holds what resuming needs (optimizer tensors, RNG states) plus one JSON `meta` entry. Both are read
by rnnrepl.store.container (never runs code, verifies digests) and written by rnnrepl.atomic (never
half-written). Loading a model also checks the config, the tokenizer against the vocabulary size,
every tensor's shape against the model (without allocating it first) and that all are finite.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from rnnrepl.atomic import PidLock, atomic_write_bytes
from rnnrepl.config import ModelConfig
from rnnrepl.errors import CheckpointError, ResourceError
from rnnrepl.model.lm import LanguageModel, build_model, parameter_count
from rnnrepl.package_data import BUNDLED, package_dir
from rnnrepl.store.container import FORMAT, FORMAT_VERSION, encode, envelope, read_verified
from rnnrepl.store.home import (
    MODEL_SUFFIX,
    STATE_SUFFIX,
    home_model,
    is_model_file_name,
    model_names,
)
from rnnrepl.text.tokenizers import CharVocab, WordVocab, tokenizer_from_dict

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODEL_SUFFIX",
    "STATE_SUFFIX",
    "LoadedModel",
    "OutputLock",
    "atomic_write_bytes",
    "bundled_models",
    "load_model",
    "load_state",
    "optimizer_from_tensors",
    "optimizer_to_tensors",
    "resolve_model_path",
    "save_model",
    "save_state",
    "state_path_for",
    "update_training",
]

_MODEL_DTYPES = {"float32": torch.float32, "float16": torch.float16}
T = TypeVar("T")


@dataclass
class LoadedModel:
    model: LanguageModel
    config: ModelConfig
    tokenizer: CharVocab | WordVocab
    training: dict
    path: Path


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
        "model_config": _dumps(cfg.to_dict(), "model config", target),
        "tokenizer": _dumps(tokenizer.to_dict(), "tokenizer", target),
        "training": _dumps(training, "training summary", target),
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


def save_state(path: str | Path, tensors: dict[str, Tensor], meta: dict) -> Path:
    """Write a resume file: tensors plus one JSON `meta` entry (JSON types, string keys)."""
    target = _state_target(path)
    bad = [k for k, v in tensors.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if bad or not isinstance(meta, dict):
        raise CheckpointError(
            "resume state needs str -> Tensor tensors and a dict meta", path=str(target)
        )
    _check_json_keys(meta, target)
    flat = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    data = encode(flat, envelope("state") | {"meta": _dumps(meta, "resume state", target)}, target)
    atomic_write_bytes(target, data)
    return target


def update_training(path: str | Path, updates: dict) -> None:
    """Merge `updates` into a saved model's training summary; the weights are written back as
    they were read (verified). Used to record how long a run went on after its best model."""
    target = _model_target(path)
    meta, tensors = read_verified(target, "model")
    training = _json_entry(meta, "training", target)
    if not isinstance(training, dict):
        raise CheckpointError("training summary is not a JSON object", path=str(target))
    if all(training.get(k) == v for k, v in updates.items()):
        return
    meta = {k: v for k, v in meta.items() if k not in ("payload_sha256", "header_sha256")}
    meta["training"] = _dumps(training | updates, "training summary", target)
    atomic_write_bytes(target, encode(tensors, meta, target))


def state_path_for(model_path: str | Path) -> Path:
    """checkpoints/x.safetensors -> checkpoints/x.state.safetensors"""
    p = Path(model_path)
    if p.name.endswith(STATE_SUFFIX):
        return p
    stem = p.name[: -len(MODEL_SUFFIX)] if p.name.endswith(MODEL_SUFFIX) else p.name
    return p.with_name(stem + STATE_SUFFIX)


def _dumps(obj: Any, what: str, path: Path) -> str:
    try:
        return json.dumps(obj, ensure_ascii=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what} is not JSON-serialisable: {exc}", path=str(path)) from None


def _check_json_keys(obj: Any, path: Path) -> None:
    """Refuse dict keys that JSON would silently turn into strings (an inexact resume)."""
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise CheckpointError("resume state dict keys must be strings", path=str(path))
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        for item in obj:
            _check_json_keys(item, path)


# ---------------------------------------------------------------- loading


def load_model(spec: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model file, a directory holding one, or a bundled model by name."""
    path = resolve_model_path(spec)
    meta, tensors = read_verified(path, "model")
    config = _guard(lambda: ModelConfig.from_dict(_json_entry(meta, "model_config", path)), path)
    tokenizer = _guard(lambda: tokenizer_from_dict(_json_entry(meta, "tokenizer", path)), path)
    training = _json_entry(meta, "training", path)
    if not isinstance(training, dict):
        raise CheckpointError("training summary is not a JSON object", path=str(path))
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
    return model


def load_state(path: str | Path) -> tuple[dict[str, Tensor], dict]:
    target = _state_target(path)
    meta, tensors = read_verified(target, "state")
    state = _json_entry(meta, "meta", target)
    if not isinstance(state, dict):
        raise CheckpointError("resume state meta is not a JSON object", path=str(target))
    return tensors, state


def _guard(build: Callable[[], T], path: Path) -> T:
    """Run a validator; give its CheckpointError the path of the file."""
    try:
        return build()
    except CheckpointError as exc:
        raise CheckpointError(exc.message, hint=exc.hint, path=exc.path or str(path)) from None


def _json_entry(meta: dict[str, str], key: str, path: Path) -> Any:
    if key not in meta:
        raise CheckpointError(f"metadata lacks {key!r}", path=str(path))
    try:
        return json.loads(meta[key])
    except (ValueError, RecursionError):
        raise CheckpointError(f"metadata {key!r} is not valid JSON", path=str(path)) from None


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
    bundled = _bundled_dir()
    if bundled and re.fullmatch(r"[A-Za-z0-9][\w.-]*", name) and name in bundled_models():
        return bundled / (name + MODEL_SUFFIX)
    available = ", ".join(bundled_models()) or "none"
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


def _bundled_dir() -> Path | None:
    """The bundled models' folder: the package `rnnrepl.bundled` (checkpoints/ in the source)."""
    return package_dir(BUNDLED)


def bundled_models() -> list[str]:
    return model_names(_bundled_dir())


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


def _state_target(path: str | Path) -> Path:
    return state_path_for(Path(path).expanduser())


# ---------------------------------------------------------------- optimizer state


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict]:
    """Flatten opt.state_dict(): tensors named opt.{param}.{key}; the rest as JSON-able meta."""
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    state = [
        [int(i), _encode_value(entry, f"opt.{i}", tensors)] for i, entry in sd["state"].items()
    ]
    groups = [_encode_value(g, f"opt.group{i}", tensors) for i, g in enumerate(sd["param_groups"])]
    return tensors, {"state": state, "param_groups": groups}


def optimizer_from_tensors(
    opt: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict
) -> None:
    """Restore what optimizer_to_tensors produced, exactly."""
    try:
        state = {int(i): _decode_value(entry, tensors) for i, entry in meta["state"]}
        groups = [_decode_value(g, tensors) for g in meta["param_groups"]]
        _check_optimizer_state(opt, state)
        opt.load_state_dict({"state": state, "param_groups": groups})
    except KeyError as exc:
        raise CheckpointError(f"resume state lacks tensor {exc}") from None
    except (TypeError, ValueError, IndexError, RuntimeError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise CheckpointError(f"resume state does not fit this optimizer: {first}") from None


def _check_optimizer_state(opt: torch.optim.Optimizer, state: dict[int, Any]) -> None:
    """Each parameter's moments shaped like it and finite (a NaN moment poisons every step);
    ValueError, which the caller turns into 'does not fit', otherwise."""
    params = [p for group in opt.param_groups for p in group["params"]]
    for i, entry in state.items():
        if not 0 <= i < len(params) or not isinstance(entry, dict):
            raise ValueError(f"resume state has optimizer state for no parameter ({i})")
        for key, value in entry.items():
            if not isinstance(value, Tensor):
                continue
            if value.dim() and value.shape != params[i].shape:
                raise ValueError(
                    f"tensor opt.{i}.{key} has shape {list(value.shape)}, its parameter "
                    f"{list(params[i].shape)}"
                )
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise ValueError(f"tensor opt.{i}.{key} holds NaN or Inf")
            if key == "step" and (value < 0).any():
                raise ValueError(f"tensor opt.{i}.step is negative")


def _encode_value(value: Any, name: str, tensors: dict[str, Tensor]) -> Any:
    if isinstance(value, Tensor):
        tensors[name] = value.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": name}
    if isinstance(value, dict):
        return {str(k): _encode_value(v, f"{name}.{k}", tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_encode_value(v, f"{name}.{j}", tensors) for j, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    return value


def _decode_value(value: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(value, dict) and set(value) == {"__tensor__"}:
        return tensors[value["__tensor__"]].clone()
    if isinstance(value, dict) and set(value) == {"__tuple__"}:
        return tuple(_decode_value(v, tensors) for v in value["__tuple__"])
    if isinstance(value, dict):
        return {k: _decode_value(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_value(v, tensors) for v in value]
    return value


# ---------------------------------------------------------------- output lock


class OutputLock(PidLock):
    """Refuse a second training writing the same model: MODEL.safetensors.lock holds the pid."""

    def __init__(self, model_path: str | Path) -> None:
        target = _model_target(model_path)
        super().__init__(target.with_name(target.name + ".lock"))
