"""The panel of `chat MODEL_A MODEL_B`: each model's panel (``panel.panel``) under its title and
its figures for the text so far, side by side from PAIR_SIDE_BY_SIDE columns, else stacked.

Pure rendering, as ``panel.py``: every model-made string goes through ``visible`` into Text.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.text import Text

from rnnrepl.repl.pair import Pair
from rnnrepl.repl.panel import panel, side_by_side
from rnnrepl.repl.state import ModelInfo, Session, Settings, View
from rnnrepl.ui.render import visible

# From this width the two panels stand side by side (two columns of 39), else one above the other.
PAIR_SIDE_BY_SIDE = 80
GAP = 2  # columns between the two panels


def pair_builder(
    pair: Pair,
) -> Callable[[Session, int], tuple[Callable[[], RenderableType], tuple]]:
    """A ``layout.RichControl`` build function for the pair panel of `pair`."""

    def build(session: Session, width: int):
        view, settings, notice = session.view, session.settings, session.notice
        key = (id(view), view, settings, notice, session.info, pair.info, pair.view)
        return lambda: pair_panel(session, pair, width), key

    return build


def pair_panel(session: Session, pair: Pair, width: int) -> RenderableType:
    """A's panel (the session's view) and B's, each under its title and figures."""
    shown = pair.view
    side = width if width < PAIR_SIDE_BY_SIDE else (width - GAP) // 2
    notice = session.notice or ("" if session.info else "loading model…")
    a = _side(
        "A", session.info, shown.a if shown else None, session.view, session.settings, side, notice
    )
    b_settings = dataclasses.replace(session.settings, words=0)  # words: A's only
    # B: its top-k only; the next word after a whole word is A's (half the rows, half the time)
    b_view = dataclasses.replace(shown.b_view, after=None) if shown and shown.b_view else None
    b_note = "" if pair.info else "loading model…"
    if shown is not None and shown.error:
        b_view, b_note = None, f"error: {shown.error}"
    b = _side("B", pair.info, shown.b if shown else None, b_view, b_settings, side, b_note)
    if width < PAIR_SIDE_BY_SIDE:
        return Group(*a, Text(""), *b)
    return Group(*side_by_side(a, b, side))


def _side(
    name: str,
    info: ModelInfo | None,
    typed,
    view: View | None,
    settings: Settings,
    width: int,
    notice: str,
) -> list[Text]:
    """Title, figures and the panel, as lines of Text (joined side by side at a quarter less
    than the cost of a rich Table, which counts on every keystroke)."""
    body = panel(view, settings, width, notice)
    lines = list(body.renderables) if isinstance(body, Group) else [body]
    return [title(name, info, width), figures(typed, width), *lines]


def title(name: str, info: ModelInfo | None, width: int) -> Text:
    """The panel's first line: "A  shakespeare-char · char · Enter, ghost, words" (A writes the
    continuation, the ghost text and the words), or "B  wikitext-word · word"."""
    line = Text(f"{name} ", style="bold reverse")
    if info is not None:
        line.append(f" {visible(info.name)}", style="bold").append(f" · {info.level}")
    if name == "A":
        line.append(" · Enter, ghost, words", style="dim")
    line.truncate(width, overflow="ellipsis")
    return line


def figures(typed, width: int) -> Text:
    """The model's figures for the text so far: p of the last complete token, then bits per
    character and perplexity of all of them (``infer.typed.TypedScore``)."""
    if typed is None or not (typed.tokens or typed.skipped):
        return Text("nothing typed yet" if typed is not None else "…", style="dim")
    line = Text.assemble(
        ("last ", "dim"), (visible(typed.last), "bold"), f" {percent(typed.last_prob)}"
    )
    bpc = typed.bits_per_character
    line.append(f" · {bpc:.3f} bpc" if math.isfinite(bpc) else " · bpc –")
    ppl = typed.perplexity
    line.append(" · ppl –" if math.isnan(ppl) else f" · ppl {ppl:.2f}")
    line.append(f" · {typed.tokens:,} tok", style="dim")
    if typed.skipped:
        line.append(f" ({typed.skipped:,} pasted unscored)", style="dim")
    line.truncate(width, overflow="ellipsis")
    return line


def percent(p: float) -> str:
    """23.1%, 100%, 0.0123% (three significant digits: a tiny p stays readable)."""
    return f"{100 * p:.3g}%" if math.isfinite(p) else "–"
