"""What key bindings, the layout and slash commands may ask of the running REPL.

They read the session (plain data) and act through this interface, never through the
application object, so none of them imports ``app.py``. ``app.ReplApp`` implements it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from rnnrepl.repl.state import Session

Done = Callable[[Any, BaseException | None], None]  # on_done(result, error)


class Actions(Protocol):
    """The REPL's operations; each runs on the UI thread and returns at once."""

    @property
    def session(self) -> Session:
        """The state that keys, layout and commands read (and commands change)."""
        ...

    @property
    def pair(self) -> Any:
        """`chat A B`: the second model (``pair.Pair``); None with one model."""
        ...

    def refresh(self, force: bool = False) -> None:
        """Ask the model thread for the panel of the current text (newest request wins)."""

    def submit(self, text: str) -> None:
        """Enter: run a slash command, or let the model continue the document after `text`."""

    def emit(self, renderable: Any) -> None:
        """Print a message (a rich renderable) above the application, into the scrollback."""

    def stop_stream(self) -> None:
        """Stop generating now, keeping everything generated so far."""

    def quit(self) -> None:
        """Leave the REPL with status 0."""

    def switch_model(self, spec: str) -> None:
        """Load another model in the background; the document is kept."""

    def call_model(self, fn: Callable[[Any], Any], on_done: Done) -> None:
        """Run fn(predictor) on the model thread; on_done(result, error) on the UI thread."""

    def call_model_stoppable(
        self, fn: Callable[[Any, Callable[[], bool]], Any], on_done: Done
    ) -> None:
        """As call_model, with fn(predictor, stopped): stop_stream() (Ctrl-C) makes stopped()
        true, and fn returns what it has."""

    @property
    def learning(self) -> Any:
        """Learning as you type (``learn.Learning``): its switch and its adapter."""
        ...

    def background_model(self, fn: Callable[[Any], Any], on_done: Done) -> None:
        """Like call_model, once no other job and no panel request waits (learning's slices)."""

    @property
    def training(self) -> Any:
        """The live training (``live.LiveTraining``): /train, its status, Ctrl-C twice."""
        ...

    def width(self) -> int:
        """The terminal's width in columns."""
        ...
