from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys

import pytest

from rnnrepl.store import modelfile, resume
from tests.helpers import REPO, TOY, run_cli, wait_for_file


def start_training(tmp_path, *extra: str) -> subprocess.Popen:
    corpus = tmp_path / "toy.txt"
    corpus.write_text(TOY * 200)
    args = [
        sys.executable,
        "-m",
        "rnnrepl",
        "train",
        str(corpus),
        "-o",
        str(tmp_path / "m"),
        "--time",
        "20s",
        "--hidden",
        "32",
        "--embed",
        "8",
        "--layers",
        "1",
        "--seq-len",
        "16",
        "--batch-size",
        "4",
        "--eval-every",
        "20",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO)
    )


def wait_for_state(tmp_path, proc, timeout=60.0) -> None:
    wait_for_file(tmp_path / "m.state.safetensors", proc, timeout, settle=0.5)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_prints_resume_command_and_resume_works(tmp_path, sig, code):
    proc = start_training(tmp_path)
    wait_for_state(tmp_path, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    match = re.search(r"Resume with:\n\s+(rnnrepl .*--resume)", err)
    assert match, err
    tensors, meta = resume.load_state(tmp_path / "m.state.safetensors")
    stopped_at = meta["progress"]["step"]
    assert stopped_at > 0
    modelfile.load_model(tmp_path / "m.safetensors")
    args = shlex.split(match.group(1))[1:]
    assert args[-1] == "--resume" and "--time" in args
    # The printed command resumes the 120 s budget; a step limit ends the test sooner.
    resumed = run_cli(*args, "--steps", str(stopped_at + 10), timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    _, meta2 = resume.load_state(tmp_path / "m.state.safetensors")
    assert meta2["progress"]["step"] == stopped_at + 10


def test_second_trainer_on_the_same_output_is_refused(tmp_path):
    # A budget the second process's start-up cannot outlast on a loaded machine (20 s could).
    proc = start_training(tmp_path, "--time", "5m")
    try:
        wait_for_state(tmp_path, proc)
        other = run_cli(
            "train",
            str(tmp_path / "toy.txt"),
            "-o",
            str(tmp_path / "m"),
            "--steps",
            "5",
            "--hidden",
            "8",
            "--embed",
            "4",
            "--seq-len",
            "8",
            "--batch-size",
            "2",
        )
        assert other.returncode == 5, other.stderr
        assert "another training" in other.stderr or "in use" in other.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
