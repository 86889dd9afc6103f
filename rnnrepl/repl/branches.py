"""Branches of the REPL's document (/fork, /branches, /switch) and the sampled alternatives on
offer (/alts, /keep): plain data, changed on the UI thread, no UI and no model.

A branch is a document (its text and its turns, which /undo drops) with its own meter. The
session works on the current branch's objects (``Session.doc``, ``Session.meter``); the store
keeps the others, and takes the current ones back from the session whenever it switches (a
command may have replaced them: /reset makes a new meter).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

FIRST = "main"  # the branch a session starts on
NAME_MAX = 32


class BranchError(ValueError):
    """A branch name that cannot be used; the message says why and what to do."""


@dataclass
class Branch:
    name: str
    doc: Any  # state.Document (not imported: state imports this module)
    meter: Any  # meter.Meter


@dataclass(frozen=True)
class Alternative:
    """One sampled continuation: the pieces as a stream posts them (text, <unk>, rank, p)."""

    pieces: tuple[tuple[str, bool, int, float], ...]
    ended: str = ""  # "", "stopped" or an error

    @property
    def text(self) -> str:
        return "".join(piece[0] for piece in self.pieces)


@dataclass
class Offer:
    """Alternatives sampled after `base`, the text of branch `branch` when /alts ran."""

    base: str
    branch: str
    alts: list[Alternative]


@dataclass
class Branches:
    """Every branch of the session by name (in the order made), the current one's name, and
    the alternatives on offer."""

    current: str = FIRST
    items: dict[str, Branch] = field(default_factory=dict)
    offer: Offer | None = None
    sampling: int = 0  # alternatives being sampled now (0: none; Ctrl-C stops them)

    def sync(self, session: Any) -> Branch:
        """The current branch, holding the session's document and meter."""
        branch = Branch(self.current, session.doc, session.meter)
        self.items[self.current] = branch
        return branch

    def fork(self, session: Any, name: str = "") -> str:
        """Keep the document as it is now under the current name and go on, on an identical
        copy, as branch `name` (default: the first free of b1, b2, ...)."""
        name = name or self._free_name()
        check_name(name, self.items.keys() | {self.current})
        kept = self.sync(session)
        kept.doc, kept.meter = copy.deepcopy(session.doc), copy.deepcopy(session.meter)
        self.current = name
        self.sync(session)
        return name

    def switch(self, session: Any, name: str) -> Branch:
        """Make branch `name` current: its document and meter become the session's."""
        self.sync(session)
        if name not in self.items:
            known = ", ".join(self.items)
            raise BranchError(f"no branch {name!r} — one of: {known} (/fork NAME makes one)")
        branch = self.items[name]
        self.current = name
        session.doc, session.meter = branch.doc, branch.meter
        return branch

    def names(self) -> list[str]:
        return list(self.items) or [self.current]

    def _free_name(self) -> str:
        i = 1
        while f"b{i}" in self.items or f"b{i}" == self.current:
            i += 1
        return f"b{i}"


def check_name(name: str, taken) -> None:
    if name in taken:
        raise BranchError(f"a branch named {name!r} exists — /switch {name} goes to it")
    if len(name) > NAME_MAX or not name.isprintable() or any(c.isspace() for c in name):
        raise BranchError(f"{name!r} is no branch name — use up to {NAME_MAX} letters or digits")


def last_line(text: str, width: int = 60) -> str:
    """The document's last non-empty line, its end kept if it is long."""
    line = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "")
    return line if len(line) <= width else "…" + line[-(width - 1) :]
