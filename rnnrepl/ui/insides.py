"""Rich builders for a model's insides (`rnnrepl explain`, `rnnrepl neurons`): rows of shaded
cells for activations, or numbers where the console shows no colour; bars for y_t.

A value's cell: white at 0, deepening to red at +1 and to blue at -1 (a gate in [0, 1] is shown
as 2g - 1, so a closed gate is blue and an open one red; an LSTM cell state as tanh(c)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.console import Group
from rich.text import Text

from rnnrepl.ui.textsafe import safe_text, visible

BAR_WIDTH = 20


def cell_style(value: float) -> str:
    """The background for an activation in [-1, 1]: white -> red (+) or blue (-)."""
    v = max(-1.0, min(1.0, float(value)))
    fade = int(round(255 * (1 - abs(v))))
    rgb = (255, fade, fade) if v >= 0 else (fade, fade, 255)
    return f"on rgb({rgb[0]},{rgb[1]},{rgb[2]})"


def unit_row(label: str, values: Sequence[float], color: bool, shade=None) -> Text:
    """One layer's units: two shaded columns each, or signed numbers without colour.
    `shade` maps a value to [-1, 1] for the colour (default: as is)."""
    row = Text()
    row.append(f"  {label:<4}", style="dim")
    for v in values:
        if color:
            row.append("  ", style=cell_style(shade(v) if shade else v))
        else:
            row.append(f"{v:+.2f} ")
    return row


def prob_bars(items: list[tuple[str, float]], width: int = BAR_WIDTH) -> Text:
    """y_t's top tokens on one line: token, bar, probability."""
    line = Text()
    line.append("  y_t ", style="dim")
    for token, p in items:
        filled = p * width
        bar = "█" * int(filled) + ("▌" if filled - int(filled) >= 0.5 else "")
        line.append(visible(token), style="bold")
        line.append(" ")
        line.append(bar, style="cyan")
        line.append(f" {p:.2f}   ")
    return line


def step_header(t: int, fed: str, how: str, target: str, p: float, loss: float) -> Text:
    head = Text()
    head.append(f"t={t:<3} x_t ", style="bold")
    head.append(visible(fed), style="bold yellow")
    head.append(f" ({how})  next ", style="dim")
    head.append(visible(target), style="bold")
    head.append(f"  p {p:.3f}  J_t {loss:.3f}")
    return head


def units_line(layer: int, units: np.ndarray, total: int) -> Text:
    """Which units the rows show, when they are not all of them."""
    shown = " ".join(str(int(u)) for u in units)
    return Text(f"layer {layer}: the {len(units)} most active of {total} units: {shown}", "dim")


def gate_shade(g: float) -> float:
    return 2.0 * g - 1.0


def activation_text(text: str, values: Sequence[float], color: bool) -> Group | Text:
    """`neurons --unit`: the text with each character's background shaded by the unit's
    activation; without colour, each line followed by a line of digits 0-9 (0 = -1, 9 = +1)."""
    if color:
        out = Text()
        for ch, v in zip(text, values, strict=True):
            out.append(ch if ch == "\n" else safe_text(ch, one_line=True), style=cell_style(v))
        return out
    lines, pos = [], 0
    for line in text.split("\n"):
        digits = "".join(_digit(v) for v in values[pos : pos + len(line)])
        lines += [Text(safe_text(line, one_line=True)), Text(digits, style="dim")]
        pos += len(line) + 1
    return Group(*lines)


def _digit(value: float) -> str:
    v = max(-1.0, min(1.0, float(value)))
    return str(min(9, int((v + 1) * 5)))
