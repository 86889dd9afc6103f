"""`rnnrepl train --log FILE.jsonl`: one JSON object per line and event, for other tools.

Events: `start`; `step` (at most one a second); every `eval`; `sample`; `nan`; `end`. Each line is
written by one `write` to a file opened for appending, so lines of two runs never interleave
inside a line, and nothing waits in a buffer. Losses are in nats; JSON has no NaN, so a non-finite
figure is null.
"""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path
from typing import Any

from rnnrepl.errors import ResourceError, UsageError

STEP_EVERY = 1.0  # seconds between two `step` lines


class EventLog:
    """An append-only JSON-lines file. A failed write (disk full) stops logging, not training:
    `failure` then says why, once."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.failure: str | None = None
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _open_error(exc, path) from None

    def write(self, event: str, **fields: Any) -> None:
        if self.failure is not None:
            return
        line = json.dumps({"event": event, **_plain(fields)}, allow_nan=False) + "\n"
        data = line.encode("utf-8")
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError as exc:
            self.failure = f"cannot write the log {self.path}: {exc.strerror}; logging stopped"

    def close(self) -> None:
        os.close(self.fd)


def _open_error(exc: OSError, path: str) -> Exception:
    """A path that cannot be a file is a usage error (2); no room or no right to write, 5."""
    message = f"cannot write the log: {exc.strerror}"
    if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM):
        return ResourceError(message, path=path, hint="give --log a path you can write to")
    return UsageError(message, path=path, hint="give --log a file in an existing directory")


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in fields.items()
    }


def log_event(log: EventLog, ev) -> None:
    """One training Event as its line (a `step` is the caller's to thin)."""
    common = {"step": ev.step, "epoch": ev.epoch + 1, "tokens": ev.tokens}
    seconds = round(ev.elapsed, 2)
    if ev.kind == "step":
        log.write(
            "step", **common, seconds=seconds, loss=ev.loss, lr=ev.lr, tokens_per_s=ev.tokens_per_s
        )
    elif ev.kind == "eval":
        log.write(
            "eval",
            **common,
            seconds=seconds,
            train_loss=ev.loss,
            val_loss=ev.val_loss,
            best_val=ev.best_val,
        )
    elif ev.kind in ("sample", "nan"):
        log.write(ev.kind, step=ev.step, text=ev.text)


def log_end(log: EventLog, result) -> None:
    log.write(
        "end",
        step=result.steps,
        tokens=result.tokens_seen,
        seconds=round(result.elapsed, 2),
        train_loss=result.last_loss,
        best_val=result.best_val,
        interrupted=result.interrupted,
        stopped_early=result.stopped_early,
        model=str(result.model_path),
    )
