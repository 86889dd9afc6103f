"""A training run in a child process, watched from another process (the REPL's live training).

The child is `python -m rnnrepl train FILES... --log EVENTS.jsonl`, niced and on one thread so
the watcher's process stays responsive. Nothing new travels between the two: the child writes its
model file atomically at every validation and one JSON line per event (``cli/train_log.py``);
the watcher polls both. Stopping is SIGINT, which `train` answers by saving its resume state
and exiting 130. No torch here, and nothing printed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rnnrepl.errors import UsageError

# Validation (which saves a better model) every few seconds, the first after half a second, on
# a slice of the split small enough to take a fraction of that: a watcher sees a model early and
# often. Options the user gives win (they come later on the command line).
LIVE_OPTIONS = (("--eval-seconds", "2"), ("--eval-tokens", "4096"))
OWN_OPTIONS = ("--log", "--nproc")  # the watcher's to set, or meaningless here
NICE = 10  # the child's priority: below the process that watches it
STOP_WAIT = 60.0  # seconds from SIGINT (finish the step, save) to SIGKILL: a big model's
# step on a busy CPU took 13 s
ERROR_PREFIX = "rnnrepl: error: "
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Figures:
    """What the event log has said so far."""

    started: bool = False  # the `start` event came: the data is read, training begins
    step: int = 0
    tokens_per_s: float = 0.0
    seconds: float = 0.0
    val_loss: float = math.nan  # the latest validation's (nats)
    level: str = ""
    model: str = ""  # the model file the child writes
    resumed: bool = False


def train_command(args: list[str], log: Path) -> list[str]:
    """The child's command line: `train ARGS` with the live defaults the user did not give,
    and the event log."""
    for arg in args:
        if arg.split("=")[0] in OWN_OPTIONS:
            raise UsageError(
                f"{arg.split('=')[0]} cannot be given to a live training",
                hint="run `rnnrepl train` on its own for that",
            )
    given = {arg.split("=")[0] for arg in args}
    defaults = [part for pair in LIVE_OPTIONS if pair[0] not in given for part in pair]
    # through child_main, below, which lowers its priority and ties it to this process
    here = [sys.executable, "-m", __name__, str(os.getpid())]
    return [*here, "train", *args, *defaults, "--log", str(log)]


def read_events(path: Path, offset: int, figures: Figures) -> tuple[int, Figures]:
    """Figures updated by the complete lines of the log after byte `offset`; the new offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return offset, figures
    end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
    for line in data[:end].splitlines():
        with contextlib.suppress(ValueError):
            figures = apply_event(figures, json.loads(line))
    return offset + end, figures


def apply_event(figures: Figures, event: dict) -> Figures:
    kind = event.get("event")
    step = event.get("step", figures.step)
    if kind == "start":
        model, level = str(event.get("model", "")), str(event.get("level", ""))
        return replace(figures, started=True, step=step, model=model, level=level, resumed=step > 0)
    if kind == "step":
        speed = event.get("tokens_per_s") or 0.0
        return replace(figures, step=step, tokens_per_s=speed, seconds=event.get("seconds", 0.0))
    if kind == "eval":
        val = event.get("val_loss")
        val = math.nan if val is None else float(val)
        return replace(figures, step=step, val_loss=val, seconds=event.get("seconds", 0.0))
    if kind == "end":
        return replace(figures, step=step, seconds=event.get("seconds", figures.seconds))
    return figures


def last_error(path: Path) -> str:
    """The last `rnnrepl: error:` line the child wrote (without the prefix), or ''."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    errors = [line for line in tail.splitlines() if line.startswith(ERROR_PREFIX)]
    return errors[-1][len(ERROR_PREFIX) :] if errors else ""


def _signature(path: str) -> tuple[int, int, int] | None:
    """What changes when the file is replaced (os.replace: a new inode) or rewritten."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class TrainJob:
    """One child training run. Only one thread (the watcher) calls poll() and stop()."""

    def __init__(self, args: list[str]) -> None:
        train_command(args, Path("-"))  # a refused option: refused before anything is made
        self.dir = Path(tempfile.mkdtemp(prefix="rnnrepl-train-"))
        self.log, self.err = self.dir / "events.jsonl", self.dir / "train.err"
        self.argv = train_command(args, self.log)
        self.figures = Figures()
        self.proc: subprocess.Popen | None = None
        self._offset = 0
        self._seen: tuple[int, int, int] | None = None  # the model file's, when last handed out
        self._stop_at: float | None = None  # when SIGINT was sent

    def start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1", "COLUMNS": "1000"}
        with open(self.err, "wb") as err, _removed_on_error(self.dir):
            # stdout and stderr to a file, not a pipe: nothing to drain, no SIGPIPE
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env=env,
                start_new_session=True,  # the terminal's signals are the REPL's to pass on
            )

    def poll(self) -> tuple[Figures, Path | None, int | None]:
        """(the figures, the model file if it changed since the last call, the exit status
        once the child has ended); SIGKILL when a stop has waited STOP_WAIT."""
        code = self.proc.poll() if self.proc else None
        was_started = self.figures.started
        self._offset, self.figures = read_events(self.log, self._offset, self.figures)
        if self.figures.started and not was_started and not self.figures.resumed:
            self._seen = _signature(self.figures.model)  # a previous run's file: not this one's
        changed = None
        if self.figures.started:
            now = _signature(self.figures.model)
            if now is not None and now != self._seen:
                self._seen, changed = now, Path(self.figures.model)
        if code is None and self._stop_at and time.monotonic() - self._stop_at > STOP_WAIT:
            self.proc.kill()
        return self.figures, changed, code

    def stop(self) -> None:
        """SIGINT: the child finishes its step, saves its resume state and exits 130."""
        if self.proc and self.proc.poll() is None and self._stop_at is None:
            self._stop_at = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)

    @property
    def stopping(self) -> bool:
        return self._stop_at is not None

    def error(self, code: int) -> str:
        """Why the child failed, in one line."""
        found = last_error(self.err)
        if found:
            return found
        if code < 0:
            return f"training was killed by signal {-code}"
        return f"training exited with status {code}"

    def cleanup(self) -> None:
        """Remove the log and the error file (the child has ended)."""
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def _removed_on_error(directory: Path):
    try:
        yield
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def child_main() -> None:
    """`python -m rnnrepl.train.background PARENT ARGS...`: lower this process's priority; on
    Linux have it sent SIGTERM (save and stop) when PARENT dies, however it dies, SIGKILL
    included (never an orphan training); then become `python -m rnnrepl ARGS`. (A preexec_fn
    would do this between fork and exec, which is unsafe in a process running threads.)
    SIGTERM, not SIGINT: the kernel sends it again as each thread of the parent exits, and
    a second SIGINT would stop the training without saving."""
    parent = int(sys.argv[1])
    os.nice(NICE)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl
        sys.exit(130)
    os.execv(sys.executable, [sys.executable, "-m", "rnnrepl", *sys.argv[2:]])


if __name__ == "__main__":
    child_main()
