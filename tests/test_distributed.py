"""Data-parallel training: torchrun / `--nproc`, gloo on 127.0.0.1, against one process."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
import torch

from rnnrepl.config import ModelConfig
from rnnrepl.errors import UsageError
from rnnrepl.model.lm import build_model
from rnnrepl.store import resume
from rnnrepl.train import distributed as dd
from tests.helpers import REPO, run_cli, wait_for_file

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this torch build has no torch.distributed"
)

# gloo on the loopback interface only: nothing here may listen on or reach another address.
LOOPBACK = {"GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}


def corpus(tmp_path) -> str:
    words = "the cat sat on the mat while a dog slept by the door and it rained".split()
    rng = torch.Generator().manual_seed(0)
    picks = torch.randint(0, len(words), (6000,), generator=rng).tolist()
    path = tmp_path / "c.txt"
    path.write_text(" ".join(words[i] for i in picks) + "\n")
    return str(path)


def recipe(text: str, out, *extra: str) -> list[str]:
    return [
        "train", text, "-o", str(out), "--hidden", "24", "--embed", "8", "--layers", "2",
        "--seq-len", "16", "--batch-size", "8", "--dropout", "0", "--eval-every", "10",
        "--device", "cpu", "--precision", "fp32", "--seed", "5", "--arch", "lstm", *extra,
    ]  # fmt: skip


def weights(path) -> dict[str, torch.Tensor]:
    tensors, _ = resume.load_state(path)
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "opt.", "hidden."))}


def torchrun(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Plain torchrun (`python -m torch.distributed.run`), two ranks, rendezvous on 127.0.0.1."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--nnodes", "1",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0", "--local-addr", "127.0.0.1",
        "-m", "rnnrepl", *args,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", **LOOPBACK}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


@pytest.mark.slow
def test_two_ranks_of_half_the_streams_equal_one_process_of_all(tmp_path):
    """The invariant: 2 ranks x 4 streams for K steps == 1 process x 8 streams (fp32, gloo)."""
    text = corpus(tmp_path)
    one = run_cli(*recipe(text, tmp_path / "one", "--steps", "25"), env=LOOPBACK)
    assert one.returncode == 0, one.stderr
    two = torchrun(*recipe(text, tmp_path / "two", "--steps", "25"))
    assert two.returncode == 0, two.stderr
    a, b = weights(tmp_path / "one.state.safetensors"), weights(tmp_path / "two.state.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("hidden.") for k in a)
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-5), k
    # validation gives the figure one process gives; rank 0 alone reports it
    vals = [re.findall(r"step \d+: val .*", r.stderr) for r in (one, two)]
    assert vals[0] == vals[1] and len(vals[0]) == 3
    assert two.stderr.count("training summary") == 1
    _, meta = resume.load_state(tmp_path / "two.state.safetensors")
    assert meta["world_size"] == 2 and meta["progress"]["tokens_seen"] == 25 * 8 * 16


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", **LOOPBACK}
    return subprocess.Popen(
        [sys.executable, "-m", "rnnrepl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def interrupt(proc: subprocess.Popen, state, sig: int, code: int) -> tuple[str, int]:
    """Once the run has saved `state`: `sig` to the launcher; it must exit `code` without a
    traceback. Returns its stderr and the step the resume state holds."""
    wait_for_file(state, proc, timeout=120.0, settle=0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=150)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    return err, resume.load_state(state)[1]["progress"]["step"]


@pytest.mark.slow
def test_sigterm_to_the_launcher_saves_and_the_resumed_run_equals_a_straight_one(tmp_path):
    text = corpus(tmp_path)
    steps = ["--steps", "120", "--nproc", "2"]  # the first save is at step 10
    proc = start(recipe(text, tmp_path / "a", *steps))
    err, stopped = interrupt(proc, tmp_path / "a.state.safetensors", signal.SIGTERM, 143)
    assert 0 < stopped < 120
    printed = re.search(r"Resume with:\n\s+(rnnrepl .*--resume)", err)
    assert printed and "--nproc 2" in printed.group(1), err
    resumed = run_cli(*shlex.split(printed.group(1))[1:], env=LOOPBACK, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    straight = run_cli(*recipe(text, tmp_path / "b", *steps), env=LOOPBACK, timeout=180)
    assert straight.returncode == 0, straight.stderr
    a, b = weights(tmp_path / "a.state.safetensors"), weights(tmp_path / "b.state.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
def test_a_rank_that_dies_stops_the_others_within_seconds(tmp_path):
    text = corpus(tmp_path)
    proc = start(recipe(text, tmp_path / "m", "--time", "5m", "--nproc", "2"))
    wait_for_file(tmp_path / "m.state.safetensors", proc, timeout=120.0, settle=0.3)
    ranks = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    pids = [int(p) for p in ranks.stdout.split()]
    assert len(pids) == 2, ranks
    os.kill(max(pids), signal.SIGKILL)
    began = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - began < 15
    assert proc.returncode != 0 and "Traceback" not in err
    assert "killed by SIGKILL" in err
    for pid in pids:  # no rank left behind
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read()


@pytest.mark.slow
def test_ctrl_c_to_two_ranks_then_one_process_resumes_and_an_odd_batch_is_refused(tmp_path):
    text = corpus(tmp_path)
    proc = start(recipe(text, tmp_path / "m", "--steps", "300", "--nproc", "2"))
    _, before = interrupt(proc, tmp_path / "m.state.safetensors", signal.SIGINT, 130)
    one = run_cli(*recipe(text, tmp_path / "m", "--steps", str(before + 10), "--resume"))
    assert one.returncode == 0, one.stderr
    _, meta = resume.load_state(tmp_path / "m.state.safetensors")
    assert meta["progress"]["step"] == before + 10 and meta["world_size"] == 1
    odd = recipe(text, tmp_path / "o", "--steps", "5", "--nproc", "2", "--batch-size", "7")
    odd = run_cli(*odd, env=LOOPBACK)  # the last --batch-size given counts
    assert odd.returncode == 2, odd.stderr
    assert "--batch-size 7 does not divide between 2 processes" in odd.stderr
    assert "Traceback" not in odd.stderr
    piped = run_cli("train", "-", "-o", str(tmp_path / "p"), "--nproc", "2", stdin="a b c\n" * 99)
    assert piped.returncode == 2 and "cannot share standard input" in piped.stderr


def test_the_world_comes_from_torchruns_variables_and_cuts_the_streams():
    assert dd.from_env({}) == dd.SINGLE
    w = dd.from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert (w.rank, w.size, w.main, w.many) == (2, 4, False, True)
    assert w.rows(8) == slice(4, 6)
    assert [dd.World(r, 4).rows(12) for r in range(4)] == [slice(i, i + 3) for i in (0, 3, 6, 9)]
    for bad in ({"WORLD_SIZE": "two"}, {"WORLD_SIZE": "2", "RANK": "2"}):
        with pytest.raises(UsageError):
            dd.from_env(bad)
    with pytest.raises(UsageError, match="multiple of 3"):
        dd.check_batch(dd.World(0, 3), 8)


@pytest.mark.parametrize("arch", ["rnn", "gru", "lstm", "window"])
def test_no_model_registers_a_buffer_ddp_would_broadcast(arch):
    model = build_model(ModelConfig(vocab_size=40, arch=arch, hidden=8, embed=4, layers=2))
    assert list(model.named_buffers()) == []


RANKS_COMPARE = """
import hashlib, os
from rnnrepl.train import distributed as dd
world = dd.start(dd.from_env(), "cpu")
same = hashlib.sha256(b"corpus").hexdigest()
mine = hashlib.sha256(os.environ["RANK"].encode()).hexdigest()
print(f"rank {world.rank}: {dd.same_everywhere(world, same)} {dd.same_everywhere(world, mine)}")
dd.stop(world)
"""


@pytest.mark.slow
def test_ranks_that_read_different_data_are_told_apart(tmp_path):
    script = tmp_path / "compare.py"
    script.write_text(RANKS_COMPARE)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0", "--local-addr", "127.0.0.1",
        str(script),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), **LOOPBACK}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    # both ranks write to one pipe: their lines may arrive interleaved
    found = sorted(re.findall(r"rank (\d): (True|False) (True|False)", done.stdout))
    assert found == [("0", "True", "False"), ("1", "True", "False")], done.stdout
