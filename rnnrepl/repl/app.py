"""The interactive REPL: a prompt-toolkit application over one growing document.

Top to bottom: the turn being generated (while streaming), the input with ghost text, the live
top-k panel, the status line. The session's state is plain data (``session.py``); the model
runs on a worker thread (``worker.py``); the layout (``layout.py``), key bindings (``keys.py``)
and slash commands (``commands.py``) read the session and act through ``actions.Actions``,
which ReplApp implements, so a slow model never freezes typing or Ctrl-C. Finished turns and
command output are printed above the application, into the terminal's scrollback.

stdin or stdout not a terminal: ``lines.py`` instead, which never imports prompt-toolkit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnrepl.config import SampleConfig
from rnnrepl.errors import UsageError
from rnnrepl.repl.actions import Done
from rnnrepl.repl.meter import Meter
from rnnrepl.repl.state import (
    ModelInfo,
    Session,
    Settings,
    View,
    history_path,
    is_command,
    prompt_text,
)


def run_repl(
    model_spec: str,
    sample: SampleConfig | None = None,
    k: int = 10,
    device: str = "cpu",
    int8: bool = False,
    cache: bool = True,
    second: str | None = None,
    train: list[str] | None = None,
) -> int:
    """`rnnrepl chat`: the application on a terminal, line mode on a pipe. Returns the exit
    status: 0, or 143 after SIGTERM. With `second`, that model's panel beside the first one's
    (``pair.py``). With `train` (`train` arguments): no model until the first checkpoint of
    that training, started in the background (``live.py``)."""
    settings = Settings(sample or SampleConfig(), k, cache=cache)
    if second is not None and train is not None:
        raise UsageError(
            "chat --train shows the model being trained alone", hint="drop the second model"
        )
    if second is not None and not interactive():
        from rnnrepl.repl.pair import refuse_lines

        refuse_lines()
    if train is not None and not interactive():
        raise UsageError(
            "chat --train needs a terminal", hint="run `rnnrepl train` for a training on a pipe"
        )
    if not interactive():
        from rnnrepl.repl.lines import run_lines

        run_lines(model_spec, settings, device, int8=int8)
        return 0
    repl = ReplApp(
        None if train is not None else model_loader(model_spec, device),
        settings,
        history=file_history(),
        device=device,
        int8=int8,
        second=model_loader(second, device) if second is not None else None,
    )
    if train is not None:
        repl.training.start(train)
    return repl.run()


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


def model_loader(spec: str, device: str) -> Callable[[], Any]:
    """A loader to run in the background while the prompt appears. A spec that looks like no
    model at all is loaded right here instead, so its error comes before any UI. (The guess
    only picks when to load; every error message comes from the checkpoint loader itself.)"""
    from rnnrepl.infer.loading import load_for_inference

    if not _looks_loadable(spec):
        loaded = load_for_inference(spec, device)  # raises the checkpoint's one-line error
        return lambda: loaded
    return lambda: load_for_inference(spec, device)


def _looks_loadable(spec: str) -> bool:
    """An existing path, or the name of a bundled model — without importing torch."""
    path = Path(spec).expanduser()
    if path.exists() or Path(f"{path}.safetensors").exists():
        return True
    from rnnrepl.store.home import bundled_model  # no torch

    return bundled_model(spec) is not None


def file_history():
    """Persistent history in the XDG data directory; in memory, after one line of warning, if
    that file cannot be read and appended to (a directory, unreadable, no space)."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    class QuietFileHistory(FileHistory):
        def load_history_strings(self):
            try:
                return list(super().load_history_strings())
            except OSError:
                return []  # checked below; it may still change under us

        def store_string(self, string: str) -> None:
            try:
                super().store_string(string)
            except OSError:
                pass  # a full or read-only disk must not break the prompt

    path = history_path()
    problem = _history_problem(path)
    if problem:
        print(
            f"rnnrepl: warning: cannot use the history file ({path}): {problem}"
            " — running without history",
            file=sys.stderr,
        )
        return InMemoryHistory()
    return QuietFileHistory(str(path))


def _history_problem(path: Path) -> str:
    """Why `path` cannot serve as the history file ('' if it can): checked before prompt-toolkit
    reads it on a background thread, where a failure prints a traceback and waits for Enter."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not path.is_file():  # a directory, or a FIFO that would block
            return "not a regular file"
        with open(path, "ab"), open(path, "rb"):
            return ""
    except OSError as exc:
        return exc.strerror or str(exc)


class ReplApp:
    """The running REPL: owns the session, the model thread and the prompt-toolkit application,
    and implements ``actions.Actions`` for keys, layout and commands. Every method runs on the
    UI thread."""

    def __init__(
        self,
        loader: Callable[[], Any] | None,
        settings: Settings | None = None,
        *,
        history=None,
        device: str = "cpu",
        int8: bool = False,
        input=None,
        output=None,
        emit: Callable[[Any], None] | None = None,
        second: Callable[[], Any] | None = None,
    ) -> None:
        from rnnrepl.repl.layout import build_application
        from rnnrepl.repl.learn import Learning
        from rnnrepl.repl.live import LiveTraining
        from rnnrepl.repl.worker import Worker

        self.session = Session(settings or Settings())
        self.learning = Learning()  # /learn: off until asked
        self.device = device
        self.int8 = int8
        self._stream_id = 0
        self._requested: tuple | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._early: list[Callable[[], None]] = []
        self._post_lock = threading.Lock()
        self.worker = Worker(self._post)  # starts importing torch and loading right away
        self.no_model = loader is None  # the model comes from a live training (chat --train)
        if loader is not None:
            self.worker.load(loader, self._on_loaded, int8)
        self.pair = None if second is None else self._load_second(second)
        self.training = LiveTraining(self, self._post)
        self._emit = emit or self._print_above
        self.ui = build_application(self, history, input, output)

    # ---- running ---------------------------------------------------------------------------
    def run(self, handle_sigint: bool = True) -> int:
        """Run until Ctrl-D or /quit; returns the exit status (0)."""
        try:
            return self.ui.application.run(pre_run=self._pre_run, handle_sigint=handle_sigint) or 0
        finally:
            self.training.close()  # a running training saves and stops: never an orphan
            self.worker.close()

    def _pre_run(self) -> None:
        with self._post_lock:
            self._loop = asyncio.get_running_loop()
            early, self._early = self._early, []
        for fn in early:
            self._loop.call_soon(fn)
        with contextlib.suppress(ValueError, RuntimeError):  # only on the main thread
            # SIGTERM: leave as /quit does (the terminal restored, a training stopped), status 143
            self._loop.add_signal_handler(signal.SIGTERM, self._terminated)

    def _terminated(self) -> None:
        self.worker.cancel_stream()
        self.ui.application.exit(result=143)

    def _post(self, fn: Callable[[], None]) -> None:
        """Run fn on the UI thread (from any thread)."""
        with self._post_lock:
            if self._loop is None:
                self._early.append(fn)
                return
        try:
            self._loop.call_soon_threadsafe(fn)
        except RuntimeError:
            pass  # the loop has closed: the application is gone

    def invalidate(self) -> None:
        self.ui.application.invalidate()

    def quit(self) -> None:
        self.worker.cancel_stream()
        self.ui.application.exit(result=0)

    # ---- what the panel shows ----------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Ask the worker for the panel of the current text (newest request wins)."""
        if self.session.streaming is not None:
            return
        settings = self.session.settings
        text = self.session.prediction_text(self.ui.buffer.document)
        color = None if settings.color == "off" else (settings.color, len(self.session.doc.text))
        request = (text, settings.k, settings.words, settings.cache, color)
        if force or request != self._requested:
            self._requested = request
            self.worker.request_view(
                text, settings.k, self._on_view, settings.words, settings.cache, color
            )

    def _on_view(self, view: View) -> None:
        self.session.show(view)
        self.invalidate()

    # ---- the model ---------------------------------------------------------------------------
    def _on_loaded(self, info: ModelInfo | None, error: BaseException | None) -> None:
        from rnnrepl.repl.panel import message

        session = self.session
        if error is not None:
            if session.info is None and not self.no_model:  # the command line's: a CLI error
                self.ui.application.exit(exception=error)
            else:
                self.emit(message(f"error: {error}", "red"))
            return
        switched = session.info is not None
        session.info, session.view, session.notice = info, None, ""
        if switched:
            session.meter = Meter()  # its figures are about one model
            self.emit(message(f"switched to {info.name} ({info.path})", "dim"))
        self.refresh(force=True)
        self.invalidate()

    def _load_second(self, loader: Callable[[], Any]):
        """chat A B: B loads on the worker after A; failing, it ends the REPL as A would."""
        from rnnrepl.repl.pair import Pair

        pair = self.worker.pair = Pair(self.worker)

        def loaded(info, error: BaseException | None) -> None:
            if error is not None:
                self.ui.application.exit(exception=error)
                return
            pair.info = info
            self.refresh(force=True)

        self.worker.call(lambda _: pair.load(loader, self.int8), loaded)
        return pair

    def switch_model(self, spec: str) -> None:
        from rnnrepl.infer.loading import load_for_inference

        device = self.device
        self.worker.load(lambda: load_for_inference(spec, device), self._on_loaded, self.int8)

    def call_model(self, fn: Callable[[Any], Any], on_done: Done) -> None:
        self.worker.call(fn, on_done)

    def call_model_stoppable(
        self, fn: Callable[[Any, Callable[[], bool]], Any], on_done: Done
    ) -> None:
        self.worker.call_stoppable(fn, on_done)

    def background_model(self, fn: Callable[[Any], Any], on_done: Done) -> None:
        self.worker.background(fn, on_done)

    # ---- turns --------------------------------------------------------------------------------
    def submit(self, text: str) -> None:
        """Enter: a slash command, or the model continues the document (after `text`)."""
        if is_command(text):
            from rnnrepl.repl.commands import run_command

            run_command(self, text)
            return
        if self.no_model and self.session.info is None:  # waiting for a training's first model
            from rnnrepl.repl.panel import message

            self.emit(message("no model yet: " + (self.session.notice or "loading…"), "dim"))
            return
        self.start_turn(prompt_text(text))

    def start_turn(self, text: str) -> None:
        session = self.session
        session.streaming = session.doc.begin(text)
        self._stream_id += 1
        sid = self._stream_id
        self.worker.stream(
            session.doc.text,
            session.settings.sample,
            lambda pieces: self._on_pieces(sid, pieces),
            lambda reason: self._on_stream_done(sid, reason),
        )
        self.invalidate()

    def _on_pieces(self, sid: int, pieces: list[tuple[str, bool, int, float]]) -> None:
        if sid == self._stream_id and self.session.streaming is not None:
            for piece, unknown, rank, prob in pieces:
                self.session.doc.add(piece, unknown, (rank, prob))
            self.invalidate()

    def _on_stream_done(self, sid: int, reason: str) -> None:
        if sid == self._stream_id and self.session.streaming is not None:
            self.finish_turn(reason)

    def stop_stream(self) -> None:
        """Ctrl-C while generating: stop now, keeping everything generated so far."""
        self.worker.cancel_stream()
        if self.session.streaming is not None:
            self.finish_turn("stopped")

    def finish_turn(self, reason: str) -> None:
        from rnnrepl.repl.colors import emit_turn
        from rnnrepl.repl.learn import after_turn
        from rnnrepl.repl.panel import turn_text

        turn, self.session.streaming = self.session.streaming, None
        turn.ended = reason
        self._stream_id += 1  # pieces still in flight belong to a finished turn
        emit_turn(self, turn, turn_text(turn))  # coloured when /color is on
        after_turn(self, turn)  # /learn on: a round of learning on what the user typed
        self.refresh()
        self.invalidate()

    # ---- output above the application ----------------------------------------------------------
    def emit(self, renderable: Any) -> None:
        self._emit(renderable)

    def width(self) -> int:
        return self.ui.application.output.get_size().columns

    def _print_above(self, renderable: Any) -> None:
        from prompt_toolkit import print_formatted_text
        from prompt_toolkit.formatted_text import ANSI
        from rich.text import Text

        from rnnrepl.repl.panel import to_ansi

        # Text is left to the terminal to wrap (resizes reflow it); tables fit the width.
        text = to_ansi(renderable, self.width(), soft_wrap=isinstance(renderable, Text))
        print_formatted_text(ANSI(text), output=self.ui.application.output)
