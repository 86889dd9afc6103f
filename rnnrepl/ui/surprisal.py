"""Surprisal colours as rich Text: a text with each token coloured by its bucket (GLTR's
green, yellow, red, magenta from most to least expected) and the one-line legend.

Marks are plain data (``infer.surprisal.Mark``: start, end, bucket); this module only needs
their fields, so it does not import infer. The text is untrusted: it goes through
``safe_text`` piece by piece into Text, never into markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text

from rnnrepl.ui.textsafe import safe_text

COLORS = ("green", "yellow", "red", "magenta")  # bucket 0 (most expected) .. 3
# A hidden unit's activation (/neuron), buckets 4.. : backgrounds from blue (-1) through light
# grey (0) to red (+1), the "coolwarm" scale, under black text.
SHADES = ("#3b4cc0", "#7b9ff9", "#c0d4f5", "#dddddd", "#f2cbb7", "#ee8468", "#b40426")


def style_of(bucket: int) -> str:
    """The rich style of a mark's bucket: a surprisal colour or an activation shade."""
    if bucket < len(COLORS):
        return COLORS[bucket]
    return f"black on {SHADES[bucket - len(COLORS)]}"


def colored_text(text: str, marks: Iterable, base: str = "") -> Text:
    """`text` with the characters of each mark in its bucket's colour; the rest (spaces,
    tokens not scored) in `base`."""
    runs: list[tuple[str, str]] = []  # (style, text): neighbours of one style joined

    def add(piece: str, style: str) -> None:
        if runs and runs[-1][0] == style:
            runs[-1] = (style, runs[-1][1] + piece)
        elif piece:
            runs.append((style, piece))

    pos = 0
    for m in marks:
        add(text[pos : m.start], base)
        add(text[max(pos, m.start) : m.end], f"{base} {style_of(m.bucket)}".strip())
        pos = max(pos, m.end)
    add(text[pos:], base)
    out = Text()
    for style, piece in runs:
        out.append(safe_text(piece), style=style)
    return out


def legend(kind: str, labels: Sequence[str], counts: Sequence[int] | None = None) -> Text:
    """'colour by rank: green top 1 · yellow top 3 · ...', each entry in its colour; with
    `counts`, how many tokens fell in each bucket."""
    line = Text(f"colour by {kind}: ")
    for i, (color, label) in enumerate(zip(COLORS, labels, strict=True)):
        if i:
            line.append(" · ")
        entry = f"{color} {label}" + (f" ({counts[i]})" if counts is not None else "")
        line.append(entry, style=color)
    return line


def bucket_counts(marks: Iterable) -> list[int]:
    counts = [0, 0, 0, 0]
    for m in marks:
        counts[m.bucket] += 1
    return counts
