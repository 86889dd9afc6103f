"""`rnnrepl chat MODEL_A MODEL_B` end to end in a real terminal (tmux), as a user runs it."""

from __future__ import annotations

import os
import shlex
import shutil
import sys

import pytest

from tests.helpers import REPO
from tests.repl_support import CHAIN, CHAIN_ALPHABET, bigram, char_vocab, save, word_model
from tests.test_repl_tmux import Tmux

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def _chat(tmux: Tmux, models: list, home, width: int, height: int) -> None:
    """`rnnrepl chat MODELS...` in a fresh tmux session; then EXIT=status on the screen."""
    env = {
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    args = " ".join(shlex.quote(str(m)) for m in models)
    command = f"env -i {assigns} {shlex.quote(sys.executable)} -m rnnrepl chat {args}"
    tmux("new-session", "-d", "-s", "repl", "-x", str(width), "-y", str(height),
         f"{command}; echo EXIT=$?; sleep 60")  # fmt: skip


def _models(tmp_path):
    chain = save(bigram(char_vocab(CHAIN_ALPHABET), CHAIN), tmp_path / "chain")
    cats = save(word_model(["dog", "sun", "the", "cat", ","], {"cat": 3.0}), tmp_path / "cats")
    return chain, cats


def test_two_panels_side_by_side_then_stacked_on_a_narrow_terminal(tmp_path):
    chain, cats = _models(tmp_path)
    tmux = Tmux(f"rnnrepl-pair-{os.getpid()}")
    _chat(tmux, [chain, cats], tmp_path, 100, 40)
    try:
        tmux.wait(lambda s: "chain · char" in s and "cats · word" in s and "%" in s, "two panels")
        tmux("send-keys", "-t", "repl", "-l", "dog, ")
        screen = tmux.wait(lambda s: "last ␣ " in s and "last , " in s, "both figures")
        head = next(line for line in screen.splitlines() if "chain · char" in line)
        assert head.startswith("A  chain · char") and "B  cats · word" in head  # one row
        tmux("resize-window", "-t", "repl", "-x", "70", "-y", "40")
        screen = tmux.wait(
            lambda s: any(line.startswith("B  cats · word") for line in s.splitlines()),
            "B's panel under A's",
        )
        assert "Traceback" not in screen
    finally:
        tmux("kill-server")


def test_a_model_b_that_cannot_load_is_one_line_and_exit_4(tmp_path):
    chain, _ = _models(tmp_path)
    tmux = Tmux(f"rnnrepl-pair-bad-{os.getpid()}")
    missing = tmp_path / "nothing-here"
    _chat(tmux, [chain, missing], tmp_path, 100, 20)
    try:
        screen = tmux.wait(lambda s: "EXIT=" in s, "the exit")
        text = screen.strip()
        assert text.startswith("rnnrepl: error: model not found (") and text.endswith("EXIT=4")
        assert text.count("rnnrepl:") == 1 and "Traceback" not in text, screen
    finally:
        tmux("kill-server")
