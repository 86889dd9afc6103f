"""Where models live: the model home ($XDG_DATA_HOME/rnnrepl/models), like ollama's model store.

`rnnrepl train` without -o writes NAME.safetensors (and NAME.state.safetensors) here, NAME from the
first input; every command finds a model by its bare name. A name resolves in this order: an
explicit path (file, NAME.safetensors, directory), then the home, then the bundled models.
This module imports no torch, so shell completion of model names stays fast.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from rnnrepl.atomic import OutputLock
from rnnrepl.errors import UsageError
from rnnrepl.package_data import BUNDLED, package_dir

MODEL_SUFFIX = ".safetensors"
STATE_SUFFIX = ".state.safetensors"
_NAME = re.compile(r"[A-Za-z0-9][\w.-]*")


def models_home() -> Path:
    """$XDG_DATA_HOME/rnnrepl/models (default ~/.local/share/rnnrepl/models)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):  # the XDG spec says relative values are to be ignored
        base = str(Path.home() / ".local" / "share")
    return Path(base) / "rnnrepl" / "models"


def is_model_file_name(name: str) -> bool:
    return name.endswith(MODEL_SUFFIX) and not name.endswith(STATE_SUFFIX) and name[0] != "."


def model_names(directory: Path | None) -> list[str]:
    """Names of the model files in `directory` (without the suffix), sorted."""
    if directory is None or not directory.is_dir():
        return []
    files = (c.name for c in directory.iterdir() if is_model_file_name(c.name) and c.is_file())
    return sorted(name[: -len(MODEL_SUFFIX)] for name in files)


def is_plain_name(name: str) -> bool:
    """A bare model name (no path separator, no suffix), as `train` stores it in the home."""
    return bool(_NAME.fullmatch(name)) and not name.endswith(MODEL_SUFFIX)


def home_model(name: str) -> Path | None:
    """The home's NAME.safetensors, if `name` is a bare name stored there."""
    path = models_home() / (name + MODEL_SUFFIX)
    return path if is_plain_name(name) and path.is_file() else None


def stored_models() -> list[str]:
    return model_names(models_home())


def bundled_dir() -> Path | None:
    """The bundled models' folder: the package `rnnrepl.bundled` (checkpoints/ in the source)."""
    return package_dir(BUNDLED)


def bundled_names() -> list[str]:
    return model_names(bundled_dir())


def bundled_model(name: str) -> Path | None:
    """The bundled NAME.safetensors, if `name` is a bare name shipped with the package."""
    folder = bundled_dir()
    path = folder / (name + MODEL_SUFFIX) if folder is not None and is_plain_name(name) else None
    return path if path is not None and path.is_file() else None


def default_name(inputs: list[str] | tuple[str, ...]) -> str:
    """The home name of a model trained without -o: the first input's stem or directory name."""
    first = inputs[0] if inputs else "-"
    if first == "-":
        return "stdin"
    p = Path(first).expanduser()
    while glob.has_magic(str(p)):  # data/*.txt -> data
        p = p.parent
    name = p.resolve().name if p.is_dir() or p.name in ("", "..") else p.stem
    name = re.sub(r"[^\w.-]+", "-", name).strip("-.")
    return name if name and name[0].isalnum() else "model"


def remove(name: str) -> list[Path]:
    """Delete the home's model NAME and its resume state; returns the files removed."""
    if not is_plain_name(name):
        raise UsageError(
            f"{name!r} is not a model name in the model home ({models_home()})",
            hint="rm takes a name from `rnnrepl list`; delete files elsewhere yourself",
        )
    model = models_home() / (name + MODEL_SUFFIX)
    if not model.is_file():
        where = (
            "a bundled model, which cannot be removed" if name in bundled_names() else "not there"
        )
        raise UsageError(
            f"no model {name!r} in {models_home()}: {where}", hint="see `rnnrepl list`"
        )
    state = models_home() / (name + STATE_SUFFIX)
    with OutputLock(model) as lock:  # refused while a training writes it
        removed = [p for p in (model, state) if p.is_file()]
        for p in removed:
            p.unlink()
        lock.path.unlink()  # nothing is left to guard; a training starting now makes a new one
    return removed


def tokens_home() -> Path:
    """The token cache, beside the models: $XDG_DATA_HOME/rnnrepl/tokens (text/token_cache.py)."""
    return models_home().parent / "tokens"
