"""`rnnrepl chat` when stdin or stdout is not a terminal: plain line mode, no prompt-toolkit.

Each input line is a prompt; its continuation is written to stdout as plain text followed by a
newline — nothing else goes to stdout (no prompt echo, no escape codes). Notices and the
output of the few slash commands that make sense here (/set, /show, /help, /quit) go to stderr.
`| head` ends quietly; EOF exits 0.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rnnrepl.repl.state import (
    SettingError,
    Settings,
    apply_setting,
    describe_settings,
    is_command,
    prompt_text,
)
from rnnrepl.ui.consoles import tolerate
from rnnrepl.ui.render import safe_text

USAGE = "line mode: each line is a prompt; commands: /set NAME VALUE, /show, /quit"
PANEL_ONLY = ("k", "words")  # settings of the REPL's panel, which line mode does not show
NO_PANEL = "line mode prints continuations only (predict --words lists word suggestions)"


def run_lines(
    spec: str,
    settings: Settings,
    device: str = "cpu",
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    int8: bool = False,
) -> None:
    """Read prompts from stdin until EOF or /quit; write one continuation per prompt."""
    from rnnrepl.infer.loading import load_for_inference
    from rnnrepl.infer.predictor import Predictor
    from rnnrepl.repl.worker import use_threads

    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    _tolerant(stdin, "replace")  # undecodable input becomes U+FFFD, read as <unk>
    tolerate(stdout, escapes=True)  # generated text: an escape keeps what the model wrote
    tolerate(stderr, escapes=True)
    loaded = load_for_inference(spec, device)
    use_threads(loaded.model.num_parameters())
    predictor = Predictor(loaded, int8=int8)
    try:
        for raw in stdin:
            line = raw.rstrip("\r\n") if raw.endswith("\n") else raw
            if is_command(line):
                settings, done = _command(line, settings, stderr)
                if done:
                    break
                continue
            _continue(predictor, prompt_text(line), settings, stdout, stderr)
    except BrokenPipeError:
        _quiet_pipe()


def _continue(predictor, prompt: str, settings: Settings, out: TextIO, err: TextIO) -> None:
    unknown = predictor.tok.encode(prompt).count(0)
    if unknown:
        err.write(f"rnnrepl: note: {unknown} unknown token(s) in the prompt read as <unk>\n")
    for step in predictor.stream(prompt, settings.sample):
        out.write(safe_text(step.text))
        out.flush()
    out.write("\n")
    out.flush()


def _command(line: str, settings: Settings, err: TextIO) -> tuple[Settings, bool]:
    """(new settings, whether to stop)."""
    name, _, arg = line[1:].partition(" ")
    name = name.lower()
    if name == "quit":
        return settings, True
    if name == "set":
        key, _, value = arg.strip().partition(" ")
        try:
            settings = apply_setting(settings, key, value.strip())
        except SettingError as exc:
            err.write(f"rnnrepl: error: {safe_text(exc, one_line=True)}\n")
        else:
            if key.lower() in PANEL_ONLY:
                err.write(
                    f"rnnrepl: note: {key.lower()} only changes the REPL's panel; {NO_PANEL}\n"
                )
    elif name == "show":
        for key, value in describe_settings(settings):
            err.write(safe_text(f"{key}: {value}", one_line=True) + "\n")
    else:
        note = f"rnnrepl: note: /{name} is not available here — {USAGE}"
        err.write(safe_text(note, one_line=True) + "\n")
    err.flush()
    return settings, False


def _tolerant(stream: TextIO, errors: str) -> None:
    """Text the console cannot encode or decode is replaced, never raised."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors=errors)
        except (ValueError, OSError):
            pass


def _quiet_pipe() -> None:
    """The reader went away (`| head`): stop without a traceback or an error message."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
