"""End to end in a real terminal: tmux runs `rnnrepl chat`, we type and read the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from rnnrepl.repl.commands import COMMANDS
from tests.helpers import REPO
from tests.repl_support import CHAIN, CHAIN_ALPHABET, bigram, char_vocab, save

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        cmd = ["tmux", "-L", self.socket, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "repl")

    def wait(self, predicate, what: str, timeout: float = 60.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{self.screen()}")


def _top_row(screen: str) -> str:
    """The first bar of the panel: the line after 'next token'."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("next token") and i + 1 < len(lines):
            return lines[i + 1]
    return ""


def test_type_watch_the_panel_generate_interrupt_and_quit(tmp_path):
    model = save(bigram(char_vocab(CHAIN_ALPHABET), CHAIN), tmp_path / "chain")
    env = {
        "PYTHONPATH": str(REPO),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    command = " ".join(
        [
            "env -i",
            *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
            shlex.quote(sys.executable),
            "-m rnnrepl chat",
            shlex.quote(str(model)),
            "--temperature 0 --max-tokens 10000000",
            "; echo EXIT=$?; sleep 60",
        ]
    )
    tmux = Tmux(f"rnnrepl-test-{os.getpid()}")
    tmux("new-session", "-d", "-s", "repl", "-x", "100", "-y", "30", command)
    try:
        tmux.wait(lambda s: "chain · char" in s and "%" in s, "the panel")
        assert _top_row(tmux.screen()).split()[0] == "d"  # after the start token
        tmux("send-keys", "-t", "repl", "-l", "do")
        screen = tmux.wait(lambda s: _top_row(s).startswith("g "), "the panel to change")
        assert "100.0%" in _top_row(screen) and "ctx 2 tok" in screen
        tmux.wait(lambda s: "› dog\n" in s, "ghost text after the cursor")
        tmux("send-keys", "-t", "repl", "Enter")
        tmux.wait(lambda s: "generating" in s and s.count("dog, sun.") >= 3, "streamed text")
        tmux("send-keys", "-t", "repl", "C-c")
        screen = tmux.wait(lambda s: "[stopped]" in s and "generating" not in s, "the stop")
        tmux("resize-window", "-t", "repl", "-x", "12", "-y", "4")  # a tiny terminal
        tmux("send-keys", "-t", "repl", "-l", "do")
        time.sleep(1.0)
        tmux("resize-window", "-t", "repl", "-x", "100", "-y", "30")  # and back
        tmux("send-keys", "-t", "repl", "C-c")  # clear the line
        tmux("send-keys", "-t", "repl", "-l", "do")
        tmux.wait(lambda s: _top_row(s).startswith("g ") and "chain · char" in s, "the panel")
        tmux("send-keys", "-t", "repl", "C-c")
        tmux("send-keys", "-t", "repl", "-l", "/quit")
        tmux("send-keys", "-t", "repl", "Enter")
        screen = tmux.wait(lambda s: "EXIT=" in s, "the exit")
        assert "EXIT=0" in screen
        assert "Traceback" not in screen
    finally:
        tmux("kill-server")


def _chat(tmux: Tmux, model, home, width: int, height: int) -> None:
    """Start `rnnrepl chat MODEL` in a fresh tmux session of the given size."""
    env = {
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = f"env -i {assigns} {shlex.quote(sys.executable)} -m rnnrepl chat "
    command += f"{shlex.quote(str(model))}; sleep 60"
    tmux("new-session", "-d", "-s", "repl", "-x", str(width), "-y", str(height), command)


def test_the_command_menu_never_covers_the_panel_header(tmp_path):
    model = save(bigram(char_vocab(CHAIN_ALPHABET), CHAIN), tmp_path / "chain")
    tmux = Tmux(f"rnnrepl-menu-{os.getpid()}")
    _chat(tmux, model, tmp_path, 80, 24)
    try:
        tmux.wait(lambda s: "chain · char" in s and "%" in s, "the panel")
        tmux("send-keys", "-t", "repl", "-l", "/")
        screen = tmux.wait(lambda s: "/help" in s and "list commands" in s, "the command menu")
        lines = screen.splitlines()
        menu = [i for i, line in enumerate(lines) if line.lstrip().startswith("/")]
        names = [lines[i].split()[0] for i in menu]
        assert lines[0].startswith("› /") and len(names) >= 8, screen
        assert names == [f"/{name}" for name in COMMANDS][: len(names)], screen  # as many as fit
        assert lines[max(menu) + 1].startswith("next token"), screen  # right under the menu
        tmux("send-keys", "-t", "repl", "-l", "sc")
        screen = tmux.wait(lambda s: "/help" not in s and "/score" in s, "one entry left")
        lines = screen.splitlines()
        assert lines[1].lstrip().startswith("/score") and lines[2].startswith("next token")
        tmux("send-keys", "-t", "repl", "C-c")  # clear the line: the panel moves back up
        tmux.wait(lambda s: s.splitlines()[1].startswith("next token"), "the panel under the input")
    finally:
        tmux("kill-server")
