"""What `rnnrepl list` shows: the models in the home and the bundled ones, read from their headers.

Only the safetensors header is read (and its digest checked), never the weights, so listing a
home of large models stays quick. A file that cannot be read is listed with the reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from rnnrepl.config import ModelConfig
from rnnrepl.errors import CheckpointError
from rnnrepl.model.lm import learned_parameter_count
from rnnrepl.store.container import read_metadata
from rnnrepl.store.home import MODEL_SUFFIX, bundled_dir, bundled_names, models_home, stored_models
from rnnrepl.units import finite_or_none, level_figure


@dataclass(frozen=True)
class ModelEntry:
    name: str
    source: str  # "home" or "bundled"
    path: str
    size: int
    modified: float  # seconds since the epoch
    level: str | None = None
    arch: str | None = None
    parameters: int | None = None
    val_loss: float | None = None
    error: str | None = None

    @property
    def validation(self) -> tuple[str, float] | None:
        """The figure users of the level expect: ("bpc", x) for chars, ("ppl", x) for words."""
        if self.val_loss is None or not math.isfinite(self.val_loss):
            return None
        return level_figure(self.val_loss, self.level or "")

    def to_dict(self) -> dict:
        """JSON-ready: the date as ISO 8601 UTC, plus the level's figure ("bpc" or "ppl")."""
        figure = self.validation
        when = datetime.fromtimestamp(self.modified, timezone.utc).isoformat(timespec="seconds")
        shown = {figure[0]: finite_or_none(figure[1])} if figure else {}  # JSON has no inf
        return asdict(self) | {"modified": when} | shown


def list_models() -> list[ModelEntry]:
    """The home's models, then the bundled ones, each sorted by name."""
    home, bundled = models_home(), bundled_dir()
    entries = [describe(n, "home", home / (n + MODEL_SUFFIX)) for n in stored_models()]
    if bundled is not None:
        entries += [describe(n, "bundled", bundled / (n + MODEL_SUFFIX)) for n in bundled_names()]
    return entries


def describe(name: str, source: str, path: Path) -> ModelEntry:
    st = path.stat()
    base = ModelEntry(name, source, str(path), st.st_size, st.st_mtime)
    try:
        meta = read_metadata(path, "model")
        config = ModelConfig.from_dict(_json(meta, "model_config", path))
        level = _json(meta, "tokenizer", path).get("level")
        val = _json(meta, "training", path).get("val_loss")
    except (CheckpointError, AttributeError) as exc:
        return replace(base, error=str(exc))
    return replace(
        base,
        level=level if isinstance(level, str) else None,
        arch=config.arch,
        parameters=learned_parameter_count(config),
        val_loss=float(val) if isinstance(val, (int, float)) else None,
    )


def _json(meta: dict[str, str], key: str, path: Path) -> dict:
    try:
        value = json.loads(meta[key])
    except (KeyError, ValueError, RecursionError):
        raise CheckpointError(f"metadata {key!r} is missing or not JSON", path=str(path)) from None
    if not isinstance(value, dict):
        raise CheckpointError(f"metadata {key!r} is not a JSON object", path=str(path))
    return value
