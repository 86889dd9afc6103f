"""The one way every command gets a model to run: a spec in, a ready model on a device out.

A spec is a model file, a directory holding one, a name in the model home or a bundled name
(``store.modelfile.resolve_model_path`` decides which); ``store.modelfile.load_model`` reads and
checks the file. torch is imported on the first call, not with this module, so the REPL can draw
its prompt while the model loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rnnrepl.errors import UsageError

if TYPE_CHECKING:
    from rnnrepl.store.modelfile import LoadedModel


def load_for_inference(
    spec: str | Path, device: str = "cpu", *, backward: bool = False
) -> LoadedModel:
    """The model `spec` names, in eval mode on `device` ("auto" picks CUDA, then MPS, then CPU).
    A backward model (train --reverse) only where the caller reverses what it feeds (`backward`).

    Raises CheckpointError (no such model, an unsafe or broken file), ResourceError (the
    device is not available) or UsageError (a backward model here), each with its one line."""
    from rnnrepl.model.devices import resolve_device
    from rnnrepl.store.modelfile import load_model

    loaded = load_model(spec, device=resolve_device(device))
    if loaded.direction == "backward" and not backward:
        raise UsageError(
            "this is a backward model (trained with --reverse): it reads text right to left, "
            "so it cannot continue or complete what you type",
            path=str(loaded.path),
            hint="use it with score, eval, info or embed; train without --reverse to generate",
        )
    return loaded
