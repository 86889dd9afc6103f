"""The resume file, NAME.state.safetensors: what continuing a training needs (current weights,
optimizer tensors, RNG states, carried hidden state) plus one JSON `meta` entry (progress, history,
configs, optimizer hyperparameters, a fingerprint of data and tokenizer).

Written atomically and read verified (digests) through rnnrepl.store.container like the model file.
A file can carry valid digests and still hold nonsense (a hand edit, a bug in another version):
a negative step would train practically forever, a position outside the data crashes on the
first span, NaN schedule values poison every weight. So each field is checked for type and range
before training trusts it; the first bad one is refused with exit 4, named as `progress.step`,
`optimizer.param_groups`...
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnrepl.atomic import atomic_write_bytes
from rnnrepl.config import ModelConfig, TrainConfig
from rnnrepl.errors import CheckpointError
from rnnrepl.model.lm import LanguageModel, State
from rnnrepl.store.container import (
    encode,
    envelope,
    json_entry,
    json_text,
    read_metadata,
    read_verified,
)
from rnnrepl.store.home import MODEL_SUFFIX, STATE_SUFFIX

# ---------------------------------------------------------------- the file


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
    data = encode(
        flat, envelope("state") | {"meta": json_text(meta, "resume state", target)}, target
    )
    atomic_write_bytes(target, data)
    return target


def state_path_for(model_path: str | Path) -> Path:
    """checkpoints/x.safetensors -> checkpoints/x.state.safetensors"""
    p = Path(model_path)
    if p.name.endswith(STATE_SUFFIX):
        return p
    stem = p.name[: -len(MODEL_SUFFIX)] if p.name.endswith(MODEL_SUFFIX) else p.name
    return p.with_name(stem + STATE_SUFFIX)


def _check_json_keys(obj: Any, path: Path) -> None:
    """Refuse dict keys that JSON would silently turn into strings (an inexact resume)."""
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise CheckpointError("resume state dict keys must be strings", path=str(path))
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        for item in obj:
            _check_json_keys(item, path)


def load_state(path: str | Path) -> tuple[dict[str, Tensor], dict]:
    target = _state_target(path)
    meta, tensors = read_verified(target, "state")
    return tensors, _meta_entry(meta, target)


def load_state_meta(path: str | Path) -> dict:
    """The `meta` entry alone, without reading the tensors (the header digest is checked, the
    payload is not: load_state, which resuming calls, checks it)."""
    target = _state_target(path)
    return _meta_entry(read_metadata(target, "state"), target)


def _meta_entry(meta: dict[str, str], target: Path) -> dict:
    state = json_entry(meta, "meta", target)
    if not isinstance(state, dict):
        raise CheckpointError("resume state meta is not a JSON object", path=str(target))
    return state


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


# ---------------------------------------------------------------- checking what it holds


_COUNTERS = ("step", "epoch", "pos", "offset", "bad_evals", "tokens_seen")
_MAX_COUNT = 2**53  # exactly representable in JSON, and more than any run takes
_HINT = "the resume file is damaged; train without --resume to start anew"


def bad_field(name: str, value: Any, why: str, path: Path) -> CheckpointError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return CheckpointError(
        f"resume state field {name} is {shown}: {why}", path=str(path), hint=_HINT
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_meta(meta: dict, progress_fields: Iterable[str], path: Path) -> dict:
    """Every field of the resume metadata; returns the progress dict (best_val None -> inf)."""
    if not isinstance(meta.get("fingerprint"), str):
        raise bad_field("fingerprint", meta.get("fingerprint"), "expected a string", path)
    if not isinstance(meta.get("hidden"), bool):
        raise bad_field("hidden", meta.get("hidden"), "expected true or false", path)
    for name, cls in (("model_config", ModelConfig), ("train_config", TrainConfig)):
        try:
            cls.from_dict(meta.get(name))
        except CheckpointError as exc:
            raise bad_field(name, meta.get(name), exc.message, path) from None
    _check_history(meta.get("history"), path)
    _check_optimizer_meta(meta.get("optimizer"), path)
    return check_progress(meta.get("progress"), progress_fields, path)


def check_progress(raw: Any, names: Iterable[str], path: Path) -> dict:
    if not isinstance(raw, dict):
        raise bad_field("progress", raw, "expected an object", path)
    missing = sorted(set(names) - set(raw))
    extra = sorted(set(raw) - set(names))
    if missing or extra:
        which = missing[0] if missing else extra[0]
        raise bad_field(
            f"progress.{which}", raw.get(which), "missing" if missing else "unknown", path
        )
    for name in _COUNTERS:
        value = raw[name]
        if not _is_int(value) or not 0 <= value <= _MAX_COUNT:
            raise bad_field(f"progress.{name}", value, f"expected an integer 0..{_MAX_COUNT}", path)
    _check_float(raw, "elapsed", lambda v: 0 <= v < math.inf, "a finite number >= 0", path)
    _check_float(raw, "lr_scale", lambda v: 0 < v <= 1, "a number in (0, 1]", path)
    _check_float(raw, "last_loss", lambda v: True, "a number", path)
    best = raw["best_val"]
    if best is not None and not (_is_number(best) and math.isfinite(best)):
        raise bad_field("progress.best_val", best, "expected a finite number or null", path)
    return raw | {"best_val": math.inf if best is None else float(best)}


def _check_float(raw: dict, name: str, ok, what: str, path: Path) -> None:
    value = raw[name]
    nan_ok = name == "last_loss"  # NaN before the first step
    if (
        not _is_number(value)
        or (math.isnan(value) and not nan_ok)
        or not (math.isnan(value) or ok(value))
    ):
        raise bad_field(f"progress.{name}", value, f"expected {what}", path)


def _check_history(history: Any, path: Path) -> None:
    if not isinstance(history, list):
        raise bad_field("history", history, "expected a list", path)
    for entry in history:
        if not (_old_history_entry(entry) or _history_entry(entry)):
            why = "expected [step, tokens, seconds, loss, val_loss] entries"
            raise bad_field("history", entry, why, path)


def _old_history_entry(entry: Any) -> bool:
    """[step, loss, val_loss]: what rnnrepl wrote before it kept tokens and seconds."""
    return (
        isinstance(entry, list)
        and len(entry) == 3
        and _is_int(entry[0])
        and all(_is_number(v) for v in entry[1:])
    )


def _history_entry(entry: Any) -> bool:
    """[step, tokens, seconds, loss, val_loss]; tokens and seconds null when carried over from
    an older resume state."""
    if not (isinstance(entry, list) and len(entry) == 5 and _is_int(entry[0])):
        return False
    tokens, seconds, *losses = entry[1:]
    return (
        (tokens is None or _is_int(tokens))
        and (seconds is None or _is_number(seconds))
        and all(_is_number(v) for v in losses)
    )


def _check_optimizer_meta(opt: Any, path: Path) -> None:
    """Structure and hyperparameters; the tensors are checked against the model on loading."""
    if not isinstance(opt, dict) or not isinstance(opt.get("state"), list):
        raise bad_field("optimizer", opt, "expected an object with a state list", path)
    groups = opt.get("param_groups")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise bad_field("optimizer.param_groups", groups, "expected a list of objects", path)
    for group in groups:
        for key, value in group.items():
            numbers = value if isinstance(value, list) else [value]
            for v in numbers:
                if _is_number(v) and not 0 <= v < math.inf:
                    why = "expected a finite number >= 0"
                    raise bad_field(f"optimizer.param_groups.{key}", value, why, path)
                if key != "params" and isinstance(v, str):
                    raise bad_field(f"optimizer.param_groups.{key}", value, "not a number", path)


def load_weights(model: LanguageModel, tensors: dict[str, Tensor], path: Path) -> None:
    """The model's tensors, each named, shaped and finite, or one line naming the first."""
    expected = model.state_dict()
    unexpected = sorted(k for k in tensors if k.startswith("model.") and k[6:] not in expected)
    if unexpected:
        raise CheckpointError(f"resume state has unexpected tensor {unexpected[0]}", path=str(path))
    for name, want in expected.items():
        got = tensors.get(f"model.{name}")
        if got is None:
            raise CheckpointError(f"resume state lacks tensor model.{name}", path=str(path))
        if got.shape != want.shape or got.dtype != want.dtype:
            raise CheckpointError(
                f"tensor model.{name} is {got.dtype} {list(got.shape)} in the resume state, "
                f"this model needs {want.dtype} {list(want.shape)}",
                path=str(path),
                hint="--warm-start needs the same vocabulary and model options",
            )
        if not torch.isfinite(got).all():
            raise CheckpointError(f"tensor model.{name} holds NaN or Inf", path=str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})


def load_hidden(model: LanguageModel, batch: int, tensors: dict[str, Tensor], path: Path) -> State:
    """The carried state: as many tensors as the model has, shaped for this batch."""
    want = model.init_state(batch)
    saved = sorted(k for k in tensors if k.startswith("hidden."))
    if saved != [f"hidden.{i}" for i in range(len(want))]:
        raise CheckpointError(f"resume state has hidden tensors {saved}", path=str(path))
    vocab = model.embed.num_embeddings
    for i, w in enumerate(want):
        got = tensors[f"hidden.{i}"]
        ok = got.is_floating_point() and bool(torch.isfinite(got).all())
        if not w.is_floating_point():
            ok = got.dtype == w.dtype and bool(((got >= 0) & (got < vocab)).all())
        if got.shape != w.shape or not ok:
            raise CheckpointError(
                f"resume state tensor hidden.{i} is {got.dtype} {list(got.shape)} or holds bad "
                f"values; this model carries {w.dtype} {list(w.shape)}",
                path=str(path),
            )
    return tuple(tensors[f"hidden.{i}"].to(w.device, w.dtype) for i, w in enumerate(want))
