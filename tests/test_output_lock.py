"""One training per output: a second `train -o SAME` is refused while the first holds the lock
(exit 5, one line); the kernel releases the lock when its process dies, so a killed training's
lock file never blocks the next one. `rm` is refused while a training writes the model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, TOY, run_main

TRAIN = ["--hidden", "8", "--embed", "4", "--layers", "1", "--seq-len", "8", "--batch-size", "2"]
TRAIN += ["--precision", "fp32", "--steps", "2"]
HOLDER = """
import sys, time
from rnnrepl.atomic import OutputLock
with OutputLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "toy.txt"
    path.write_text(TOY * 40, encoding="utf-8")
    return path


def hold(model: Path) -> subprocess.Popen:
    """Another process holding the output lock of `model` (as a running training does)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(model)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_second_training_on_a_held_output_is_refused_in_one_line(corpus, tmp_path):
    holder = hold(tmp_path / "m.safetensors")
    try:
        code, out, err = run_main(["train", str(corpus), "-o", str(tmp_path / "m"), *TRAIN])
    finally:
        holder.kill()
        holder.wait()
    assert code == 5, err
    assert err == (
        f"rnnrepl: error: another training is writing this output ({tmp_path}/m.safetensors.lock)"
        " — wait for it to finish or choose another output\n"
    )
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("content", ["", "12345 another-host\n", "garbage\n"])
def test_the_lock_file_of_a_killed_training_never_blocks(corpus, tmp_path, content):
    holder = hold(tmp_path / "m.safetensors")
    holder.kill()  # SIGKILL: no handler runs, the lock file stays behind
    holder.wait()
    lock = tmp_path / "m.safetensors.lock"
    lock.write_text(content)  # whatever it holds (an older rnnrepl wrote "PID HOST")
    code, _, err = run_main(["train", str(corpus), "-o", str(tmp_path / "m"), *TRAIN])
    assert code == 0, err
    assert (tmp_path / "m.safetensors").is_file()


def test_rm_is_refused_while_a_training_writes_the_model_and_leaves_nothing(corpus):
    code, _, err = run_main(["train", str(corpus), *TRAIN])
    assert code == 0, err
    home = Path(os.environ["XDG_DATA_HOME"]) / "rnnrepl" / "models"
    holder = hold(home / "toy.safetensors")
    try:
        code, _, err = run_main(["rm", "toy"])
    finally:
        holder.kill()
        holder.wait()
    assert code == 5 and "another training is writing this output" in err, err
    assert (home / "toy.safetensors").is_file()
    code, out, err = run_main(["rm", "toy"])
    assert code == 0, err
    assert sorted(p.name for p in home.iterdir()) == []
