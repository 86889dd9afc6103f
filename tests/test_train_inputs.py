"""Issue 12 through the commands a user runs: which files a directory gave, --skip-bad, the
per-file validation split, the tiny-corpus warning, the best-vs-total steps in `info`, the resume
line, a second Ctrl-C, and a text file passed where a model belongs."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from rnnrepl.cli import main as cli
from rnnrepl.text.files import load_corpus
from rnnrepl.text.tokenizers import CharVocab, WordVocab
from rnnrepl.text.tokens import encode_corpus, encode_files, split_per_file, split_train_val
from tests.helpers import REPO, TOY

TINY = ["--hidden", "8", "--embed", "4", "--layers", "1", "--seq-len", "8", "--batch-size", "2"]
TINY += ["--precision", "fp32", "--device", "cpu", "--steps", "2", "--eval-every", "2"]


def invoke(*argv: str) -> tuple[int, str, str]:
    """`rnnrepl ARGV` in-process through the real entry point: (exit code, stderr, stdout)."""
    streams = [io.TextIOWrapper(io.BytesIO(), encoding="utf-8") for _ in range(3)]
    old = (sys.stdin, sys.stdout, sys.stderr)
    sys.stdin, sys.stdout, sys.stderr = streams
    try:
        cli.main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        sys.stdin, sys.stdout, sys.stderr = old
    out, err = (s.flush() or s.buffer.getvalue().decode("utf-8") for s in streams[1:])
    return code, err, out


def info(model) -> dict:
    code, err, out = invoke("info", str(model), "--json")
    assert code == 0, err
    return json.loads(out)["training"]


@pytest.fixture
def docs(tmp_path):
    """Two text files, a .pdf, a binary file without an extension and a Latin-1 file."""
    d = tmp_path / "docs"
    (d / "man").mkdir(parents=True)
    (d / "a.txt").write_text(TOY * 40)
    (d / "man" / "b").write_text(TOY.upper() * 30)
    (d / "paper.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)))
    (d / "blob").write_bytes(b"\x00\x01\x02\x03" * 64)
    (d / "latin.txt").write_bytes("café au lait\n".encode("latin-1") * 20)
    return d


# --- reading a directory ----------------------------------------------------------------------


def test_a_bad_file_in_a_directory_stops_the_run_and_names_skip_bad(docs, tmp_path):
    code, err, _ = invoke("train", str(docs), "-o", str(tmp_path / "m"), *TINY)
    assert code == 3
    assert err.count("\n") == 1 and err.startswith("rnnrepl: error: looks like a binary file")
    assert str(docs / "blob") in err and "--skip-bad" in err


def test_skip_bad_warns_for_each_file_and_summarises(docs, tmp_path):
    code, err, _ = invoke("train", str(docs), "-o", str(tmp_path / "m"), "--skip-bad", *TINY)
    assert code == 0, err
    lines = err.splitlines()
    assert (
        f"warning: skipped {docs / 'blob'}: looks like a binary file: NUL byte at byte offset 0"
        in lines
    )
    assert (
        f"warning: skipped {docs / 'latin.txt'}: cannot decode as UTF-8: bytes b'\\xe9' at byte "
        "offset 3 (line 1)"
    ) in lines
    size = len(TOY) * 70
    assert (
        f"read 2 files ({size / 1000:.1f} kB); skipped 3: 1 by extension, 1 binary, 1 undecodable"
        in lines
    )
    assert "paper.pdf" not in err  # extensions are only counted, unless --verbose
    assert info(tmp_path / "m")["corpus_files"] == [str(docs / "a.txt"), str(docs / "man" / "b")]


def test_verbose_lists_every_file_read_and_skipped(docs, tmp_path):
    args = ("train", str(docs), "-o", str(tmp_path / "m"), "--skip-bad", "--verbose", *TINY)
    code, err, _ = invoke(*args)
    assert code == 0, err
    lines = err.splitlines()
    assert f"  read {docs / 'a.txt'} ({len(TOY) * 40 / 1000:.1f} kB)" in lines
    assert f"  read {docs / 'man' / 'b'} ({len(TOY) * 30 / 1000:.1f} kB)" in lines
    assert f"  skipped {docs / 'paper.pdf'}: by extension .pdf" in lines


def test_one_bad_file_named_alone_is_its_own_error_even_with_skip_bad(docs, tmp_path):
    code, err, _ = invoke("train", str(docs / "latin.txt"), "-o", str(tmp_path / "m"), "--skip-bad")
    assert code == 3 and "--encoding latin-1" in err and "--skip-bad" not in err


def test_all_files_bad_is_an_error(docs, tmp_path):
    args = ("train", str(docs / "blob"), str(docs / "latin.txt"), "-o", str(tmp_path / "m"))
    code, err, _ = invoke(*args, "--skip-bad")
    assert code == 3 and "no readable input files: all 2 were skipped" in err


# --- the validation split ---------------------------------------------------------------------


def _chars(n: int, alphabet: str) -> str:
    return "".join(alphabet[(i * 7 + i // 5) % len(alphabet)] for i in range(n - 1)) + "\n"


def test_validation_is_the_end_of_each_file_and_info_says_so(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    # a and b are split per file; the 10% of c and e are under 64 tokens, so those two are split
    # as one 304-token text.
    for name, n in [("a", 5007), ("b", 3007), ("c", 104), ("e", 200)]:
        (d / f"{name}.txt").write_text(_chars(n, "abcdefgh xyz"))
    code, err, _ = invoke("train", str(d), "-o", str(tmp_path / "m"), "--eval-tokens", "0", *TINY)
    assert code == 0, err
    want = "last 10% of each of 2 files, and of the other 2 as one text"
    assert f"validation: {want}" in err.splitlines()
    summary = info(tmp_path / "m")
    assert summary["validation"] == want
    # int(0.9 n) per part; the tail of the whole corpus would leave int(0.9 * 8318) = 7486.
    assert summary["train_tokens"] == 4506 + 2706 + 273
    code, err, out = invoke("info", str(tmp_path / "m"))
    assert want in " ".join(out.split())


def test_a_single_file_is_split_as_before(tmp_path):
    corpus = tmp_path / "one.txt"
    corpus.write_text(TOY * 222 + "end")  # no trailing newline: the file is taken as it is
    n = len(TOY) * 222 + 3
    code, err, _ = invoke("train", str(corpus), "-o", str(tmp_path / "m"), *TINY)
    assert code == 0, err
    summary = info(tmp_path / "m")
    assert summary["validation"] == "last 10% of the text"
    assert summary["train_tokens"] == int(n * 0.9)  # nanoGPT's split, as before issue 12


def test_split_per_file_takes_each_tail():
    ids = np.arange(1000, dtype=np.uint16)
    train, val, how = split_per_file(ids, [700, 1000], 0.1)
    # 70 tokens of the first file; 30 of the second are under 64, so it is pooled (alone).
    assert val.tolist() == [*range(630, 700), *range(970, 1000)]
    assert how == "last 10% of 1 file, and of the other 1 as one text"
    assert len(train) + len(val) == 1000 and set(train.tolist()).isdisjoint(val.tolist())
    one_train, one_val, _ = split_per_file(ids, [1000], 0.1)
    old_train, old_val = split_train_val(ids, 0.1)
    assert np.array_equal(one_train, old_train) and np.array_equal(one_val, old_val)
    assert np.shares_memory(one_train, ids) and np.shares_memory(one_val, ids)


@pytest.mark.parametrize("level", ["char", "word"])
def test_encoding_file_by_file_equals_encoding_the_corpus(tmp_path, level):
    texts = ["Ab cd.\nEF", "", "ΣΑΣ σ.", "x y\r\nz\n", "last"]
    paths = []
    for i, t in enumerate(texts):
        paths.append(str(tmp_path / f"{i}.txt"))
        (tmp_path / f"{i}.txt").write_bytes(t.encode())
    text, report = load_corpus(paths)
    assert report.ends[-1] == len(text) and len(report.ends) == len(texts)
    vocab_type = CharVocab if level == "char" else WordVocab
    vocab = vocab_type.build(Counter(text.split() if level == "word" else text), lowercase=True)
    ids, ends = encode_files(text, report.ends, vocab)
    assert ids.tolist() == encode_corpus(text, vocab).tolist() and ends[-1] == len(ids)
    assert ends[1] == ends[0]  # the empty file holds no tokens


# --- warnings and labels ----------------------------------------------------------------------


def test_a_tiny_corpus_gets_a_warning(tmp_path):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("hello there, world\n")
    args = TINY[: TINY.index("--seq-len")] + ["--seq-len", "4", "--batch-size", "1"]
    args += TINY[TINY.index("--precision") :]
    code, err, _ = invoke("train", str(tiny), "-o", str(tmp_path / "m"), *args)
    assert code == 0, err
    assert "warning: tiny corpus: 19 characters; from under 10,000 a model learns little" in err
    big = tmp_path / "big.txt"
    big.write_text(TOY * 210)  # 10,080 characters
    code, err, _ = invoke("train", str(big), "-o", str(tmp_path / "m2"), *TINY)
    assert code == 0 and "tiny corpus" not in err


def test_info_says_the_file_holds_the_best_step_of_how_many(tmp_path):
    # Validation text in letters the training text never shows: the longer the training, the
    # worse validation gets, so the best model is the first one evaluated.
    corpus = tmp_path / "c.txt"
    corpus.write_text("ab" * 1350 + "xy" * 150)
    args = TINY[: TINY.index("--steps")] + ["--steps", "12", "--eval-every", "4"]
    code, err, _ = invoke("train", str(corpus), "-o", str(tmp_path / "m"), *args)
    assert code == 0, err
    summary = info(tmp_path / "m")
    assert (summary["steps"], summary["total_steps"]) == (4, 12)
    code, _, out = invoke("info", str(tmp_path / "m"))
    assert "best at step 4 of 12" in out


def test_a_resumed_run_says_where_it_resumes(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text(TOY * 100)
    (d / "b.txt").write_text(TOY.upper() * 100)
    base = ["train", str(d), "-o", str(tmp_path / "m"), *TINY[: TINY.index("--steps")]]
    code, err, _ = invoke(*base, "--steps", "4", "--eval-every", "2")
    assert code == 0, err
    code, err, _ = invoke(*base, "--steps", "8", "--eval-every", "2", "--resume")
    assert code == 0, err  # the per-file split gives the same data fingerprint again
    assert "resuming from step 4 (epoch 1)" in err
    summary = info(tmp_path / "m")
    assert summary["total_steps"] == 8 and summary["validation"].startswith("last 10% of each")


# --- a text file where a model belongs --------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["info"], ["predict", "-", "the"], ["generate", "-", "-n", "3"]]
)
def test_a_text_file_is_not_a_model(tmp_path, command):
    notes = tmp_path / "notes.txt"
    notes.write_text("Meeting notes: buy milk; train a model on these one day.\n")
    argv = [str(notes) if a == "-" else a for a in command]
    if "-" not in command:
        argv.append(str(notes))
    code, err, _ = invoke(*argv)
    assert code == 4, err
    assert (
        err.startswith("rnnrepl: error: this is a text file, not a model") and "absurd" not in err
    )
    assert f"rnnrepl train {notes}" in err


# --- a second Ctrl-C --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_ctrl_c_says_what_was_not_saved_and_what_holds_the_model(tmp_path):
    corpus = tmp_path / "toy.txt"
    corpus.write_text(TOY * 400)
    # Steps of seconds: the state appears at step 2's validation, the Ctrl-Cs land in step 3.
    args = ["--hidden", "1280", "--embed", "64", "--layers", "2", "--seq-len", "128"]
    args += ["--batch-size", "32", "--eval-every", "2", "--time", "90s", "--device", "cpu"]
    cmd = [sys.executable, "-m", "rnnrepl", "train", str(corpus), "-o", str(tmp_path / "m")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd + args, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    state = tmp_path / "m.state.safetensors"
    deadline = time.monotonic() + 120
    while not state.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(1.0)
    # Ctrl-C again every 0.1 s until it exits: signals that arrive within one long torch call
    # reach Python as one, so a single second signal could be lost; a later one is not.
    stop = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < stop:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.1)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Resume with" not in err
    model = tmp_path / "m.safetensors"
    assert (
        f"stopped by a second Ctrl-C without saving: {model} still holds the last good model" in err
    )
