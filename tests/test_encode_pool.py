"""Issue 16: a large corpus is encoded on every core (rnnrepl/text/encode_pool.py) into exactly
the ids of the serial path; Ctrl-C or a killed `train` leaves no worker behind and no entry."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnrepl.store.home import tokens_home
from rnnrepl.text.corpus_ids import CorpusOptions, make_tokenizer
from rnnrepl.text.encode_pool import PieceEncoder
from rnnrepl.text.streaming import safe_pieces
from rnnrepl.text.tokens import encode_corpus
from tests.helpers import REPO
from tests.test_token_cache import train

WORDS = (
    "the cat sat on mat . , don't it's (see) \"quoted\" well-known 1,000 <unk> café Σίσυφος 漢字 🙂"
)
WORDS = WORDS.split()


def mixed_text(seed: int, n_words: int) -> str:
    """Known and unknown words, punctuation, Unicode (wide and astral), several spaces, empty
    lines: what a piece boundary inside a line must not change."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_words):
        word = rng.choice(WORDS) if rng.random() < 0.8 else f"rare{rng.randrange(10**6)}"
        out.append(word + rng.choice([" ", " ", " ", "  ", "\n", "\n\n", "\t"]))
    return "".join(out)


def pieces_of(text: str, size: int, level: str) -> list[str]:
    """The text in pieces of about `size` characters, cut as train cuts it (mostly mid-line)."""
    return list(
        safe_pieces([text[i : i + 997] for i in range(0, len(text), 997)], level, False, size)
    )


@pytest.mark.parametrize("level", ["word", "bpe"])
def test_two_workers_give_the_serial_ids_across_many_pieces(level):
    text = mixed_text(1, 20_000)
    tok = make_tokenizer(mixed_text(2, 5_000), CorpusOptions((), level))  # unknown words too
    pieces = pieces_of(text, 4_000, level)
    assert len(pieces) > 20 and sum(not p.endswith("\n") for p in pieces) > len(pieces) // 2
    with PieceEncoder(tok, 2) as encoder:
        got = list(encoder.map(enumerate(pieces)))
    assert [tag for tag, _ in got] == list(range(len(pieces)))
    ids = np.concatenate([a for _, a in got])
    assert np.array_equal(ids, encode_corpus(text, tok))
    assert (ids == 0).any() if level == "word" else True


def children(pid: int, marker: str = "rnnrepl.text.encode_pool") -> list[int]:
    """Live processes whose parent is `pid` and whose command line holds `marker`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and marker.encode() in cmd:
            found.append(int(stat.parent.name))
    return found


def waiting(pid: int) -> bool:
    """The process sleeps with no CPU time for 0.2 s (a worker waiting for its next piece)."""

    def state() -> tuple[str, int]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[11]) + int(fields[12])  # state, utime + stime

    before = state()
    time.sleep(0.2)
    return before[0] == "S" and state() == before


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_worker_that_dies_is_replaced_by_this_process():
    text = mixed_text(3, 20_000)
    tok = make_tokenizer(text, CorpusOptions((), "word"))
    pieces = pieces_of(text, 4_000, "word")

    def items():
        for n, piece in enumerate(pieces):
            if n == 0:  # once both have started, as the out-of-memory killer would
                pids = children(os.getpid())
                while not all(map(waiting, pids)):
                    time.sleep(0.05)
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
            yield n, piece

    # SIGPIPE's default action, as the CLI sets it: a write to a dead worker must not end us
    # (this test died without the fix when one piece per worker was in flight; with two, and
    # threads feeding the pipes, it no longer reliably writes to a dead worker)
    old = signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        with PieceEncoder(tok, 2) as encoder:
            ids = np.concatenate([a for _, a in encoder.map(items())])
    finally:
        signal.signal(signal.SIGPIPE, old)
    assert np.array_equal(ids, encode_corpus(text, tok))
    assert not children(os.getpid())


def test_train_on_workers_writes_the_serial_cache(tmp_path, monkeypatch):
    files = [tmp_path / f"{n}.txt" for n in range(3)]
    files[0].write_text(mixed_text(4, 30_000))
    files[1].write_text("")  # no text: its ids end where the last file's did
    files[2].write_text(mixed_text(5, 8_000).rstrip("\n"))
    blobs, notes = [], []
    for n in ("2", "0"):
        monkeypatch.setenv("RNNREPL_ENCODE_PROCESSES", n)
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / f"data{n}"))
        notes.append(train(*files, out=tmp_path / f"m{n}", extra=["--level", "word"]))
        [entry] = [p for p in tokens_home().iterdir() if p.is_dir()]
        meta = json.loads((entry / "meta.json").read_text())
        blobs.append(((entry / "ids.bin").read_bytes(), meta["n_train"], meta["validation"]))
    assert blobs[0] == blobs[1]
    assert " on 2 processes into the token cache" in notes[0]
    assert " processes " not in notes[1]


def test_a_bad_process_count_is_a_usage_error(tmp_path, monkeypatch):
    (tmp_path / "c.txt").write_text("a b c\n" * 100)
    monkeypatch.setenv("RNNREPL_ENCODE_PROCESSES", "two")
    from tests.test_train_inputs import invoke

    code, err, _ = invoke("train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "m"))
    assert code == 2 and err.startswith("rnnrepl: error: RNNREPL_ENCODE_PROCESSES must be")
    assert len(err.strip().splitlines()) == 1


def start_training(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """`rnnrepl train` at word level on 2 workers, in a session of its own (as a shell runs a
    job); returns once its workers are encoding, with their ids."""
    corpus = tmp_path / "big.txt"
    corpus.write_text(mixed_text(6, 400_000))  # about 3 MB: a second or more to encode
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "RNNREPL_ENCODE_PROCESSES": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnrepl", "train", str(corpus), "--level", "word", "-o",
         str(tmp_path / "m"), "--steps", "1", "--hidden", "8", "--embed", "4"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(workers := children(proc.pid)) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.005)
    return proc, workers


def entry_files() -> list[str]:
    home = tokens_home()
    return sorted(p.name for e in home.iterdir() if e.is_dir() for p in e.iterdir())


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_stopping_train_while_encoding_leaves_no_worker_and_no_entry(tmp_path, how):
    proc, workers = start_training(tmp_path)
    if how == "ctrl-c":  # the terminal signals the job's process group
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.kill()
    _, err = proc.communicate(timeout=60)
    if how == "ctrl-c":
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "Error" not in err, err
    deadline = time.monotonic() + 10
    while any(map(alive, workers)):
        assert time.monotonic() < deadline, "a worker outlived train"
        time.sleep(0.05)
    if how == "ctrl-c":
        assert entry_files() == ["lock"]  # no ids.bin, no temp file, no meta.json


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_train_goes_on_when_a_worker_dies(tmp_path, monkeypatch):
    proc, workers = start_training(tmp_path)
    os.kill(workers[0], signal.SIGKILL)  # as the out-of-memory killer would
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    [entry] = [p for p in tokens_home().iterdir() if p.is_dir()]
    monkeypatch.setenv("RNNREPL_ENCODE_PROCESSES", "0")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "serial"))
    train(tmp_path / "big.txt", out=tmp_path / "m0", extra=["--level", "word"])
    [serial] = [p for p in tokens_home().iterdir() if p.is_dir()]
    assert (entry / "ids.bin").read_bytes() == (serial / "ids.bin").read_bytes()
