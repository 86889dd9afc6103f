"""Small builders shared by tests: tiny corpora, tiny trained models, CLI invocation."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

from click.testing import CliRunner, Result

REPO = Path(__file__).resolve().parents[1]

TOY = "the cat sat on the mat. the dog sat on the log.\n"


def run_cli(
    *args: str, stdin: str | None = None, timeout: float = 120, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m rnnrepl ARGS` in a fresh process; text mode; never raises on failure."""
    full_env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
        "COLUMNS": "100",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "rnnrepl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=str(REPO),
    )


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float, settle: float) -> None:
    """Until a training started as `proc` writes `path` (failing if it exits or times out), then
    `settle` seconds more."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training never saved a state"
        time.sleep(0.1)
    time.sleep(settle)


def invoke(*args: str, stdin: str | None = None, env: dict | None = None) -> Result:
    """`rnnrepl ARGS` in this process through click's CliRunner. The root group's main holds the
    exit-code contract, so exit code, stdout and stderr are the ones a user's process gets;
    sys.argv is the console script's (train records the command line it ran with)."""
    from rnnrepl.cli.main import cli

    runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "100", **(env or {})})
    with mock.patch.object(sys, "argv", ["rnnrepl", *args]):
        return runner.invoke(cli, list(args), input=stdin, catch_exceptions=False)


def train_opts(inputs: list[str], output: str, **over) -> dict:
    """The option dict `rnnrepl train` builds, for driving cli_train functions in-process."""
    opts = {
        "inputs": tuple(inputs),
        "output": output,
        "level": "char",
        "arch": "lstm",
        "layers": 1,
        "hidden": 16,
        "embed": 8,
        "window": None,
        "dropout": None,
        "tie": None,
        "seq_len": 16,
        "batch_size": 4,
        "optimizer": "adam",
        "lr": 1e-2,
        "clip": 1.0,
        "epochs": None,
        "steps": 20,
        "time_limit": None,
        "val_fraction": 0.1,
        "val_file": None,
        "min_freq": 1,
        "max_vocab": 0,
        "lowercase": False,
        "softmax": "auto",
        "precision": "fp32",
        "embeddings": None,
        "eval_every": 10,
        "eval_tokens": None,
        "patience": 0,
        "seed": 3,
        "device": "cpu",
        "encoding": None,
        "resume": False,
        "warm_start": False,
    }
    opts.update(over)
    return opts


def run_main(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    """The console script's entry point in-process, on strict UTF-8 byte streams:
    (exit code, stdout, stderr). A lone surrogate reaching a stream would fail the command."""
    import io
    import signal

    from rnnrepl.cli import main as cli

    streams = [
        io.TextIOWrapper(io.BytesIO(b), encoding="utf-8") for b in (stdin.encode(), b"", b"")
    ]
    old = (sys.stdin, sys.stdout, sys.stderr, sys.argv)
    sigpipe = signal.getsignal(signal.SIGPIPE)  # main() sets the default: restore pytest's
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.argv = ["rnnrepl", *argv]  # train records the command line it ran with
    try:
        cli.main(argv)
        code = 0
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin, sys.stdout, sys.stderr, sys.argv = old
        signal.signal(signal.SIGPIPE, sigpipe)
    for s in streams[1:]:
        s.flush()
    out, err = (s.buffer.getvalue().decode("utf-8") for s in streams[1:])
    return code, out, err


# What every command says after a model it cannot find (rnnrepl/store/home.py's message).
MODEL_CONTRACT = "give a .safetensors file or a name from `rnnrepl list`; bundled models: shakespeare-char, wikitext-bpe, wikitext-word"  # fmt: skip
