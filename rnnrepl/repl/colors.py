"""/color rank|prob|off: the document coloured by how expected each token was (surprisal).

The worker computes the marks with the panel (``View.colors``, from the input line on) at the
cost of the new tokens; here they are only drawn: on the input line by a prompt-toolkit
processor, in a finished turn when it is printed, and as a legend in the status line. Nothing
here calls the model on the UI thread.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
from typing import NamedTuple

from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput
from prompt_toolkit.layout.utils import explode_text_fragments
from rich.text import Text

from rnnrepl.infer.buckets import KINDS, scheme_for
from rnnrepl.repl.actions import Actions
from rnnrepl.repl.state import Input, Session, Turn, is_command, prompt_text
from rnnrepl.ui.surprisal import COLORS, SHADES, colored_text, legend
from rnnrepl.ui.textsafe import safe_text

STYLES = {f"surprise-{i}": f"fg:ansi{color}" for i, color in enumerate(COLORS)} | {
    f"surprise-{len(COLORS) + i}": f"bg:{shade} fg:#000000" for i, shade in enumerate(SHADES)
}


class Run(NamedTuple):
    """A mark moved into a piece of the text (what ``colored_text`` draws)."""

    start: int
    end: int
    bucket: int


def input_colors(session: Session, line: Input) -> dict[int, int]:
    """The bucket of each character of the input line (index -> bucket) that the latest view
    coloured and that is unchanged since: an edit is recoloured from where it begins."""
    view = session.view
    if view is None or not view.colors or is_command(line.text):
        return {}
    doc = len(session.doc.text)
    text = session.prediction_text(line)
    n = min(len(view.text), len(text))
    same = next((i for i in range(doc, n) if view.text[i] != text[i]), n)
    shift = doc - (len(line.text) - len(prompt_text(line.text)))  # "//x" reads as "/x"
    out: dict[int, int] = {}
    for m in view.colors:
        for p in range(max(m.start, doc), min(m.end, same)):
            out[p - shift] = m.bucket
    return out


class SurpriseColors(Processor):
    """The input line's characters in their tokens' surprisal colours (/color)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        if self.session.settings.color == "off":
            return Transformation(ti.fragments)
        colors = input_colors(self.session, ti.buffer_control.buffer.document)
        if not colors:
            return Transformation(ti.fragments)
        at = ti.document.translate_row_col_to_index(ti.lineno, 0)
        out = []
        for i, (style, ch, *rest) in enumerate(explode_text_fragments(ti.fragments)):
            bucket = colors.get(at + i)
            out.append((style if bucket is None else f"{style} class:surprise-{bucket}", ch, *rest))
        return Transformation(out)


def stream_fragments(session: Session, turn: Turn, shown: int) -> list | None:
    """The last `shown` characters of the model's text while it streams, each token in its
    colour (the rank it was sampled at); None when /color is off."""
    kind = session.settings.color
    if kind not in KINDS or session.info is None:  # off, or a unit's shades: after the turn
        return None
    scheme = scheme_for(kind, session.info.level)
    model, cut = turn.model, len(turn.model) - shown
    out, pos = [], cut
    first = bisect.bisect_right(turn.scores, cut, key=lambda score: score[1])
    for start, end, rank, prob in turn.scores[first:]:
        start = max(start, cut)
        out.append(("class:model", safe_text(model[pos:start])))
        style = f"class:model class:surprise-{scheme.bucket(rank, prob)}"
        out.append((style, safe_text(model[start:end])))
        pos = end
    out.append(("class:model", safe_text(model[pos:])))
    return [f for f in out if f[1]]


def status_legend(session: Session) -> Text | None:
    """'rank 1 ≤3 ≤10 >10' (char level), each in its colour; None when /color is off."""
    kind = session.settings.color
    if kind == "off" or session.info is None:
        return None
    if kind not in KINDS:  # "unit L:I"
        line = Text(f"{kind} -1 ")
        for shade in SHADES:
            line.append("  ", style=f"on {shade}")
        return line.append(" +1")
    labels = scheme_for(kind, session.info.level).short_labels
    line = Text(kind)
    for color, label in zip(COLORS, labels, strict=True):
        line.append(" ").append(label, style=color)
    return line


def turn_text(turn: Turn, marks: tuple, ended: str = "") -> Text:
    """A finished turn in colours: the user's text bold, both coloured by `marks` (positions
    in the document, the turn starting at turn.start)."""
    user_end = turn.start + len(turn.user)
    text = colored_text(turn.user, _runs(marks, turn.start, user_end), base="bold")
    text.append_text(colored_text(turn.model, _runs(marks, user_end, user_end + len(turn.model))))
    if ended:
        text.append(f" [{ended}]", style="dim")
    return text


def _runs(marks: tuple, start: int, end: int) -> list[Run]:
    """The marks inside [start, end), moved to begin at 0."""
    return [
        Run(max(m.start, start) - start, min(m.end, end) - start, m.bucket)
        for m in marks
        if m.end > start and m.start < end
    ]


def emit_turn(repl: Actions, turn: Turn, plain: Text) -> None:
    """Print a finished turn: coloured once the worker has its marks (/color on), else plain."""
    kind = repl.session.settings.color
    if kind == "off":
        repl.emit(plain)
        return
    text = repl.session.doc.text[: turn.start + len(turn.user) + len(turn.model)]

    def done(marks, error) -> None:
        repl.emit(plain if error is not None else turn_text(turn, marks, turn.ended))

    repl.call_model(lambda p: p.colors(text, kind, since=turn.start), done)


def color_command(repl: Actions, arg: str) -> None:
    """/color rank|prob|off; /color alone says which is on."""
    session = repl.session
    kind = arg.lower() or session.settings.color
    if kind.startswith("unit "):  # /color alone while /neuron colours the document
        repl.emit(Text(f"colouring by {kind}: /neuron off, or /color rank|prob", style="dim"))
        return
    if kind not in (*KINDS, "off"):
        repl.emit(Text("usage: /color rank|prob|off", style="red"))
        return
    session.settings = dataclasses.replace(session.settings, color=kind)
    if kind == "off":
        repl.emit(Text("colours off", style="dim"))
    elif session.info is not None:
        repl.emit(legend(kind, scheme_for(kind, session.info.level).labels))
    if kind != "off" and os.environ.get("NO_COLOR"):
        repl.emit(Text("NO_COLOR is set: the terminal shows no colours — unset it to see them"))
    repl.refresh(force=True)
