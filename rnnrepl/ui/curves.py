"""Loss curves as plain text: a character plot of train and validation loss against steps (for
`info`) and a one-line sparkline of validation loss (for the training display).

Data in, renderable out. The plot reads the same without colour: validation points are `●`,
train points `·`; styles only add colour. Losses come in nats and are shown as users of the level
read them: bits per character (char) or perplexity (word, BPE), whose axis is then logarithmic
(it is linear in nats).
"""

from __future__ import annotations

import math

from rich.text import Text

from rnnrepl.units import level_figure

VAL_MARK, TRAIN_MARK = "●", "·"
BARS = "▁▂▃▄▅▆▇█"


def figure(nats: float, level: str) -> str:
    """A loss as its level's figure: `2.345 bpc` or `ppl 123.4`."""
    if not math.isfinite(nats):
        return "n/a"
    name, value = level_figure(nats, level)
    return f"{value:.3f} bpc" if name == "bpc" else f"ppl {_ppl(value)}"


def _ppl(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"


def loss_curve(
    points: list[tuple[int, float, float]], level: str, width: int = 60, height: int = 10
) -> Text:
    """(step, train, val) points as a plot `height` rows high and `width` columns wide, with a
    title line above and two axis lines and a last/best line below."""
    finite = [v for _, *vs in points for v in vs if math.isfinite(v)]
    if not points or not finite:
        return Text("no finite losses to plot")
    lo, hi = min(finite), max(finite)
    grid = [[" "] * width for _ in range(height)]
    for series, mark in ((1, TRAIN_MARK), (2, VAL_MARK)):  # validation drawn over train
        for col, value in _columns(points, series, width).items():
            row = round((hi - value) / (hi - lo) * (height - 1)) if hi > lo else height // 2
            grid[row][col] = mark
    labels = {r: _axis_label(hi - (hi - lo) * r / (height - 1), level) for r in _ticks(height)}
    pad = max(len(s) for s in labels.values())
    out = Text(_title(level) + "  ")
    out.append(f"{VAL_MARK} validation", style="bold yellow").append("  ")
    out.append(f"{TRAIN_MARK} train", style="cyan").append("\n")
    for r, cells in enumerate(grid):
        out.append(f"{labels.get(r, ''):>{pad}} {'┤' if r in labels else '│'}", style="dim")
        for cell in cells:
            out.append(cell, style="bold yellow" if cell == VAL_MARK else "cyan")
        out.append("\n")
    first, last = f"{points[0][0]:,}", f"{points[-1][0]:,} steps"
    out.append(" " * pad + " └" + "─" * width + "\n", style="dim")
    out.append(" " * (pad + 2) + first + last.rjust(max(1, width - len(first))) + "\n")
    out.append(_last_and_best(points, level))
    return out


def _columns(points, series: int, width: int) -> dict[int, float]:
    """The mean finite value of one series in each column the points fall into."""
    s0, s1 = points[0][0], points[-1][0]
    sums: dict[int, list[float]] = {}
    for p in points:
        if math.isfinite(p[series]):
            col = round((p[0] - s0) / (s1 - s0) * (width - 1)) if s1 > s0 else 0
            sums.setdefault(col, []).append(p[series])
    return {col: sum(vs) / len(vs) for col, vs in sums.items()}


def _ticks(height: int) -> tuple[int, ...]:
    return (0, (height - 1) // 2, height - 1) if height >= 3 else (0, height - 1)


def _axis_label(nats: float, level: str) -> str:
    name, value = level_figure(nats, level)
    return f"{value:.3f}" if name == "bpc" else _ppl(value)


def _title(level: str) -> str:
    name, _ = level_figure(0.0, level)
    return "bits per character" if name == "bpc" else "perplexity (log scale)"


def _last_and_best(points, level: str) -> str:
    vals = [(step, val) for step, _, val in points if math.isfinite(val)]
    if not vals:
        return "no finite validation loss"
    step, val = vals[-1]
    best_step, best = min(vals, key=lambda sv: sv[1])
    return (
        f"last validation {figure(val, level)} at step {step:,}; "
        f"best {figure(best, level)} at step {best_step:,}"
    )


def sparkline(values: list[float], level: str, width: int = 24) -> Text:
    """The last `width` validation losses as one line of bars (taller: higher loss), and the last."""
    shown = [v for v in values if math.isfinite(v)][-width:]
    if not shown:
        return Text("")
    lo, hi = min(shown), max(shown)
    top = len(BARS) - 1
    bars = "".join(BARS[round((v - lo) / (hi - lo) * top) if hi > lo else top // 2] for v in shown)
    out = Text("val ", style="dim")
    return out.append(bars, style="yellow").append(f" {figure(shown[-1], level)}")
