"""Small helpers shared by the command modules: consoles, progress bars, prompt files."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from rnnrepl.ui.textsafe import safe_text

ProgressFn = Callable[[int, int], None]


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


@contextlib.contextmanager
def token_progress(verb: str, unit: str = "tokens") -> Iterator[Callable[[str], ProgressFn | None]]:
    """Yields task(PATH) -> on_progress(done, total) drawing a bar "VERB FILE_NAME" on stderr,
    counting `unit`.

    Only on a terminal (the bar is erased when done); on a pipe task() returns None and
    nothing at all is written."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    err = console(stderr=True)
    if not err.is_terminal or err.is_dumb_terminal:
        yield lambda name: None
        return
    columns = (
        TextColumn("{task.description}", markup=False),  # file names are not rich markup
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:

        def task(name: str) -> ProgressFn:
            tid = bar.add_task(f"{verb} {safe_text(Path(name).name, one_line=True)}", total=None)
            return lambda done, total: bar.update(tid, completed=done, total=total)

        yield task


def read_prompt_file(path: str) -> str:
    from rnnrepl.text.files import read_text

    text, _ = read_text(path)
    return text
