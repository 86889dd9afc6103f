"""/alts [N] and /keep I: N continuations of the document side by side; keep one.

The worker samples them one after another with the session's sampling settings (alternative i
with seed + i - 1 when a seed is set: the first is what Enter would write, and a seeded run
repeats); Ctrl-C stops it and keeps what was sampled. They stay on offer while the document
is unchanged: /keep I appends one as a generated turn, as Enter's continuation would be;
typing on (a new turn, /undo, /switch, /load) discards them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from rnnrepl.config import SampleConfig
from rnnrepl.repl.actions import Actions
from rnnrepl.repl.branches import Alternative, Offer
from rnnrepl.repl.colors import emit_turn
from rnnrepl.repl.panel import message, turn_text
from rnnrepl.repl.state import Session
from rnnrepl.ui.render import safe_text

DEFAULT, LOWEST, HIGHEST = 3, 2, 6
COLUMN_MIN = 24  # cells per column: N side by side from N * COLUMN_MIN cells wide, else stacked
SEEDS = 2**64  # torch takes seeds below this


def alts_command(repl: Actions, arg: str) -> None:
    """/alts [N]: sample N continuations (2..6, default 3) on the worker thread."""
    session, store = repl.session, repl.session.branches
    n = _count(arg)
    if n is None:
        usage = f"usage: /alts [N] — N from {LOWEST} to {HIGHEST} (default {DEFAULT})"
        repl.emit(message(usage, "red"))
        return
    if session.info is None:
        repl.emit(message("the model is still loading — try again in a moment", "red"))
        return
    if store.sampling:
        repl.emit(message("already sampling alternatives — Ctrl-C stops them", "red"))
        return
    base, branch, cfg = session.doc.text, store.current, session.settings.sample
    store.sampling, store.offer = n, None

    def done(alts: list[Alternative] | None, error: BaseException | None) -> None:
        store.sampling = 0
        if error is not None:
            repl.emit(message(f"error: {error}", "red"))
        elif store.current != branch or session.doc.text != base:
            repl.emit(message("alternatives dropped: the document changed meanwhile", "dim"))
        else:
            store.offer = Offer(base, branch, alts)
            repl.emit(AltsView(alts))

    repl.call_model_stoppable(lambda p, stopped: sample(p, base, cfg, n, stopped), done)


def _count(arg: str) -> int | None:
    if not arg:
        return DEFAULT
    n = _number(arg)
    return n if LOWEST <= n <= HIGHEST else None


def _number(arg: str) -> int:
    """A count typed in ASCII digits ("²" is a digit to str.isdigit, not to int); else 0."""
    return int(arg) if arg.isascii() and arg.isdigit() else 0


def sample(
    predictor, text: str, cfg: SampleConfig, n: int, stopped: Callable[[], bool]
) -> list[Alternative]:
    """`n` continuations of `text` (worker thread); stops early once stopped() is true. Each
    starts from the prefix cache as it was, which is left as it was: the next keystroke's
    panel costs what it would have cost without them."""
    alts: list[Alternative] = []
    before = predictor.cache.snapshot()
    try:
        for i in range(n):
            predictor.cache.restore(before)
            alts.append(_one(predictor, text, _seeded(cfg, i), stopped))
            if alts[-1].ended:
                break
    finally:
        predictor.cache.restore(before)
    return alts


def _seeded(cfg: SampleConfig, i: int) -> SampleConfig:
    """The settings of alternative i + 1: seed + i (kept below 2**64), or none."""
    if cfg.seed is None:
        return cfg
    return cfg.replace(seed=(cfg.seed + i) - SEEDS * (cfg.seed + i >= SEEDS))


def _one(predictor, text: str, cfg: SampleConfig, stopped: Callable[[], bool]) -> Alternative:
    pieces: list[tuple[str, bool, int, float]] = []
    for step in predictor.stream(text, cfg):
        if stopped():
            return Alternative(tuple(pieces), "stopped")
        pieces.append((step.text, step.token_id == 0, step.rank, step.prob))
    return Alternative(tuple(pieces))


def keep_command(repl: Actions, arg: str) -> None:
    """/keep I: append alternative I to the document as a generated turn."""
    session, store = repl.session, repl.session.branches
    offer = store.offer
    if offer is None or offer.branch != store.current or offer.base != session.doc.text:
        repl.emit(message("no alternatives on offer — /alts N samples some", "red"))
        return
    i = _number(arg)
    if not 1 <= i <= len(offer.alts):
        repl.emit(message(f"usage: /keep I — I from 1 to {len(offer.alts)}", "red"))
        return
    alt, store.offer = offer.alts[i - 1], None
    turn = session.doc.begin("")
    for piece, unknown, rank, prob in alt.pieces:
        session.doc.add(piece, unknown, (rank, prob))
    turn.ended = alt.ended
    emit_turn(repl, turn, turn_text(turn))  # coloured when /color is on, as after Enter
    repl.refresh()


def sampling_note(session: Session) -> str:
    """The status line's busy note while alternatives are sampled ('' otherwise)."""
    n = session.branches.sampling
    return f"sampling {n} alts… Ctrl-C stops" if n else ""


class AltsView:
    """Numbered alternatives: side by side where the console is at least COLUMN_MIN cells
    per alternative wide, else one under another (decided when drawn, at the real width)."""

    def __init__(self, alts: list[Alternative]) -> None:
        self.alts = alts

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        texts = list(self._texts())
        if len(texts) > 1 and options.max_width >= len(texts) * COLUMN_MIN:
            table = Table(expand=True, show_edge=False, pad_edge=False, show_lines=False)
            for i in range(len(texts)):
                table.add_column(str(i + 1), ratio=1, overflow="fold", header_style="bold")
            table.add_row(*texts)
        else:
            table = Table.grid(padding=(0, 1, 1, 0))
            table.add_column(style="bold", no_wrap=True)
            table.add_column(overflow="fold")
            for i, text in enumerate(texts, 1):
                table.add_row(str(i), text)
        yield table
        yield Text("/keep I appends one; typing on discards them", style="dim")

    def _texts(self) -> Iterator[Any]:
        for alt in self.alts:
            text = Text(safe_text(alt.text) or "(nothing)", style="cyan")
            if alt.ended:
                text.append(f" [{alt.ended}]", style="dim")
            yield text
