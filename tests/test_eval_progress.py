"""`rnnrepl eval` progress: a bar on a terminal's stderr, nothing on a pipe; the core reports by callback."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading

from rnnrepl.infer.loading import load_for_inference
from rnnrepl.train.validation import CHUNK, held_out_loss, start_token
from tests.helpers import REPO, TOY, run_cli

MODEL = "shakespeare-char"  # bundled: no training needed


def _corpus(tmp_path, repeat: int = 30):
    path = tmp_path / "test.txt"
    path.write_text(TOY * repeat)  # 48 * 30 = 1,440 characters: a few chunks
    return path


def _run_with_terminal_stderr(*args: str) -> tuple[int, str, str]:
    """Run rnnrepl with stderr on a pseudo-terminal: (exit code, stdout, what the terminal got)."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "100"}
    env["TERM"] = "xterm"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnrepl", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        cwd=str(REPO),
    )
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:  # keep reading so the child never blocks on a full pty
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO once the child has closed its end
                break
            if not data:
                break
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=300)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, out.decode(), b"".join(chunks).decode("utf-8", "replace")


def test_eval_on_a_pipe_writes_no_progress(tmp_path):
    r = run_cli("eval", MODEL, str(_corpus(tmp_path)))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "1440 tokens" in r.stdout


def test_eval_on_a_terminal_shows_a_progress_bar(tmp_path):
    path = _corpus(tmp_path)
    code, out, terminal = _run_with_terminal_stderr("eval", MODEL, str(path))
    assert code == 0, terminal
    assert "scoring test.txt" in terminal and "1440/1440 tokens" in terminal, terminal
    assert "1440 tokens" in out and "scoring" not in out  # results stay on stdout, bar-free


def test_held_out_loss_reports_progress_by_callback():
    loaded = load_for_inference(MODEL)
    ids = loaded.tokenizer.encode(TOY * 13)  # 624 tokens: two full chunks and a partial one
    start = start_token(loaded.tokenizer)
    calls: list[tuple[int, int]] = []
    with_bar = held_out_loss(
        loaded.model, ids, start, lambda done, total: calls.append((done, total))
    )
    assert calls == [(CHUNK, len(ids)), (2 * CHUNK, len(ids)), (len(ids), len(ids))]
    assert with_bar == held_out_loss(loaded.model, ids, start)
