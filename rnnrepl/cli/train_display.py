"""What `rnnrepl train` shows while it runs, and writes to `--log`: one handler of the Trainer's
events. A terminal gets a live status line (with a sparkline of validation loss under it) redrawn
4 times a second; a pipe or a log file, a plain status line every 30 s."""

from __future__ import annotations

import time

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from rnnrepl.cli.train_log import STEP_EVERY, EventLog, log_event
from rnnrepl.ui.curves import sparkline
from rnnrepl.ui.render import metrics_line, progress_line, sample_panel
from rnnrepl.ui.textsafe import safe_text


class TrainDisplay:
    """Called with every training Event."""

    def __init__(self, level: str, err: Console, live: Live, log: EventLog | None) -> None:
        self.level, self.err, self.live, self.log = level, err, live, log
        self.every = 0.25 if err.is_terminal else 30.0
        self.shown = self.logged = -float("inf")  # when the last status line / step line went out
        self.vals: list[float] = []

    def __call__(self, ev) -> None:
        if self.log is not None:
            self._log(ev)
        if ev.kind == "step":
            now = time.monotonic()
            if now - self.shown >= self.every:
                self.shown = now
                self._status(ev)
        elif ev.kind == "eval":
            self.vals.append(ev.val_loss)
            self.err.print(
                f"step {ev.step}: val {metrics_line(ev.val_loss, self.level)} "
                f"(best {ev.best_val:.4f})"
            )
        elif ev.kind == "sample":
            self.err.print(sample_panel(ev.step, ev.text))
        elif ev.kind == "nan":
            self.err.print(Text(safe_text(f"warning: {ev.text}")))

    def _status(self, ev) -> None:
        line = progress_line(ev, self.level)
        if not self.err.is_terminal:
            self.err.print(line)
        elif self.vals:
            self.live.update(Group(line, sparkline(self.vals, self.level)), refresh=True)
        else:
            self.live.update(line, refresh=True)

    def _log(self, ev) -> None:
        if ev.kind == "step":
            now = time.monotonic()
            if now - self.logged < STEP_EVERY:
                return
            self.logged = now
        log_event(self.log, ev)
        if self.log.failure is not None:
            self.err.print(Text(safe_text(f"warning: {self.log.failure}")))
            self.log = None
