"""/neuron L:I: the document coloured by one hidden unit's activation as you type (README "The
insides, visible"); /neuron off. The unit's value after each token is kept along the text by the
worker (``infer.unit_track``) and drawn by the same machinery as /color's surprisal colours."""

from __future__ import annotations

import dataclasses
import os

from rich.text import Text

from rnnrepl.repl.actions import Actions

USAGE = "usage: /neuron LAYER:UNIT (layer from 1, unit from 0, as `rnnrepl neurons` lists them) or /neuron off"


def neuron_command(repl: Actions, arg: str) -> None:
    session = repl.session
    current = session.settings.color
    if not arg:
        following = current if current.startswith("unit ") else "no unit"
        repl.emit(Text(f"colouring by {following}; {USAGE[7:]}", style="dim"))
        return
    if arg.lower() == "off":
        if current.startswith("unit "):
            _set(repl, "off")
            repl.emit(Text("unit colours off", style="dim"))
        return
    layer, sep, unit = arg.partition(":")
    if not (sep and layer.strip().isdigit() and unit.strip().isdigit()):
        repl.emit(Text(USAGE, style="red"))
        return
    li, ui = int(layer), int(unit)

    def done(problem: str | None, error: BaseException | None) -> None:
        if error is not None or problem:
            repl.emit(Text(f"/neuron: {problem or error}", style="red"))
            return
        _set(repl, f"unit {li}:{ui}")
        repl.emit(Text(f"colouring by unit {li}:{ui}: blue -1, grey 0, red +1", style="dim"))
        if os.environ.get("NO_COLOR"):
            repl.emit(Text("NO_COLOR is set: the terminal shows no colours — unset it to see them"))

    repl.call_model(lambda predictor: predictor.unit_problem(li, ui), done)


def _set(repl: Actions, kind: str) -> None:
    repl.session.settings = dataclasses.replace(repl.session.settings, color=kind)
    repl.refresh(force=True)
