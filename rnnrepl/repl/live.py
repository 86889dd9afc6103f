"""Live training in the REPL: `chat --train FILE...` and `/train FILE...`, `/train stop`, `/train`.

The training runs in a child process (``train/background.py``); a watcher thread polls its event
log and model file a few times a second, never on the UI thread. Each new checkpoint is loaded on
the model thread (``Worker.load``: loaded whole, then the predictor swapped in one assignment),
the document is kept and the panel recomputed. The status line shows step, validation loss,
tokens/s and elapsed time. Stopping sends SIGINT (train saves its resume state, exits 130);
quitting the REPL stops it the same way and waits, bounded.
"""

from __future__ import annotations

import math
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnrepl.errors import RnnreplError
from rnnrepl.repl.meter import Meter
from rnnrepl.repl.panel import message
from rnnrepl.train.background import STOP_WAIT, Figures, TrainJob
from rnnrepl.ui.render import duration, safe_text
from rnnrepl.units import level_figure

POLL = 0.25  # seconds between two looks at the log and the model file
DOUBLE_CTRL_C = 1.0  # two Ctrl-C on the prompt this close together stop the training
WAITING = "training: waiting for its first checkpoint (a model appears at the first validation)"
USAGE = "usage: /train FILE... [-o NAME] [train options] · /train stop · /train (its state)"


class LiveTraining:
    """The REPL's one training run, if any. Every method runs on the UI thread except
    ``_watch``, which posts what it finds to the UI thread."""

    def __init__(self, app: Any, post: Callable[[Callable[[], None]], None]) -> None:
        self.app, self.post = app, post  # app: ReplApp (session, worker, emit, refresh, ...)
        self.job: TrainJob | None = None
        self.figures = Figures()
        self.state = ""  # "", "running", "stopping", "finished", "stopped", "failed"
        self.detail = ""  # the failure, or where the model is
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ctrl_c = -math.inf
        self._swapped = False  # a checkpoint of this run has been loaded
        self.args: list[str] = []  # the run's `train` arguments, as the user gave them
        self._outcome: tuple | None = None  # how the watched run ended (set by the watcher)

    # ---- commands ---------------------------------------------------------------------------
    def command(self, arg: str) -> None:
        """/train FILE... [options] starts; /train stop stops; /train alone tells its state."""
        try:
            args = shlex.split(arg)
        except ValueError as exc:
            self.app.emit(message(f"error: {exc} — {USAGE}", "red"))
            return
        if not args:
            self.app.emit(message(self.describe(), "dim" if self.state != "failed" else "red"))
        elif args == ["stop"]:
            self.stop()
        else:
            self.start(args)

    def start(self, args: list[str]) -> None:
        if self.running:
            self.app.emit(message("a training is running — /train stop first", "red"))
            return
        try:
            job = TrainJob(args)
            job.start()
        except (RnnreplError, OSError) as exc:
            self.app.emit(message(f"error: {exc}", "red"))
            return
        self.job, self.figures, self.state, self.detail = job, Figures(), "running", ""
        self.args = args
        self._swapped, self._outcome = False, None
        self._stop.clear()
        if self.app.session.info is None:
            self.app.session.notice = WAITING
            self.app.call_model(_warm_up, lambda result, error: None)
        self.app.emit(message(f"training in the background: {shlex.join(args)}", "dim"))
        self._thread = threading.Thread(target=self._watch, args=(job,), daemon=True)
        self._thread.name = "rnnrepl-train-watch"
        self._thread.start()
        self.app.invalidate()

    def stop(self) -> None:
        if not self.running:
            self.app.emit(message("no training is running", "dim"))
            return
        self.state = "stopping"
        self._stop.set()
        self.app.emit(message("stopping the training (it saves a resumable checkpoint)…", "dim"))
        self.app.invalidate()

    def ctrl_c(self) -> None:
        """Ctrl-C on the prompt: the second within DOUBLE_CTRL_C stops a running training."""
        now, before = time.monotonic(), self._ctrl_c
        self._ctrl_c = now
        if self.state == "running" and now - before <= DOUBLE_CTRL_C:
            self.stop()

    def close(self) -> None:
        """Quitting: stop a running training and wait for it (bounded; then it is killed)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        _say("stopping the training: it saves a resumable checkpoint…")
        self._stop.set()
        thread.join(STOP_WAIT + 5)
        if self._outcome is not None:  # the UI loop is gone: said here instead
            _say("training {}: {}".format(*self._ending(*self._outcome, "rnnrepl train")))

    @property
    def running(self) -> bool:
        return self.state in ("running", "stopping")

    # ---- what the user sees ---------------------------------------------------------------------
    def line(self) -> str:
        """The status line's part: step, validation loss, tokens/s, elapsed ('' with no run)."""
        f = self.figures
        if not self.state:
            return ""
        if self.state == "running" and not f.started:
            return "training: reading the text…"
        head = {"running": "training", "stopping": "stopping"}.get(self.state, self.state)
        return f"{head} {self._figures()}"

    def _figures(self) -> str:
        f = self.figures
        parts = [f"step {f.step:,}", f"val {_loss(f)}"]
        if self.running:
            parts.append(f"{f.tokens_per_s / 1000:.1f}k tok/s")
        parts.append(duration(f.seconds))
        return " · ".join(parts)

    def describe(self) -> str:
        """/train alone: the state, figures and output file."""
        if not self.state:
            return f"no training in this session — {USAGE}"
        text = f"training {self.state}: {self._figures()}"
        if self.figures.model:
            text += f" · model {self.figures.model}"
        return text + (f" — {self.detail}" if self.detail else "")

    # ---- the watcher thread ---------------------------------------------------------------------
    def _watch(self, job: TrainJob) -> None:
        """Poll until the child has ended; post figures, checkpoints and the end."""
        shown = None
        while True:
            if self._stop.is_set():
                job.stop()
            figures, changed, code = job.poll()
            if figures != shown:
                shown = figures
                self.post(lambda f=figures: self._on_figures(f))
            if changed is not None:
                self.post(lambda p=changed: self._load(p))
            if code is not None:
                break
            time.sleep(POLL)
        error = job.error(code) if code not in (0, 130, 143) else ""
        job.cleanup()
        self._outcome = (code, error, job.stopping, job.figures.model)
        self.post(lambda: self._on_end(*self._ending(code, error, job.stopping, job.figures.model)))

    def _on_figures(self, figures: Figures) -> None:
        self.figures = figures
        self.app.invalidate()

    def _load(self, path: Path) -> None:
        from rnnrepl.infer.loading import load_for_inference

        device = self.app.device
        self.app.worker.load(
            lambda: load_for_inference(str(path), device), self._loaded, self.app.int8
        )

    def _loaded(self, info, error: BaseException | None) -> None:
        session = self.app.session
        if error is not None:
            self.app.emit(message(f"error: cannot load the new checkpoint: {error}", "red"))
            return
        if not self._swapped:
            self._swapped = True
            if session.info is not None:
                session.meter = Meter()  # its figures are about one model
            note = f"loaded {info.name} from the training; it is replaced at every validation"
            self.app.emit(message(note, "dim"))
        session.info, session.notice = info, ""
        self.app.refresh(force=True)
        self.app.invalidate()

    def _ending(
        self, code: int, error: str, stopping: bool, model: str, again: str = "/train"
    ) -> tuple[str, str]:
        """(state, detail) of a run that ended with `code`; `again` starts a training."""
        saved = bool(model) and Path(model).exists()
        resume = f"{model} (resume: {again} {shlex.join(self._args_again())} --resume)"
        if code == 0:
            return "finished", f"saved {model}"
        if code in (130, 143):
            return "stopped", resume if saved else "no model saved"
        if stopping and code == -signal.SIGKILL:
            return "stopped", f"killed after {STOP_WAIT:g} s without saving; " + (
                f"{model} holds the last checkpoint" if saved else "no model saved"
            )
        return "failed", error

    def _on_end(self, state: str, detail: str) -> None:
        self.state, self.detail = state, detail
        self.app.emit(message(f"training {state}: {detail}", "red" if state == "failed" else "dim"))
        if self.app.session.info is None:
            self.app.session.notice = f"training {state}: {detail}"
        self.app.invalidate()

    def _args_again(self) -> list[str]:
        return [a for a in self.args if a not in ("--force", "--resume")]


def _warm_up(predictor) -> None:
    """On the model thread, while the child reads its text: torch imported before the first
    checkpoint comes, not after (seconds on a busy machine)."""
    import rnnrepl.infer.loading  # noqa: F401
    import rnnrepl.infer.predictor  # noqa: F401


def _say(text: str) -> None:
    """A line on stderr once the application has ended (quitting)."""
    sys.stderr.write(f"rnnrepl: {safe_text(text, one_line=True)}\n")
    sys.stderr.flush()


def _loss(f: Figures) -> str:
    if not math.isfinite(f.val_loss):
        return "…"
    unit, value = level_figure(f.val_loss, f.level)
    return f"{value:.3f} bpc" if unit == "bpc" else f"ppl {value:,.1f}"
