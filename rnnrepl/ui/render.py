"""Pure rich builders: data in, renderable out. Nothing here reads or trains.

Every string that comes from a model, a vocabulary or a file name is untrusted: it goes through
``textsafe`` (``visible`` / ``safe_text``) and into ``Text`` objects, never into markup, so it
cannot drive the terminal or rich.
"""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rnnrepl.ui.textsafe import safe_text, visible
from rnnrepl.units import level_figure


def topk_bars(items: list[tuple[str, float]], width: int = 30) -> Table:
    """The top-k next tokens as horizontal bars with percentages."""
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for token, p in items:
        filled = p * width
        full = int(filled)
        bar = "█" * full + ("▌" if filled - full >= 0.5 else "")
        table.add_row(
            Text(visible(token), style="bold"),
            Text(bar.ljust(width), style="cyan"),
            Text(f"{100 * p:5.1f}%"),
        )
    return table


def score_table(rows, k: int) -> Table:
    """Per token: the token, p(token), J_t = -log p, and the model's top-k at that step."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("t", justify="right")
    table.add_column("token")
    table.add_column("p", justify="right")
    table.add_column("J_t", justify="right")
    table.add_column(f"top {k} predicted (y_t)")
    for i, r in enumerate(rows, 1):
        top = Text()
        for j, (tok, p) in enumerate(r.topk):
            if j:
                top.append("  ")
            top.append(visible(tok), style="bold" if tok == r.token else "")
            top.append(f" {p:.2f}", style="dim")
        style = "green" if r.prob >= 0.5 else "yellow" if r.prob >= 0.1 else "red"
        table.add_row(
            str(i), Text(visible(r.token), style=style), f"{r.prob:.3f}", f"{r.loss:.3f}", top
        )
    return table


def metrics_line(loss: float, level: str) -> str:
    """Cross entropy with the figure users of that level expect: bpc for chars, ppl for words."""
    if not math.isfinite(loss):
        return "n/a"
    unit, value = level_figure(loss, level)
    if unit == "bpc":
        return f"{loss:.4f} nats ({value:.3f} bpc)"
    return f"{loss:.4f} nats (ppl {value:.2f})"


def per_character_line(summary) -> str:
    """Bits per character of the text (a ScoreSummary's), and why it is optimistic when some tokens were <unk>."""
    value = summary.bits_per_character
    figure = f"{value:.3f}" if math.isfinite(value) else "n/a"
    line = f"{summary.characters} characters, {figure} bits per character of text"
    if summary.unknown:
        many = "s" if summary.unknown != 1 else ""
        line += f" (optimistic: {summary.unknown} unknown token{many} scored as <unk>)"
    return line


def score_summary_line(summary, level: str) -> str:
    """`score`'s last line, in the CLI and the REPL: tokens, mean J, perplexity, bits per
    character of the text."""
    ppl = f", perplexity {summary.perplexity:.3f}" if math.isfinite(summary.mean_loss) else ""
    mean = metrics_line(summary.mean_loss, level)
    return f"{summary.tokens} tokens, mean J = {mean}{ppl}; {per_character_line(summary)}"


def summary_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(
        title=title, show_header=False, title_justify="left", show_edge=False, pad_edge=False
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(Text(safe_text(key, one_line=True)), Text(safe_text(value, one_line=True)))
    return table


def sample_panel(step: int, text: str) -> Group:
    head = Text(f"sample at step {step}:", style="dim")
    return Group(head, Text(safe_text(text.strip("\n")), style="italic"))


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def progress_line(ev, level: str) -> Text:
    """One status line for training: step/epoch, losses, ppl/bpc, tokens/s, elapsed and ETA."""
    total = f"/{ev.total_steps}" if ev.total_steps else ""
    parts = [f"step {ev.step}{total}", f"epoch {ev.epoch + 1}", f"loss {ev.loss:.3f}"]
    if math.isfinite(ev.best_val):
        name, value = level_figure(ev.best_val, level)
        unit = f"{value:.3f} bpc" if name == "bpc" else f"ppl {value:.1f}"
        parts.append(f"val {ev.best_val:.3f} ({unit})")
    parts += [
        f"{ev.tokens_per_s:,.0f} tok/s",
        f"{duration(ev.elapsed)} elapsed",
        f"ETA {duration(ev.eta)}",
    ]
    return Text("  ".join(parts))
