"""Validate the JSON half of a resume file (NAME.state.safetensors) before training trusts it.

A file can carry valid digests and still hold nonsense (a hand edit, a bug in another version):
a negative step would train practically forever, a position outside the data crashes on the
first span, NaN schedule values poison every weight. Each field is checked for type and range;
the first bad one is refused with exit 4, named as `progress.step`, `optimizer.param_groups`...
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnrepl.config import ModelConfig, TrainConfig
from rnnrepl.errors import CheckpointError
from rnnrepl.model.lm import LanguageModel, State

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
        if not (
            isinstance(entry, list)
            and len(entry) == 3
            and _is_int(entry[0])
            and all(_is_number(v) for v in entry[1:])
        ):
            raise bad_field("history", entry, "expected [step, loss, val_loss] entries", path)


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
