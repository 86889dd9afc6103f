"""`rnnrepl chat` on a pipe: line mode, plain text, no prompt-toolkit, no escape codes. In this
process through CliRunner (not a terminal, like a pipe), or a real process where one matters:
`| head`, what a fresh interpreter imports, the console's encoding."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import MODEL_CONTRACT, REPO, invoke, run_cli
from tests.repl_support import CHAIN, CHAIN_ALPHABET, bigram, char_vocab, save


@pytest.fixture(scope="module")
def chain_model(tmp_path_factory) -> str:
    path = save(bigram(char_vocab(CHAIN_ALPHABET), CHAIN), tmp_path_factory.mktemp("m") / "chain")
    return str(path)


def test_each_line_is_a_prompt_and_only_continuations_reach_stdout(chain_model):
    r = invoke(
        "chat", chain_model, "--temperature", "0", "-n", "5",
        stdin="do\n\n//x\n", env={"TERM": "xterm-256color", "NO_COLOR": ""},
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    # after "/x", read as <unk>, a line break leads: <unk> itself is never written
    assert r.stdout == "g, su\ndog, \n" + "\ndog," + "\n"
    # "/x" holds "x" and "/", which the vocabulary lacks; no escape codes on stdout or stderr
    assert r.stderr == "rnnrepl: note: 2 unknown token(s) in the prompt read as <unk>\n"


def test_unknown_characters_get_a_notice_on_stderr(chain_model):
    r = invoke("chat", chain_model, "--temperature", "0", "-n", "3", stdin="d€g\n")
    assert (r.exit_code, r.stdout) == (0, ", s\n")
    assert r.stderr == "rnnrepl: note: 1 unknown token(s) in the prompt read as <unk>\n"


def test_set_works_in_line_mode_and_bad_values_are_reported(chain_model):
    stdin = "/set max_tokens 2\ndo\n/set k 0\n/show\n/undo\n/quit\ndo\n"
    r = invoke("chat", chain_model, "--temperature", "0", stdin=stdin)
    assert r.exit_code == 0
    assert r.stdout == "g,\n"  # /quit stops before the last prompt
    assert r.stderr.splitlines() == [
        "rnnrepl: error: k must be between 1 and 50, not 0",
        *("temperature: 0", "top_k: 0 (off)", "top_p: 1", "k: 10 (rows in the panel)"),
        "words: 3 (Alt-1.. inserts one)",
        "cache: on (words the text holds are mixed in)",
        *("max_tokens: 2", "seed: none", "stop: none", "unk: off (never generated)"),
        "rnnrepl: note: /undo is not available here — line mode: each line is a prompt; "
        "commands: /set NAME VALUE, /show, /quit",
    ]


def test_panel_settings_in_line_mode_are_kept_and_say_they_change_no_output(chain_model):
    stdin = "/set words 5\n/set K 4\n/show\n"
    r = invoke("chat", chain_model, "--temperature", "0", stdin=stdin)
    assert r.exit_code == 0
    lines = r.stderr.splitlines()
    note = "only changes the REPL's panel; line mode prints continuations only"
    assert lines[0].startswith(f"rnnrepl: note: words {note}") and "predict --words" in lines[0]
    assert lines[1].startswith(f"rnnrepl: note: k {note}")
    assert "words: 5 (Alt-1.. inserts one)" in lines and "k: 4 (rows in the panel)" in lines


def test_empty_input_exits_zero(chain_model):
    r = invoke("chat", chain_model, stdin="")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")


def test_a_missing_model_is_the_cli_one_line_error(tmp_path):
    r = invoke("chat", str(tmp_path / "nope"), stdin="hello\n")
    assert (r.exit_code, r.stdout) == (4, "")
    assert r.stderr == (
        f"rnnrepl: error: model not found ({tmp_path / 'nope'}) — {MODEL_CONTRACT}\n"
    )


def test_output_into_a_closed_pipe_ends_quietly(chain_model, tmp_path):
    err = tmp_path / "err.txt"
    cmd = f"yes do | {sys.executable} -m rnnrepl chat {chain_model} -n 50 2>{err} | head -n 2"
    r = subprocess.run(
        ["sh", "-c", cmd],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(REPO),
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert r.returncode == 0
    assert len(r.stdout.splitlines()) == 2
    assert err.read_text() == ""


def test_line_mode_never_imports_prompt_toolkit(chain_model):
    code = (
        "import sys, io\n"
        "from rnnrepl.config import SampleConfig\n"
        "from rnnrepl.repl.app import run_repl\n"
        "sys.stdin = io.StringIO('do\\n')\n"
        f"run_repl({chain_model!r}, SampleConfig(temperature=0, max_tokens=5))\n"
        "assert not any(m.startswith('prompt_toolkit') for m in sys.modules), 'imported'\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(REPO),
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "g, su\n"


def test_output_the_console_cannot_encode_never_raises(chain_model):
    r = run_cli(
        "chat", chain_model, "--temperature", "0", "-n", "3", "--allow-unk",
        stdin="d€\n", env={"PYTHONIOENCODING": "ascii"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == "\\ufffd" * 3 + "\n"  # <unk> is written as an escape, not an error
