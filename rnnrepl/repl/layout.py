"""The REPL's prompt-toolkit layout: small factories over ReplApp's state, nothing that computes.

The panel is a pure function (view, settings) -> rich renderable (``panel.py``); it is turned
into ANSI fragments once per change, cached by what it depends on, not once per repaint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import Condition, to_filter
from prompt_toolkit.formatted_text import ANSI, to_formatted_text
from prompt_toolkit.layout import (
    ConditionalContainer,
    FormattedTextControl,
    HSplit,
    Layout,
    VSplit,
    Window,
)
from prompt_toolkit.layout.controls import BufferControl
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.layout.menus import CompletionsMenu
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput
from prompt_toolkit.styles import Style
from prompt_toolkit.widgets import SearchToolbar

from rnnrepl.repl.panel import panel, status, to_ansi
from rnnrepl.ui.render import safe_text

if TYPE_CHECKING:
    from rnnrepl.repl.app import ReplApp

STYLE = Style.from_dict(
    {
        "prompt": "bold fg:ansigreen",
        "ghost": "fg:#888888 dim",
        "user": "bold",
        "model": "fg:ansicyan",
        "status": "reverse",
    }
)
STREAM_TAIL = 4000  # characters of the current turn shown while it streams


class GhostText(Processor):
    """Dim text after the cursor: the model's greedy rest of the current word."""

    def __init__(self, repl: ReplApp) -> None:
        self.repl = repl

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        if ti.lineno != ti.document.line_count - 1:
            return Transformation(ti.fragments)
        pieces = self.repl.ghost()
        if not pieces:
            return Transformation(ti.fragments)
        ghost = safe_text("".join(pieces)).replace("\t", "⇥")
        return Transformation([*ti.fragments, ("class:ghost", ghost)])


class RichControl:
    """Fragments of a rich renderable, re-rendered only when its inputs or the width change."""

    def __init__(self, repl: ReplApp, build, one_line: bool = False) -> None:
        self.repl, self.build, self.one_line = repl, build, one_line
        self._cached: tuple[Any, list] = (None, [])

    def __call__(self) -> list:
        width = self.repl.width()
        renderable, key = self.build(self.repl, width)
        cached = self._cached  # one read: another thread may replace it meanwhile
        if cached[0] == (key, width):
            return cached[1]
        fragments = to_formatted_text(ANSI(to_ansi(renderable, width, one_line=self.one_line)))
        # key and fragments are replaced together, so no caller ever pairs a new key with old
        # fragments when two threads render at once
        self._cached = ((key, width), fragments)
        return fragments


def _panel(repl: ReplApp, width: int):
    view = repl.view
    notice = repl.notice or ("" if repl.info else "loading model…")
    key = (id(view), view, repl.settings, notice)
    return panel(view, repl.settings, width, notice), key


def _status(repl: ReplApp, width: int):
    busy = "generating… Ctrl-C stops" if repl.streaming is not None else ""
    key = (repl.info, repl.settings, repl.view.tokens if repl.view else 0, busy)
    return status(repl.info, repl.settings, repl.view, busy), key


def _stream_fragments(repl: ReplApp) -> list:
    turn = repl.streaming
    if turn is None:
        return []
    model = turn.model[-STREAM_TAIL:]
    user = turn.user[-(STREAM_TAIL - len(model)) :] if len(model) < STREAM_TAIL else ""
    return [
        ("class:user", safe_text(user)),
        ("class:model", safe_text(model)),
        ("[SetCursorPosition]", ""),
    ]


def build_application(repl: ReplApp, history, input, output) -> tuple[Application, Buffer]:
    """The application and its input buffer; sets repl.panel_control / repl.status_control."""
    from rnnrepl.repl.keys import build_key_bindings

    streaming = Condition(lambda: repl.streaming is not None)
    buffer = _input_buffer(repl, history, read_only=streaming)
    search = SearchToolbar()
    repl.panel_control = RichControl(repl, _panel)
    repl.status_control = RichControl(repl, _status, one_line=True)
    stream_window = Window(
        FormattedTextControl(lambda: _stream_fragments(repl)),
        wrap_lines=True,
        height=Dimension(min=1, max=12),
        dont_extend_height=True,
    )
    body = HSplit(
        [
            ConditionalContainer(stream_window, filter=streaming),
            _input_row(repl, buffer, search),
            search,
            _command_menu(),
            Window(FormattedTextControl(repl.panel_control), dont_extend_height=True),
            Window(FormattedTextControl(repl.status_control), height=1, style="class:status"),
        ]
    )
    app = Application(
        layout=Layout(body, focused_element=buffer),
        key_bindings=build_key_bindings(repl),
        style=STYLE,
        erase_when_done=True,
        input=input,
        output=output,
    )
    return app, buffer


def _command_menu() -> CompletionsMenu:
    """The slash-command menu in rows of its own under the input: it pushes the panel down
    (as a float at the cursor it covered the panel header) and takes one row per entry."""
    menu = CompletionsMenu(max_height=10)
    menu.content.dont_extend_height = to_filter(True)  # no blank rows after a longer menu
    return menu


def _input_buffer(repl: ReplApp, history, read_only) -> Buffer:
    """Multi-line input; every edit or cursor move asks the worker for a new panel."""
    from rnnrepl.repl.commands import SlashCompleter

    return Buffer(
        multiline=True,
        history=history,
        completer=SlashCompleter(),
        complete_while_typing=Condition(lambda: repl.command_mode),
        accept_handler=lambda buf: repl.submit(buf.text) or False,
        read_only=read_only,
        on_text_changed=lambda _: repl.refresh(),
        on_cursor_position_changed=lambda _: repl.refresh(),
    )


def _input_row(repl: ReplApp, buffer: Buffer, search: SearchToolbar) -> VSplit:
    control = BufferControl(
        buffer, input_processors=[GhostText(repl)], search_buffer_control=search.control
    )
    return VSplit(
        [
            Window(FormattedTextControl([("class:prompt", "› ")]), width=2),
            Window(
                control, wrap_lines=True, height=Dimension(min=1, max=12), dont_extend_height=True
            ),
        ]
    )
