"""Out of memory is exit 5 wherever it happens, and standard input cannot grow without bound.

Real allocation failures come from a memory limit (RLIMIT_AS, what `ulimit -v` sets) on a fresh
process; the limit is the measured footprint of a tiny command plus a margin, so that importing
torch works and only the big allocation fails on any machine.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rnnrepl.config import ModelConfig
from rnnrepl.model.lm import build_model
from rnnrepl.store import modelfile
from tests.helpers import REPO, TOY, invoke, run_cli

MB = 1 << 20
TINY = ["--embed", "8", "--layers", "1", "--seq-len", "16", "--batch-size", "4"]
TINY += ["--precision", "fp32", "--steps", "2"]

# Runs one command like the console script, then reports the process's peak address space.
_PEAK = """
import sys
from rnnrepl.cli import main as cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
peak = [line for line in open("/proc/self/status") if line.startswith("VmPeak")][0]
print(int(peak.split()[1]) * 1024)
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}


def _limited(limit: int, *args: str) -> subprocess.CompletedProcess:
    """`python -m rnnrepl ARGS` under `ulimit -v` (a shell sets it: preexec_fn is not safe in a
    process with threads, such as this one once torch is loaded)."""
    script = f'ulimit -v {limit // 1024} && exec "$0" -m rnnrepl "$@"'
    return subprocess.run(
        ["bash", "-c", script, sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
        cwd=str(REPO),
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("oom")
    corpus = d / "toy.txt"
    corpus.write_text(TOY * 100)
    assert (
        run_cli("train", str(corpus), "-o", str(d / "small"), "--hidden", "16", *TINY).returncode
        == 0
    )
    return corpus, d / "small.safetensors"


@pytest.fixture(scope="module")
def baseline(small) -> int:
    """Peak address space of `rnnrepl info` on a tiny model: torch and every module imported."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc to measure the footprint")
    got = subprocess.run(
        [sys.executable, "-c", _PEAK, "info", str(small[1])],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=str(REPO),
        timeout=300,
    )
    return int(got.stdout.split()[-1])


def _assert_exit_5(got: subprocess.CompletedProcess, *needles: str) -> None:
    assert got.returncode == 5, got.stderr
    last = got.stderr.splitlines()[-1]
    assert last.startswith("rnnrepl: error: out of memory"), got.stderr
    assert "Traceback" not in got.stderr and got.stderr.count("rnnrepl: error") == 1
    for needle in needles:
        assert needle in last, last


@pytest.mark.slow
def test_loading_a_model_bigger_than_the_memory_limit_exits_5(small, baseline, tmp_path):
    vocab = modelfile.load_model(small[1]).tokenizer
    cfg = ModelConfig(vocab_size=vocab.size, arch="gru", embed=8, hidden=2048, layers=1)
    big = modelfile.save_model(
        tmp_path / "big", build_model(cfg), vocab, {}
    )  # 25 M weights, 100 MB
    assert _limited(baseline + 1024 * MB, "info", str(big)).returncode == 0  # memory, not the file
    # 1.2x the file: past the read (an allocation failure inside safetensors' Rust reader aborts
    # the process, beyond any handler), short of the model built from it.
    for command in (["info", str(big)], ["generate", str(big), "-n", "3"]):
        _assert_exit_5(_limited(baseline + 120 * MB, *command), "ulimit -v", "smaller model")


_GUARD = """
import resource, sys
from pathlib import Path
from rnnrepl.errors import ResourceError
from rnnrepl.store.container import read_verified
path = Path(sys.argv[1])
used = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (used + 2 * path.stat().st_size, resource.RLIM_INFINITY))
try:
    read_verified(path, "model")
except ResourceError as exc:
    print("refused:", exc)
"""


@pytest.mark.slow
def test_a_file_the_address_space_cannot_hold_three_times_is_refused_before_it_is_read(
    small, tmp_path
):
    """Room for the file's bytes but not for safetensors' copy and the tensors: refused before
    the Rust reader runs, since an allocation failing there aborts beyond any handler."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc to measure the footprint")
    vocab = modelfile.load_model(small[1]).tokenizer
    cfg = ModelConfig(vocab_size=vocab.size, arch="gru", embed=8, hidden=1024, layers=1)
    big = modelfile.save_model(tmp_path / "big", build_model(cfg), vocab, {})  # 12 MiB
    got = subprocess.run(
        [sys.executable, "-c", _GUARD, str(big)],
        capture_output=True, text=True, env=_env(), cwd=str(REPO), timeout=300,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("refused: out of memory loading a 12.2 MiB model"), got.stdout
    assert "ulimit -v" in got.stdout


@pytest.mark.slow
def test_training_a_model_too_big_to_allocate_exits_5_with_its_size(small, baseline, tmp_path):
    args = ["train", str(small[0]), "-o", str(tmp_path / "huge"), "--hidden", "16384", *TINY]
    got = _limited(baseline + 512 * MB, *args)
    _assert_exit_5(got, "parameters", "could not allocate", "GiB", "--hidden")
    assert not (tmp_path / "huge.safetensors").exists()


@pytest.mark.slow
def test_training_that_runs_out_after_allocating_the_model_exits_5(small, baseline, tmp_path):
    # A 100 M-weight GRU fits (400 MB); its gradients and Adam's moments (1.2 GB more) do not.
    args = ["train", str(small[0]), "-o", str(tmp_path / "big"), "--arch", "gru"]
    got = _limited(baseline + 700 * MB, *args, "--hidden", "4096", *TINY)
    _assert_exit_5(got, "could not allocate", "--batch-size")


def test_an_endless_stdin_is_refused_at_the_cap_with_exit_3(tmp_path):
    zeros = subprocess.Popen(["head", "-c", "2G", "/dev/zero"], stdout=subprocess.PIPE)
    try:
        got = subprocess.run(
            [sys.executable, "-m", "rnnrepl", "train", "-", "-o", str(tmp_path / "m")]
            + ["--max-stdin", "1MB"],
            stdin=zeros.stdout,
            capture_output=True,
            text=True,
            timeout=300,
            env=_env(),
            cwd=str(REPO),
        )
    finally:
        zeros.stdout.close()
        zeros.kill()
        zeros.wait()
    assert got.returncode == 3, got.stderr
    assert got.stderr == (
        "rnnrepl: error: standard input holds more than 1,000,000 bytes (<stdin>) — save it to "
        "a file and pass its path, or raise --max-stdin\n"
    )


def test_stdin_within_the_cap_trains(tmp_path):
    text = TOY * 100
    got = invoke(
        "train", "-", "-o", str(tmp_path / "m"), "--max-stdin", f"{len(text)}", "--hidden", "16",
        *TINY, stdin=text,
    )  # fmt: skip
    assert got.exit_code == 0, got.stderr
    got = invoke("train", "-", "-o", str(tmp_path / "m2"), "--max-stdin", f"{len(text) - 1}",
                 "--hidden", "16", *TINY, stdin=text)  # fmt: skip
    assert (got.exit_code, got.stderr) == (3, (
        f"rnnrepl: error: standard input holds more than {len(text) - 1:,} bytes (<stdin>) — save "
        "it to a file and pass its path, or raise --max-stdin\n"
    ))  # fmt: skip


@pytest.mark.parametrize("size", ["0", "1x", "KB", "-5M", "1iB"])
def test_max_stdin_must_be_a_size(size, tmp_path):
    got = invoke("train", "-", "-o", str(tmp_path / "m"), "--max-stdin", size, stdin=TOY)
    assert (got.exit_code, got.stderr) == (2, (
        f"rnnrepl: error: Invalid value for '--max-stdin': '{size}' is not a size like 500K, 64MB "
        "or 2GiB — run 'rnnrepl train --help'\n"
    ))  # fmt: skip


def test_a_word_corpus_with_300k_distinct_words_at_the_default_batch_exits_5(baseline, tmp_path):
    words = [f"w{i:06d}" for i in range(300_000)]
    corpus = tmp_path / "words.txt"
    corpus.write_text(" ".join(words + words[:100_000]) + "\n")
    args = ["train", str(corpus), "--level", "word", "-o", str(tmp_path / "w"), "--steps", "1"]
    got = _limited(baseline + 3 * 1024 * MB, *args)
    _assert_exit_5(got, "parameters at batch", "could not allocate", "--max-vocab")
