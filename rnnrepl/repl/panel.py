"""Pure rich renderers for the REPL: (view, settings) in, renderable out.

Every string from a model, a vocabulary, a file name or the user goes through ``visible`` or
``safe_text`` into ``Text`` objects — never into markup — so it cannot drive the terminal.
"""

from __future__ import annotations

import io
import math
import os

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from rnnrepl.repl.state import SETTING_NAMES, ModelInfo, Settings, Turn, View, describe_settings
from rnnrepl.ui.render import safe_text, visible

TOKEN_WIDTH = 16  # longer tokens are cut with an ellipsis
SIDE_BY_SIDE = 72  # from this width two lists (completions, next word) stand side by side
HELP = [
    ("/help", "this help"),
    ("/set NAME VALUE", f"change a setting ({', '.join(SETTING_NAMES)})"),
    ("/show", "settings and model information"),
    ("/reset", "clear the document (the context) and the meter"),
    ("/stats", "the meter: top-1, words in the suggestions, keystrokes saved, with counts"),
    ("/undo", "drop the last turn (your text and the model's continuation)"),
    ("/score TEXT", "per-token probabilities and mean loss of TEXT after the document"),
    ("/color rank|prob|off", "colour the document by how expected each token was"),
    ("/neuron L:I|off", "colour the document by one hidden unit's activation"),
    ("/flip", "chat A B: exchange the two models (A writes: Enter, ghost, words)"),
    ("/learn on|off", "the model learns from each turn you type (alone: what it learned)"),
    ("/forget", "undo all learning: the weights as loaded"),
    ("/save-model NAME [--force]", "write the adapted model (NAME: the model home; or a path)"),
    ("/model PATH", "switch to another model (the document is kept)"),
    ("/save FILE", "write the document (transcript) of the current branch to FILE"),
    ("/fork [NAME]", "keep the document as a branch; go on as NAME (default b1, b2, ...)"),
    ("/branches", "list the branches: turns, last line; * marks the current one"),
    ("/switch NAME", "go to a branch: its document, turns (/undo) and meter"),
    ("/load FILE", "read a text file (up to 4 MiB) as the current branch's document"),
    ("/alts [N]", "sample N continuations (2-6, default 3) side by side; Ctrl-C stops"),
    ("/keep I", "append alternative I to the document (typing on discards them)"),
    ("/train FILE... [opts]", "train a model in the background and watch it learn (/train stop)"),
    ("/quit", "leave (Ctrl-D on an empty line does too)"),
]
KEYS = [
    ("Enter", "the model continues the document (on an empty line: continues again)"),
    ("Esc Enter / Alt-Enter", "new line inside your input"),
    ("Tab / →", "accept the ghost text (the rest of the word, and its space)"),
    ("Alt-F", "accept one token of the ghost text"),
    ("Alt-1 … Alt-9", "insert the i-th suggested word of the panel and a space (/set words N)"),
    ("Ctrl-C", "stop generating; on the prompt: clear the line (twice: stop a /train)"),
    ("↑ ↓ / Ctrl-R", "history / search it"),
    ("//text", "input that starts with a slash"),
]


def panel(view: View | None, settings: Settings, width: int, notice: str = "") -> RenderableType:
    """The live panel: what the model predicts after the text up to the cursor."""
    if view is None:
        return Text(notice or "loading model…", style="dim")
    rows: list[RenderableType] = []
    if view.error:
        rows.append(Text(safe_text(f"error: {view.error}"), style="red"))
    if notice:
        rows.append(Text(notice, style="red"))
    column = _column(view) if settings.words else []
    beside = bool(column) and width >= SIDE_BY_SIDE
    rest = width - column[0].cell_len - 2 if beside else width
    note = _unknown_note(view.unknown)
    if view.partial and view.after is not None:
        body = _two_lists(view, settings.k, rest)
        if note:  # on a line of its own: the first one holds two labels
            rows.insert(0, Text(note, style="yellow"))
    else:
        body = [_label(view), *bars(view.top[: settings.k], rest)]
        if note and not beside:
            body[0].append(f"   {note}", "yellow")
        elif note:
            rows.insert(0, Text(note, style="yellow"))
    body = side_by_side(body, column, rest) if beside else body + column
    return Group(body[0], *rows, *body[1:])


def _column(view: View) -> list[Text]:
    """The words column; while the words are computed, the last one's place, blank (the bars
    do not move when the words arrive, and no word shown belongs to another text)."""
    if view.words_pending is None:
        return words_column(view.words) if view.words else []
    shape = words_column(view.words_pending or (("", 0.0),))
    return [shape[0], *(Text(" " * line.cell_len) for line in shape[1:])]


def words_column(words) -> list[Text]:
    """The whole-word suggestions: a heading, then per word its key number, the word and its
    probability; every line as wide as the widest."""
    labels = [Text(visible(word), style="bold") for word, _ in words]
    col = min(TOKEN_WIDTH, max((label.cell_len for label in labels), default=1))
    lines = [Text("words", style="dim")]
    for i, (label, (_, p)) in enumerate(zip(labels, words, strict=True), 1):
        label.truncate(col, overflow="ellipsis", pad=True)
        lines.append(Text.assemble((f"{i} ", "dim"), label, f" {100 * p:5.1f}%"))
    size = max(line.cell_len for line in lines)
    for line in lines:
        line.pad_right(size - line.cell_len)
    return lines


def side_by_side(left: list[Text], right: list[Text], width: int) -> list[Text]:
    """Two columns of lines: `left` cut or padded to `width` cells, two spaces, `right`."""
    lines = []
    for i in range(max(len(left), len(right))):
        line = left[i].copy() if i < len(left) else Text()
        line.truncate(width, overflow="ellipsis", pad=True)
        line.append("  ")
        if i < len(right):
            line.append_text(right[i])
        lines.append(line)
    return lines


def _two_lists(view: View, k: int, width: int) -> list[Text]:
    """Completions of a typed whole word and the next word after it: side by side when the
    panel is wide enough, else one above the other."""
    word = visible(view.partial)
    half = width // 2 - 1
    col = half if width >= SIDE_BY_SIDE else width
    left = [
        Text.assemble(("completions of ", "dim"), (f"'{word}'", "bold")),
        *(bars(view.top[:k], col) or [Text("(no word begins with it)", style="dim")]),
    ]
    right = [
        Text.assemble(("next word after ", "dim"), (f"'{word}'", "bold")),
        *([Text(" (read as <unk>)", style="dim")] if not view.top else []),
        *bars(view.after[:k], col),
    ]
    if width < SIDE_BY_SIDE:
        return [*left, *right]
    return side_by_side(left, right, half)


def bars(items, width: int) -> list[Text]:
    """One line per token: the token (visible, right-aligned), a bar, the percentage.

    Plain Text lines rather than a Table: the same look for a third of the rendering time,
    which counts when it runs on every keystroke."""
    labels = [Text(visible(token), style="bold") for token, _ in items]
    col = min(TOKEN_WIDTH, max((label.cell_len for label in labels), default=1))
    size = max(8, min(40, width - col - 10))
    lines = []
    for label, (_, p) in zip(labels, items, strict=True):
        label.truncate(col, overflow="ellipsis")
        filled = p * size
        bar = "█" * int(filled) + ("▌" if filled - int(filled) >= 0.5 else "")
        line = Text(" " * (col - label.cell_len))
        line.append_text(label)
        line.append(" " + bar.ljust(size), style="cyan")
        line.append(f" {100 * p:5.1f}%")
        lines.append(line)
    return lines


def _label(view: View) -> Text:
    if view.partial:
        return Text.assemble(("completions of ", "dim"), (f"'{visible(view.partial)}'", "bold"))
    return Text("next token", style="dim")


def _unknown_note(unknown: int) -> str:
    if not unknown:
        return ""
    noun = "token" if unknown == 1 else "tokens"
    return f"{unknown} unknown {noun} in the context (read as <unk>)"


def status(
    info: ModelInfo | None,
    settings: Settings,
    view: View | None,
    busy: str = "",
    meter: str = "",
    width: int = 0,
    legend: Text | None = None,
    training: str = "",
) -> Text:
    """One line: model, level, a live training's figures, temperature, top-k, top-p, panel k,
    context length in tokens, then the meter (``Meter.status``) once something has been typed,
    then the /color legend. When the training, the meter or the legend would not fit in `width`,
    the sampling settings make room for them, top-p first (/show lists them)."""
    s = settings.sample
    if info is None:
        head = Text("loading…")
    else:
        head = Text.assemble((visible(info.name), "bold"), f" · {info.level}")
    parts = [
        *([training] if training else []),
        f"T {s.temperature:g}",
        f"top-k {s.top_k or 'off'}",
        f"top-p {s.top_p:g}",
        f"k {settings.k}",
        f"ctx {view.tokens if view else 0:,} tok",
    ]
    if meter:
        parts.append(meter)
    if meter or legend is not None or training:
        for drop in (d + bool(training) for d in (2, 1, 0, 0)):  # top-p, top-k, T, k
            extra = 4 + (len(busy) + 3 if busy else 0)  # " ", " · " and " · busy"
            extra += legend.cell_len + 3 if legend is not None else 0
            if not width or head.cell_len + len(" · ".join(parts)) + extra <= width:
                break
            del parts[drop]
    line = Text(" ").append_text(head).append(" · " + " · ".join(parts))
    if legend is not None:
        line.append(" · ").append_text(legend)
    if busy:
        line.append(f" · {busy}", style="bold")
    return line


def turn_text(turn: Turn) -> Text:
    """A finished turn for the transcript: the user's text, then the model's, styled apart."""
    text = Text()
    text.append(safe_text(turn.user), style="bold")
    text.append(safe_text(turn.model), style="cyan")
    if turn.ended:
        text.append(f" [{turn.ended}]", style="dim")
    return text


def help_view() -> Group:
    return Group(_pairs("commands", HELP), _pairs("keys", KEYS))


def _pairs(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left", show_edge=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, what in rows:
        table.add_row(key, what)
    return table


def show_view(info: ModelInfo | None, settings: Settings, tokens: int) -> Group:
    """/show: the settings, then the model."""
    rows = describe_settings(settings)
    if info is not None:
        rows += [
            ("model", info.path),
            ("architecture", f"{info.arch}, {info.parameters:,} parameters"),
            ("step", "int8 recurrent matrices (--exact for fp32)" if info.int8 else "fp32"),
            ("tokens", f"{info.level} level, vocabulary {info.vocab_size:,}"),
            ("context", f"{tokens:,} tokens"),
        ]
        rows += [(k, _short(v)) for k, v in info.training.items()]
    table = Table(show_header=False, show_edge=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in rows:
        table.add_row(Text(visible(str(key))), Text(safe_text(value)))
    return Group(table)


def stats_view(rows: list[tuple[str, str]]) -> Table:
    """/stats: the meter's counts (``Meter.rows``)."""
    table = Table(show_header=False, show_edge=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def message(text: str, style: str = "") -> Text:
    return Text(safe_text(text), style=style)


def counted(n: int, noun: str) -> str:
    """'1 turn', '3 turns'."""
    return f"{n} {noun}{'s' * (n != 1)}"


def to_ansi(
    renderable: RenderableType, width: int, soft_wrap: bool = False, one_line: bool = False
) -> str:
    """Render to a string of ANSI codes (colours dropped when NO_COLOR is set).

    one_line crops to the width with an ellipsis instead of wrapping (the status line)."""
    console = Console(
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        width=max(20, width),
        no_color=bool(os.environ.get("NO_COLOR")),
        legacy_windows=False,
        highlight=False,
    )
    crop = {"no_wrap": True, "overflow": "ellipsis"} if one_line else {}
    console.print(renderable, soft_wrap=soft_wrap, end="", **crop)
    return console.file.getvalue().rstrip("\n")
