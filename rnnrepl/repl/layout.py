"""The REPL's prompt-toolkit layout: small factories over the session, nothing that computes.

The panel is a pure function (view, settings) -> rich renderable (``repl/panel.py``); it is turned
into ANSI fragments once per change, cached by what it depends on, not once per repaint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import Condition, to_filter
from prompt_toolkit.formatted_text import ANSI, to_formatted_text
from prompt_toolkit.formatted_text.utils import split_lines
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

from rnnrepl.repl.actions import Actions
from rnnrepl.repl.alts import sampling_note
from rnnrepl.repl.colors import STYLES, SurpriseColors, status_legend, stream_fragments
from rnnrepl.repl.commands import SlashCompleter
from rnnrepl.repl.keys import build_key_bindings
from rnnrepl.repl.panel import panel, status, to_ansi
from rnnrepl.repl.state import Session, is_command
from rnnrepl.ui.render import safe_text

STYLE = Style.from_dict(
    {
        "prompt": "bold fg:ansigreen",
        "ghost": "fg:#888888 dim",
        "user": "bold",
        "model": "fg:ansicyan",
        "status": "reverse",
        **STYLES,
    }
)
STREAM_TAIL = 4000  # characters of the current turn shown while it streams


class GhostText(Processor):
    """Dim text after the cursor: the model's greedy rest of the current word."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        if ti.lineno != ti.document.line_count - 1:
            return Transformation(ti.fragments)
        pieces = self.session.ghost(ti.buffer_control.buffer.document)
        if not pieces:
            return Transformation(ti.fragments)
        ghost = safe_text("".join(pieces)).replace("\t", "⇥")
        return Transformation([*ti.fragments, ("class:ghost", ghost)])


class RichControl:
    """Fragments of a rich renderable, re-rendered only when its inputs or the width change:
    `build(session, width)` gives (a function that makes the renderable, the inputs' key)."""

    def __init__(
        self, session: Session, width: Callable[[], int], build, one_line: bool = False
    ) -> None:
        self.session, self.width, self.build, self.one_line = session, width, build, one_line
        self._cached: tuple[Any, list, int] = (None, [], 1)

    def __call__(self) -> list:
        return self._render()[1]

    def height(self) -> Dimension:
        """As many rows as the fragments have lines, or fewer (a small terminal): given, so that
        prompt-toolkit does not walk the fragments to find out on every redraw."""
        lines = self._render()[2]
        return Dimension(min=0, preferred=lines, max=lines)

    def _render(self) -> tuple[Any, list, int]:
        width = self.width()
        make, key = self.build(self.session, width)
        cached = self._cached  # one read: another thread may replace it meanwhile
        if cached[0] == (key, width):
            return cached
        ansi = ANSI(to_ansi(make(), width, one_line=self.one_line))
        fragments = merge_fragments(to_formatted_text(ansi))
        # key, fragments and lines are replaced together, so no caller ever pairs a new key
        # with old fragments when two threads render at once
        self._cached = ((key, width), fragments, len(list(split_lines(fragments))))
        return self._cached


def merge_fragments(fragments: list) -> list:
    """Runs of plain fragments with one style as one fragment each. The ANSI parser gives one
    fragment per character, and prompt-toolkit walks every fragment several times a redraw
    (heights, then the screen): merged, a panel redraws in a fraction of the time."""
    merged: list = []
    for fragment in fragments:
        last = merged[-1] if merged else None
        if (
            last is not None
            and len(fragment) == 2
            and len(last) == 2
            and last[0] == fragment[0]
            and "[" not in fragment[0]  # [ZeroWidthEscape], [SetCursorPosition]: kept apart
        ):
            merged[-1] = (last[0], last[1] + fragment[1])
        else:
            merged.append(fragment)
    return merged


def _panel(session: Session, width: int):
    view = session.view
    notice = session.notice or ("" if session.info else "loading model…")
    settings = session.settings
    key = (id(view), view, settings, notice)
    return lambda: panel(view, settings, width, notice), key


def _panel_builder(repl: Actions):
    """One model's panel, or two models' (chat A B: ``pair_panel``)."""
    if repl.pair is None:
        return _panel
    from rnnrepl.repl.pair_panel import pair_builder

    return pair_builder(repl.pair)


def _status(session: Session, width: int, training: str = ""):
    busy = "generating… Ctrl-C stops" if session.streaming is not None else sampling_note(session)
    meter = session.meter.status(session.settings.words)
    info, settings, view = session.info, session.settings, session.view
    key = (info, settings, view.tokens if view else 0, busy, meter, training)
    legend = status_legend(session)
    return lambda: status(info, settings, view, busy, meter, width, legend, training), key


def _stream_fragments(session: Session) -> list:
    turn = session.streaming
    if turn is None:
        return []
    model = turn.model[-STREAM_TAIL:]
    user = turn.user[-(STREAM_TAIL - len(model)) :] if len(model) < STREAM_TAIL else ""
    colored = stream_fragments(session, turn, len(model))  # None: /color is off
    return [
        ("class:user", safe_text(user)),
        *(colored if colored is not None else [("class:model", safe_text(model))]),
        ("[SetCursorPosition]", ""),
    ]


@dataclass(frozen=True)
class Ui:
    """What build_application built: the application, its input buffer and the two controls
    that render the panel and the status line (callables returning fragments)."""

    application: Application
    buffer: Buffer
    panel_control: RichControl
    status_control: RichControl


def build_application(repl: Actions, history, input, output) -> Ui:
    """The prompt-toolkit application over `repl`'s session; keys and Enter act through `repl`."""
    session = repl.session
    streaming = Condition(lambda: session.streaming is not None)
    buffer = _input_buffer(repl, history, read_only=streaming)
    search = SearchToolbar()
    panel_control = RichControl(session, repl.width, _panel_builder(repl))
    status_control = RichControl(
        session, repl.width, lambda s, w: _status(s, w, repl.training.line()), one_line=True
    )
    stream_window = Window(
        FormattedTextControl(lambda: _stream_fragments(session)),
        wrap_lines=True,
        height=Dimension(min=1, max=12),
        dont_extend_height=True,
    )
    body = HSplit(
        [
            ConditionalContainer(stream_window, filter=streaming),
            _input_row(session, buffer, search),
            search,
            _command_menu(),
            Window(
                FormattedTextControl(panel_control),
                height=panel_control.height,
                dont_extend_height=True,
            ),
            Window(FormattedTextControl(status_control), height=1, style="class:status"),
        ]
    )
    app = Application(
        layout=Layout(body, focused_element=buffer),
        key_bindings=build_key_bindings(repl, buffer),
        style=STYLE,
        erase_when_done=True,
        input=input,
        output=output,
    )
    return Ui(app, buffer, panel_control, status_control)


def _command_menu() -> CompletionsMenu:
    """The slash-command menu in rows of its own under the input: it pushes the panel down
    (as a float at the cursor it covered the panel header) and takes one row per entry."""
    menu = CompletionsMenu(max_height=16)
    menu.content.dont_extend_height = to_filter(True)  # no blank rows after a longer menu
    return menu


def _input_buffer(repl: Actions, history, read_only) -> Buffer:
    """Multi-line input; every edit or cursor move asks the worker for a new panel."""
    buffer = Buffer(
        multiline=True,
        history=history,
        completer=SlashCompleter(repl.session),
        complete_while_typing=Condition(lambda: is_command(buffer.text)),
        accept_handler=lambda buf: repl.submit(buf.text) or False,
        read_only=read_only,
        on_text_changed=lambda _: repl.refresh(),
        on_cursor_position_changed=lambda _: repl.refresh(),
    )
    return buffer


def _input_row(session: Session, buffer: Buffer, search: SearchToolbar) -> VSplit:
    control = BufferControl(
        buffer,
        input_processors=[SurpriseColors(session), GhostText(session)],
        search_buffer_control=search.control,
    )
    return VSplit(
        [
            Window(FormattedTextControl([("class:prompt", "› ")]), width=2),
            Window(
                control, wrap_lines=True, height=Dimension(min=1, max=12), dont_extend_height=True
            ),
        ]
    )
