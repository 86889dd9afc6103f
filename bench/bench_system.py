"""Sections 7 and 8: start-up times and peak memory, each in a fresh process.

The REPL is launched in a pseudo-terminal (echo off, so only what the application draws comes
back) with two keys already typed; it "accepts keys" when it draws them in its input line.
Cursor-position requests are answered as a terminal would.
"""

from __future__ import annotations

import fcntl
import os
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from bench_quality import train_with_fallback
from common import (
    REPO,
    SHAKESPEARE,
    WIKI,
    alternate,
    python_json,
    rnnrepl_argv,
    row,
    run_timed,
    wait_for,
)

MARK = b"Zq"  # typed at launch; drawn once the prompt reads keys
PROMPT = "\u203a ".encode()  # the REPL's prompt glyph
PREDICT_TEXT = "To be, or not to be, that is the q"


class Terminal:
    """A child process on a pty; remembers when each chunk of output arrived."""

    def __init__(self, argv: list[str], env: dict, rows: int = 30, cols: int = 100) -> None:
        master, slave = os.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO  # the kernel must not echo: only the application draws
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.start = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     cwd=REPO, start_new_session=True)  # fmt: skip
        os.close(slave)
        self.master, self.out, self.answered = master, bytearray(), 0

    def pump(self, timeout: float = 0.01) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            self.out += os.read(self.master, 1 << 16)
        except OSError:  # the child closed the terminal
            time.sleep(timeout)
            return
        while self.answered < self.out.count(b"\x1b[6n"):  # cursor position request
            self.send(b"\x1b[1;1R")
            self.answered += 1

    def until(self, pattern: bytes, after: int = 0, timeout: float = 60) -> float | None:
        """Seconds from launch until `pattern` appeared in the output (past offset `after`)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.out.find(pattern, after) >= 0:
                return time.perf_counter() - self.start
            self.pump()
        return None

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self, timeout: float = 20) -> float:
        """Ctrl-C (clear the line), Ctrl-D (quit); the child's peak RSS in MB."""
        self.send(b"\x03")
        self.pump(0.1)
        self.send(b"\x04")
        _, peak_mb = wait_for(self.proc, timeout, drain=lambda: self.pump(0))
        os.close(self.master)
        return peak_mb


def repl_env(tmp: str) -> dict:
    """A fresh HOME-like set of directories: no history or config from the user."""
    env = dict(os.environ, TERM="xterm-256color")
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        env[var] = os.path.join(tmp, var.lower())
    return env


def default_model(tmp: str) -> tuple[list[str], str, str]:
    """(REPL argv, MODEL for predict, note): the bundled default model, or where there is none
    a random 2x512 char LSTM saved to a temporary file (start-up does not depend on weights)."""
    from bench_keystroke import random_lstm

    from rnnrepl.store import home, modelfile

    if "shakespeare-char" in home.bundled_names():
        return rnnrepl_argv(), "shakespeare-char", ""
    loaded = random_lstm()
    path = modelfile.save_model(Path(tmp) / "random-2x512", loaded.model, loaded.tokenizer, {})
    note = "no bundled shakespeare-char: a random 2x512 LSTM file, launched as `rnnrepl chat FILE`"
    return [*rnnrepl_argv(), "chat", str(path)], str(path), note


def launch_repl(tmp: str, argv: list[str], type_after_ready: str = "") -> dict:
    """Start the REPL; seconds from launch to prompt, to typed keys shown, to model ready."""
    term = Terminal(argv, repl_env(tmp))
    term.send(MARK)
    prompt = term.until(PROMPT)
    keys = term.until(MARK)
    ready = term.until(b"%", after=term.out.find(MARK) if keys else 0)
    if type_after_ready:
        term.send(type_after_ready.encode())
        deadline = time.perf_counter() + 3
        while time.perf_counter() < deadline:
            term.pump()
    rss = term.close()
    return {"prompt_s": prompt, "keys_s": keys, "ready_s": ready, "maxrss_mb": rss}


def startup(quick: bool, **_) -> dict:
    reps = 3 if quick else 5
    got: dict[str, list] = {"repl": [], "predict": [], "torch": []}
    with tempfile.TemporaryDirectory(prefix="rnnrepl-bench-") as tmp:
        repl, model, fallback = default_model(tmp)
        predict = [*rnnrepl_argv(), "predict", model, PREDICT_TEXT, "-k", "5"]
        for r in range(reps):
            for side in alternate(list(got), r):
                if side == "repl":
                    got[side].append(launch_repl(tmp, repl))
                elif side == "predict":
                    got[side].append(run_timed(predict).check().seconds)
                else:
                    got[side].append(run_timed([sys.executable, "-c", "import torch"]).seconds)
    med = lambda key: statistics.median(  # noqa: E731
        r[key] if r[key] is not None else float("inf") for r in got["repl"]
    )
    torch_s, keys_s = statistics.median(got["torch"]), med("keys_s")
    predict_s = statistics.median(got["predict"])
    launched = " ".join(Path(a).name for a in repl)
    rows = [
        row("7 start-up", f"`{launched}` launch -> typed keys shown", keys_s, "s",
            baseline=torch_s, baseline_label="python -c 'import torch'",
            target="≤ 0.5 s and < import torch", met=keys_s <= 0.5 and keys_s < torch_s,
            note=f"prompt drawn {med('prompt_s'):.2f} s; model loaded, panel shown "
            f"{med('ready_s'):.2f} s; median of {reps}" + (f"; {fallback}" if fallback else "")),
        row("7 start-up", "`rnnrepl predict MODEL TEXT` end to end", predict_s, "s",
            target="≤ 2 s", met=predict_s <= 2.0,
            note=f"median of {reps}" + (f"; {fallback}" if fallback else "")),
        row("7 start-up", "`python -c 'import torch'` (floor)", torch_s, "s",
            note=f"median of {reps}"),
    ]  # fmt: skip
    notes = [
        "Start-up: the REPL runs on a pseudo-terminal with kernel echo off and two keys written "
        "at launch; 'typed keys shown' is when the application draws them in its input line. "
        "predict and import torch: process wall time, spawn to exit.",
    ]
    return {"rows": rows, "details": got, "notes": notes}


ENCODE = """
import json, sys, time
from common import vm_hwm_mb
from rnnrepl.text.tokens import count_symbols, encode_corpus
from rnnrepl.text.files import load_corpus
from rnnrepl.text.tokenizers import build_tokenizer
base = vm_hwm_mb()
start = time.perf_counter()
text, report = load_corpus([sys.argv[1]])
tok = build_tokenizer("char", count_symbols(text, "char", False), False, 1, 0)
ids = encode_corpus(text, tok)
print(json.dumps({"baseline_mb": base, "seconds": time.perf_counter() - start,
                  "bytes": report.bytes, "tokens": len(ids), "ids_mb": ids.nbytes / 2**20,
                  "peak_mb": vm_hwm_mb()}))
"""


def big_corpus(tmp: Path, megabytes: float) -> Path:
    """tiny Shakespeare repeated to at least `megabytes` MB (1e6 bytes), in a temp dir."""
    data = SHAKESPEARE.read_bytes()
    path = tmp / f"shakespeare-x{megabytes:g}MB.txt"
    with open(path, "wb") as f:
        for _ in range(max(1, round(megabytes * 1e6 / len(data)))):
            f.write(data)
    return path


def memory(quick: bool, **_) -> dict:
    steps, megabytes = (3, 20) if quick else (50, 100)
    with tempfile.TemporaryDirectory(prefix="rnnrepl-bench-") as tmp:
        from bench_keystroke import TEXT

        argv, _, fallback = default_model(tmp)
        repl = launch_repl(tmp, argv, type_after_ready=TEXT)
        valid = WIKI / "valid.txt"
        if quick:  # the final validation pass dominates a short run; quick keeps it short
            valid = Path(tmp) / "valid-head.txt"
            lines = (WIKI / "valid.txt").read_text(encoding="utf-8").splitlines(keepends=True)
            valid.write_text("".join(lines[:200]), encoding="utf-8")
        train = train_with_fallback([str(WIKI / "train.txt")], ["--level", "word", "--val",
                                    str(valid), "--steps", str(steps)],
                                    Path(tmp) / "mem")  # fmt: skip
        path = big_corpus(Path(tmp), megabytes)
        enc, _ = python_json(ENCODE.replace("sys.argv[1]", repr(str(path))))
    rows = [
        row("8 memory", "peak RSS, REPL on the default model after typing", repl["maxrss_mb"],
            "MB", note=f"{len(TEXT)} characters typed" + (f"; {fallback}" if fallback else "")),
        row("8 memory", f"peak RSS, `train` WikiText-2 word level, {steps} steps",
            train["maxrss_mb"], "MB", note=f"{train['wall_seconds']:.0f} s incl. data "
            "preparation and the final validation pass" + (f"; DEFAULT FAILED "
            f"({train['default_failed']}), measured with --precision fp32"
            if "default_failed" in train else "")),
        row("8 memory", f"peak RSS, encoding a {enc['bytes'] / 1e6:.0f} MB char corpus",
            enc["peak_mb"], "MB", note=f"interpreter + imports {enc['baseline_mb']:.0f} MB; ids "
            f"{enc['ids_mb']:.0f} MB; {enc['seconds']:.1f} s"),
    ]  # fmt: skip
    return {"rows": rows, "details": {"repl": repl, "train": train, "encode": enc}}
