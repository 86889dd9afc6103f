"""Slash commands, ollama's style: /help /set /show /stats /reset /undo /score /color /model
/save /quit; branches: /fork /branches /switch /load (``branch_commands.py``), /alts /keep
(``alts.py``); /learn /forget /save-model (``learn.py``).

Each handler changes the session and prints through ``repl.emit`` (``actions.Actions``); the ones
that need the model (/score, /model) hand a job to the worker thread and print when it is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document as PtDocument
from rich.console import Group
from rich.text import Text

from rnnrepl.atomic import atomic_write_bytes
from rnnrepl.errors import ResourceError
from rnnrepl.repl import pair
from rnnrepl.repl.actions import Actions
from rnnrepl.repl.alts import alts_command, keep_command
from rnnrepl.repl.branch_commands import (
    branches_command,
    fork_command,
    load_command,
    switch_command,
)
from rnnrepl.repl.colors import color_command
from rnnrepl.repl.learn import forget_command, learn_command, save_model_command
from rnnrepl.repl.meter import Meter
from rnnrepl.repl.neuron import neuron_command
from rnnrepl.repl.panel import help_view, message, show_view, stats_view
from rnnrepl.repl.state import SETTING_NAMES, Session, SettingError, apply_setting, is_command

SCORE_K_MAX = 5  # /score shows the panel's k predictions per token, at most this many (width)
COMMANDS = {
    "help": "list commands and keys",
    "set": "change a setting: /set NAME VALUE",
    "show": "settings and model information",
    "stats": "the meter's counts",
    "reset": "clear the document and the meter",
    "undo": "drop the last turn",
    "score": "per-token probabilities of TEXT after the document",
    "color": "colour the document by surprisal: rank, prob or off",
    "neuron": "colour the document by a hidden unit: /neuron L:I or off",
    "learn": "learn from what you type: on or off (alone: what it learned)",
    "forget": "undo all learning: the weights as loaded",
    "save-model": "write the adapted model: NAME or PATH [--force]",
    "model": "switch to another model",
    "flip": "chat A B: exchange the two models",
    "train": "train FILE... in the background, live; /train stop",
    "save": "write the transcript to FILE",
    "fork": "keep the document as a branch and go on as NAME",
    "branches": "list the branches",
    "switch": "go to branch NAME",
    "load": "read FILE into the current branch",
    "alts": "sample N continuations side by side",
    "keep": "append alternative I to the document",
    "quit": "leave",
}


def run_command(repl: Actions, line: str) -> None:
    """Dispatch `/name args`; unknown commands and bad arguments print one red line."""
    name, _, arg = line[1:].partition(" ")
    handler = HANDLERS.get(name.strip().lower())
    if handler is None:
        repl.emit(message(f"unknown command /{name} — /help lists the commands", "red"))
        return
    handler(repl, arg.strip())


def _help(repl: Actions, arg: str) -> None:
    repl.emit(help_view())


def _set(repl: Actions, arg: str) -> None:
    name, _, value = arg.partition(" ")
    if not name:
        _show(repl, "")
        return
    value = _unquote(value.strip())
    try:
        repl.session.settings = apply_setting(repl.session.settings, name, value)
    except SettingError as exc:
        repl.emit(message(f"error: {exc}", "red"))
        return
    repl.emit(message(f"{name} = {value}", "dim"))
    repl.refresh(force=True)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _show(repl: Actions, arg: str) -> None:
    session = repl.session
    tokens = session.view.tokens if session.view else 0
    repl.emit(show_view(session.info, session.settings, tokens))
    if repl.pair is not None and repl.pair.info is not None:  # chat A B: the panel on the right
        repl.emit(pair.pair_show(repl.pair.info))


def _stats(repl: Actions, arg: str) -> None:
    repl.emit(stats_view(repl.session.meter.rows()))


def _reset(repl: Actions, arg: str) -> None:
    repl.session.doc.reset()
    repl.session.meter = Meter()
    repl.emit(message("document and meter cleared", "dim"))
    repl.refresh()


def _undo(repl: Actions, arg: str) -> None:
    turn = repl.session.doc.undo()
    if turn is None:
        repl.emit(message("nothing to undo", "dim"))
        return
    n = len(turn.user) + len(turn.model)
    repl.emit(message(f"dropped the last turn ({n} characters)", "dim"))
    repl.refresh()


def _score(repl: Actions, arg: str) -> None:
    if not arg:
        repl.emit(message("usage: /score TEXT", "red"))
        return
    session = repl.session
    context = session.doc.text
    k = min(session.settings.k, SCORE_K_MAX)

    def done(result, error) -> None:
        if error is not None:
            repl.emit(message(f"error: {error}", "red"))
            return
        repl.emit(score_view(result, session.info.level if session.info else "char", k))

    repl.call_model(lambda p: p.score(arg, k=k, context=context), done)


def score_view(result, level: str, k: int) -> Group:
    from rnnrepl.ui.render import score_summary_line, score_table

    rows, summary = result
    return Group(score_table(rows, k), Text(score_summary_line(summary, level)))


def _model(repl: Actions, arg: str) -> None:
    if not arg:
        repl.emit(message("usage: /model PATH", "red"))
        return
    repl.emit(message(f"loading {arg}…", "dim"))
    repl.switch_model(str(Path(arg).expanduser()))


def _save(repl: Actions, arg: str) -> None:
    """Write the transcript atomically: a full disk leaves the old file whole, never cut."""
    if not arg:
        repl.emit(message("usage: /save FILE", "red"))
        return
    path = Path(arg).expanduser()
    text = repl.session.doc.text
    try:
        if not path.parent.is_dir():
            raise ResourceError(
                f"cannot write {path.name}: no directory {path.parent}",
                hint="create it or choose another path",
            )
        atomic_write_bytes(path, text.encode("utf-8", "replace"))  # replace: lone surrogates
    except ResourceError as exc:
        repl.emit(message(f"error: {exc}", "red"))
        return
    repl.emit(message(f"wrote {len(text):,} characters to {path}", "dim"))


def _quit(repl: Actions, arg: str) -> None:
    repl.quit()


HANDLERS: dict[str, Callable[[Actions, str], None]] = {
    "help": _help,
    "set": _set,
    "show": _show,
    "stats": _stats,
    "reset": _reset,
    "undo": _undo,
    "score": _score,
    "color": color_command,
    "neuron": neuron_command,
    "learn": learn_command,
    "forget": forget_command,
    "save-model": save_model_command,
    "model": _model,
    "flip": pair.flip_command,
    "train": lambda repl, arg: repl.training.command(arg),
    "save": _save,
    "fork": fork_command,
    "branches": branches_command,
    "switch": switch_command,
    "load": load_command,
    "alts": alts_command,
    "keep": keep_command,
    "quit": _quit,
}


class SlashCompleter(Completer):
    """Command names, then setting names after /set, branch names after /switch, then paths
    after /model, /save and /load."""

    def __init__(self, session: Session | None = None) -> None:
        self.paths = PathCompleter(expanduser=True)
        self.session = session

    def get_completions(self, document: PtDocument, event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not is_command(text) or "\n" in text:
            return
        command, space, rest = text.partition(" ")
        if not space:
            for name, what in COMMANDS.items():
                if f"/{name}".startswith(command):
                    yield Completion(f"/{name}", -len(command), display_meta=what)
        elif command == "/set" and " " not in rest:
            for name in SETTING_NAMES:
                if name.startswith(rest):
                    yield Completion(name, -len(rest))
        elif command == "/switch" and self.session is not None:
            for name in self.session.branches.names():
                if name.startswith(rest):
                    yield Completion(name, -len(rest))
        elif command in ("/model", "/save", "/load", "/save-model", "/train"):
            yield from self.paths.get_completions(PtDocument(rest), event)
