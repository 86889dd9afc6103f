"""One REPL session's state as plain data: settings, the document, the model, the panel's view.

No prompt_toolkit, no rich: the application (``app.py``) owns this object and changes it on the
UI thread; keys, layout and slash commands read it and act through ``actions.Actions``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Protocol

from rnnrepl.repl.state import Document, ModelInfo, Settings, Turn, View


def is_command(text: str) -> bool:
    """Is this input a slash command? "/set k 5" is; "//x" (an escaped slash) and "x" are not."""
    return text.startswith("/") and not text.startswith("//")


def prompt_text(text: str) -> str:
    """Input that is no command, as the model reads it: "//x" -> "/x"."""
    return text[1:] if text.startswith("//") else text


class Input(Protocol):
    """The input line and its cursor (prompt-toolkit's Document has these)."""

    @property
    def text(self) -> str: ...

    @property
    def text_before_cursor(self) -> str: ...

    @property
    def is_cursor_at_the_end(self) -> bool: ...


@dataclass
class Session:
    """What the REPL knows between two keystrokes; every change happens on the UI thread."""

    settings: Settings = field(default_factory=Settings)
    doc: Document = field(default_factory=Document)
    info: ModelInfo | None = None  # None until the first model has loaded
    view: View | None = None  # the panel's latest prediction (and ghost text)
    notice: str = ""  # a one-line message shown in the panel
    streaming: Turn | None = None  # the turn being generated, if any
    auto_space: str | None = None  # the input right after accepting a word + space

    def prediction_text(self, line: Input) -> str:
        """The document followed by the input up to the cursor (the input alone is a command)."""
        if is_command(line.text):
            return self.doc.text
        return self.doc.text + prompt_text(line.text_before_cursor)

    def ghost(self, line: Input) -> tuple[str, ...]:
        """The ghost text to show after the cursor, if the latest view is for this very text."""
        view = self.view
        if (
            view is None
            or not view.ghost
            or self.streaming is not None
            or is_command(line.text)
            or not line.is_cursor_at_the_end
            or view.text != self.prediction_text(line)
        ):
            return ()
        return view.ghost

    def after_auto_space(self, line: Input) -> bool:
        """Is the cursor right after a space that accepting a word inserted (nothing since)?"""
        return (
            self.auto_space is not None
            and line.text == self.auto_space
            and line.is_cursor_at_the_end
        )

    def show(self, view: View) -> None:
        """Make `view` the panel's; its unknown-token notice counts the user's input only."""
        generated = self.doc.generated_unknown
        if generated and view.unknown:
            view = dataclasses.replace(view, unknown=max(0, view.unknown - generated))
        self.view = view
