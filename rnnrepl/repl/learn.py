"""/learn on|off, /forget, /save-model NAME [--force]: the model learns as you type
(``infer.adapt`` holds the recipe).

The adapter lives on the model thread: every command reaches it through a worker job, and the
learning itself runs as background slices (``Worker.background``) that wait for every panel
request, so typing never waits for more than one slice. After a slice that changed the weights,
the Predictor rebuilds everything derived from them and the panel is recomputed.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

from rich.text import Text

from rnnrepl.errors import is_out_of_memory
from rnnrepl.repl.actions import Actions
from rnnrepl.repl.panel import counted, message
from rnnrepl.repl.state import Turn

USAGE = "usage: /learn on|off (alone: what it has learned)"


class Learning:
    """The switch (UI thread) and the adapter (model thread only)."""

    def __init__(self) -> None:
        self.on = False
        self.adapter = None  # infer.adapt.Adapter, made by /learn on on the model thread
        self.pumping = False  # a slice of learning is queued or running


def learn_command(repl: Actions, arg: str) -> None:
    """/learn on|off; /learn alone shows what it has learned."""
    word = arg.lower()
    if word in ("on", "off", ""):
        {"on": _start, "off": _stop, "": _show}[word](repl)
    else:
        repl.emit(message(USAGE, "red"))


def _start(repl: Actions) -> None:
    learning = repl.learning

    def done(adapter, error) -> None:
        if error is not None:
            repl.emit(message(f"error: {error}", "red"))
            return
        learning.on = True
        repl.emit(message("learning on: the model learns from each turn you type", "dim"))

    repl.call_model(lambda predictor: _adapter_for(learning, predictor), done)


def _stop(repl: Actions) -> None:
    repl.learning.on = False
    adapter = repl.learning.adapter
    repl.call_model(lambda p: adapter and adapter.drop(), lambda *_: None)
    repl.emit(message("learning off; the model keeps what it learned (/forget undoes it)", "dim"))


def _show(repl: Actions) -> None:
    learning = repl.learning

    def done(stats, error) -> None:
        repl.emit(Text(describe(learning.on, stats)))

    repl.call_model(lambda p: learning.adapter and learning.adapter.stats, done)


def describe(on: bool, stats) -> str:
    """'learning on: 3 turns, 42 tokens learned from, 6 steps; loss on the latest text 2.51
    -> 1.23 nats/token'."""
    state = "on" if on else "off"
    if stats is None or not (stats.turns or stats.skipped):
        return f"learning {state}: nothing learned yet (/learn on: learn from what you type)"
    line = f"learning {state}: {counted(stats.turns, 'turn')}, "
    line += f"{counted(stats.tokens, 'token')} learned from, {counted(stats.steps, 'step')}"
    line += f" ({stats.skipped} skipped: not finite)" if stats.skipped else ""
    if not math.isnan(stats.before):
        line += f"; loss on the latest text {stats.before:.3f} → {stats.after:.3f} nats/token"
    return line


def _adapter(learning: Learning, predictor):
    """The adapter, if it learns on the predictor's model (not one loaded before it)."""
    adapter = learning.adapter
    return adapter if adapter is not None and adapter.model is predictor.model else None


def _adapter_for(learning: Learning, predictor):
    """The adapter of the predictor's model, made anew the first time and after another model
    was loaded (what the previous one learned went with it); refused if it cannot learn."""
    from rnnrepl.errors import UsageError
    from rnnrepl.infer.adapt import Adapter, trainable

    adapter = _adapter(learning, predictor)
    if adapter is None:
        why = trainable(predictor.model)
        if why:
            raise UsageError(f"this model cannot learn in place: {why}")
        adapter = learning.adapter = Adapter(predictor.model)
    return adapter


# ---- learning after each turn -------------------------------------------------------------
def after_turn(repl: Actions, turn: Turn) -> None:
    """A finished turn: queue a round of learning on what the user typed (when /learn on)."""
    learning = repl.learning
    if not learning.on or not turn.user:
        return
    text = repl.session.doc.text
    user = [(t.start, t.start + len(t.user)) for t in repl.session.doc.turns if t.user]

    def add(predictor) -> bool:
        from rnnrepl.infer.adapt import learning_window

        adapter = _adapter_for(learning, predictor)  # another model since: learns anew
        size = adapter.cfg.window
        window = learning_window(predictor.tok, predictor.start_id, text, user, size)
        if window is not None:
            adapter.add(window)
        return window is not None

    repl.call_model(add, lambda added, error: _queued(repl, added, error))


def _queued(repl: Actions, added: bool, error: BaseException | None) -> None:
    if error is not None:
        _failed(repl, error)
    elif added:
        _pump(repl)


def _pump(repl: Actions) -> None:
    """Queue the next slice, unless one is queued already (one chain of slices at a time)."""
    learning = repl.learning
    if learning.on and not learning.pumping:
        learning.pumping = True
        repl.background_model(_slice(learning), lambda out, error: _sliced(repl, out, error))


def _sliced(repl: Actions, out, error: BaseException | None) -> None:
    """A slice has ended (UI thread): report it, show the new weights' panel, go on."""
    repl.learning.pumping = False
    if error is not None:
        _failed(repl, error)
        return
    if out.skipped:
        repl.emit(message(f"learning step skipped: {out.skipped}", "red"))
    if out.changed:
        repl.refresh(force=True)
    if out.finished is not None:
        repl.emit(message(learned_line(out.finished), "dim"))
    if out.more:
        _pump(repl)


def learned_line(stats) -> str:
    """'learned from 12 tokens: loss 2.510 → 1.232 nats/token on the latest text'."""
    return (
        f"learned from {stats.last} tokens: loss {stats.before:.3f} → {stats.after:.3f}"
        " nats/token on the latest text"
    )


def _slice(learning: Learning):
    def work(predictor):
        from rnnrepl.infer.adapt import Outcome

        adapter = _adapter(learning, predictor)
        if adapter is None:  # another model since: its work is void
            return Outcome()
        out = adapter.work()
        if out.changed:
            predictor.weights_changed()
        return out

    return work


def _failed(repl: Actions, error: BaseException) -> None:
    """One red line; learning off; the queued work dropped (the session goes on)."""
    learning = repl.learning
    learning.on = False
    adapter = learning.adapter
    repl.call_model(lambda p: adapter and adapter.drop(), lambda *_: None)
    what = "out of memory while learning" if is_out_of_memory(error) else f"{error}"
    repl.emit(message(f"error: {what} — learning is off (/learn on to retry)", "red"))


# ---- /forget and /save-model ----------------------------------------------------------------
def forget_command(repl: Actions, arg: str) -> None:
    """/forget: the weights from before /learn on, bitwise (learning stays on if it was)."""
    learning = repl.learning

    def forget(predictor) -> bool:
        adapter = _adapter(learning, predictor)
        if adapter is None or not adapter.changed:
            return False
        adapter.forget()
        predictor.weights_changed()
        return True

    def done(forgot, error) -> None:
        if error is not None:
            repl.emit(message(f"error: {error}", "red"))
        elif not forgot:
            repl.emit(message("nothing to forget: the weights are those loaded", "dim"))
        else:
            repl.emit(message("forgot what it learned: the weights are those loaded", "dim"))
            repl.refresh(force=True)

    repl.call_model(forget, done)


def save_model_command(repl: Actions, arg: str) -> None:
    """/save-model NAME|PATH [--force]: the adapted model as an ordinary model file."""
    try:
        words = shlex.split(arg)
    except ValueError:
        words = arg.split()
    force = "--force" in words
    names = [w for w in words if w != "--force"]
    if len(names) != 1:
        repl.emit(message("usage: /save-model NAME|PATH [--force]", "red"))
        return
    learning = repl.learning

    def save(predictor) -> tuple[Path, int]:
        from rnnrepl.errors import UsageError
        from rnnrepl.infer.adapt import save_adapted

        adapter = _adapter(learning, predictor)
        if adapter is None or not adapter.changed:
            raise UsageError("nothing learned yet", hint="/learn on, then type a few turns")
        return save_adapted(predictor.loaded, adapter.stats, names[0], force), adapter.stats.tokens

    def done(result, error) -> None:
        if error is not None:
            repl.emit(message(f"error: {error}", "red"))
            return
        path, tokens = result
        repl.emit(message(f"wrote {path} (adapted on {tokens} tokens)", "dim"))

    repl.call_model(save, done)
