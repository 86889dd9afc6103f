"""/fork /branches /switch /load: branches of the document (``branches.py``).

A switch hands the prefix caches over on the worker thread (``infer.branch_states``): the
branch left keeps its cache aside, the branch entered gets its own back, so its panel costs
no model step. Nothing here runs the model on the UI thread.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.table import Table
from rich.text import Text

from rnnrepl.errors import InputDataError, RnnreplError
from rnnrepl.repl.actions import Actions
from rnnrepl.repl.branches import BranchError, last_line
from rnnrepl.repl.panel import counted, message
from rnnrepl.text.decoding import decode, normalise_newlines
from rnnrepl.text.files import open_input
from rnnrepl.ui.render import safe_text, visible

LOAD_MAX = 4 << 20  # bytes /load reads at most: a document, not a corpus


def fork_command(repl: Actions, arg: str) -> None:
    """/fork [NAME]: keep the document as it is under the current name; go on as NAME."""
    session, store = repl.session, repl.session.branches
    old, text = store.current, session.doc.text
    try:
        name = store.fork(session, arg)
    except BranchError as exc:
        repl.emit(message(f"error: {exc}", "red"))
        return
    repl.call_model(lambda p: p.branches.keep(old, text), _ignore)
    size = len(session.doc.text)
    repl.emit(message(f"on {name}, forked from {old} at {size:,} characters", "dim"))


def switch_command(repl: Actions, arg: str) -> None:
    """/switch NAME: its document, turns (for /undo) and meter become the session's."""
    session, store = repl.session, repl.session.branches
    if not arg:
        repl.emit(message("usage: /switch NAME — /branches lists them", "red"))
        return
    if arg == store.current:
        repl.emit(message(f"already on {arg}", "dim"))
        return
    old, text = store.current, session.doc.text
    try:
        branch = store.switch(session, arg)
    except BranchError as exc:
        repl.emit(message(f"error: {exc}", "red"))
        return
    session.auto_space = None
    repl.call_model(lambda p: p.branches.switch(old, text, arg), _ignore)
    repl.emit(message(f"on {arg}: {counted(len(branch.doc.turns), 'turn')}", "dim"))
    repl.refresh(force=True)


def branches_command(repl: Actions, arg: str) -> None:
    """/branches: name, turns, last line; the current one marked with *."""
    store = repl.session.branches
    store.sync(repl.session)
    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in ("", "branch", "turns", "last line"):
        table.add_column(column, style="dim" if column == "turns" else None, no_wrap=True)
    for name, branch in store.items.items():
        mark = "*" if name == store.current else ""
        line = Text(safe_text(last_line(branch.doc.text), one_line=True))
        table.add_row(mark, Text(visible(name), style="bold"), str(len(branch.doc.turns)), line)
    repl.emit(table)


def load_command(repl: Actions, arg: str) -> None:
    """/load FILE: the file's text becomes the current branch's document, as one turn."""
    if not arg:
        repl.emit(message("usage: /load FILE", "red"))
        return
    path = Path(arg).expanduser()
    try:
        text = read_document(str(path))
    except RnnreplError as exc:
        repl.emit(message(f"error: {exc}", "red"))
        return
    doc = repl.session.doc
    doc.reset()
    doc.begin(text)
    branch = repl.session.branches.current
    repl.emit(message(f"read {len(text):,} characters from {path} into {branch}", "dim"))
    repl.refresh()


def read_document(path: str) -> str:
    """A text file's contents (UTF-8, or UTF-16/32 with a BOM; CRLF read as LF); a missing,
    unreadable, non-regular, binary or too large (> LOAD_MAX) file is an InputDataError."""
    with open_input(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > LOAD_MAX:
            raise InputDataError(
                f"is {size:,} bytes, more than /load reads ({LOAD_MAX:,})",
                path=path,
                hint="load a shorter document, or train on it: rnnrepl train FILE",
            )
        try:
            data = fh.read(LOAD_MAX + 1)
        except OSError as exc:
            raise InputDataError(f"cannot read: {exc.strerror or exc}", path=path) from None
    text, _ = decode(data, path, None)
    return normalise_newlines(text)[0]


def _ignore(result, error) -> None:
    """A cache hand-over that failed (no model yet) only costs the next panel some steps."""
