"""Issue 16, corpora larger than memory: the token cache through `rnnrepl train`. Ids are encoded
once into a raw file with a JSON sidecar, reused while the inputs and options are unchanged,
rebuilt (with one note) when an entry is damaged, and mapped, not copied, into training."""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from rich.console import Console

from rnnrepl.cli import train as cli_train
from rnnrepl.cli import train_config as cli_config
from rnnrepl.cli import train_data as cli_train_data
from rnnrepl.errors import RnnreplError
from rnnrepl.store.home import tokens_home
from rnnrepl.text.corpus_ids import make_tokenizer
from rnnrepl.text.files import load_corpus, read_text
from rnnrepl.text.streaming import FileText
from rnnrepl.text.tokens import encode_files, split_per_file
from rnnrepl.train import loop as tr
from tests.helpers import REPO, TOY, train_opts
from tests.test_train_inputs import TINY, invoke

QUIET = Console(file=open(os.devnull, "w"))  # noqa: SIM115
REUSED, ENCODED = "note: token ids reused from the cache", "note: encoded "


def entries() -> list:
    home = tokens_home()
    return sorted(p for p in home.iterdir() if p.is_dir()) if home.is_dir() else []


def train(*inputs, out, extra=()) -> str:
    code, err, _ = invoke("train", *map(str, inputs), "-o", str(out), "--force", *TINY, *extra)
    assert code == 0, err
    return err


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TOY * 60)
    return path


def test_ids_are_encoded_once_then_reused(corpus, tmp_path):
    first = train(corpus, out=tmp_path / "m")
    assert ENCODED in first and REUSED not in first
    [entry] = entries()
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["dtype"] == "uint8" and meta["count"] == len(TOY) * 60
    assert (entry / "ids.bin").stat().st_size == meta["count"]
    stamp = (entry / "meta.json").stat().st_mtime_ns, (entry / "ids.bin").stat().st_mtime_ns
    second = train(corpus, out=tmp_path / "m")
    assert REUSED in second and ENCODED not in second
    assert entries() == [entry]
    assert stamp == (
        (entry / "meta.json").stat().st_mtime_ns,
        (entry / "ids.bin").stat().st_mtime_ns,
    )
    # what reading reported comes back from the sidecar, line for line
    drop = (REUSED, ENCODED, "step ", "sample", "time ")
    keep = [line for line in first.splitlines()[:3] if not line.startswith(drop)]
    assert keep == [line for line in second.splitlines()[:3] if not line.startswith(drop)]


def test_a_changed_corpus_or_tokenizer_option_encodes_again(corpus, tmp_path):
    train(corpus, out=tmp_path / "m")
    corpus.write_text(TOY * 59 + TOY.upper())
    assert ENCODED in train(corpus, out=tmp_path / "m")
    assert ENCODED in train(corpus, out=tmp_path / "m", extra=["--lowercase"])
    assert ENCODED in train(corpus, out=tmp_path / "m", extra=["--val-fraction", "0.2"])
    assert len(entries()) == 4
    assert REUSED in train(corpus, out=tmp_path / "m", extra=["--lowercase"])


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda e: (e / "ids.bin").write_bytes((e / "ids.bin").read_bytes()[:-7]), "holds"),
        (lambda e: _flip(e / "ids.bin", 100), "CRC-32"),
        (lambda e: (e / "meta.json").write_text("{ not json"), "does not read"),
        (lambda e: _edit_meta(e, n_train=5), "own digest"),
        (lambda e: (e / "meta.json").write_text("[]"), "not a JSON object"),
        (lambda e: _flip(e / "tokenizer.json", 20), "tokenizer.json does not match"),
        (lambda e: (e / "tokenizer.json").unlink(), "tokenizer.json does not read"),
    ],
)
def test_a_damaged_entry_is_rebuilt_with_one_note(corpus, tmp_path, damage, why):
    train(corpus, out=tmp_path / "m")
    [entry] = entries()
    good = (entry / "ids.bin").read_bytes()
    damage(entry)
    err = train(corpus, out=tmp_path / "m")
    [note] = [line for line in err.splitlines() if line.startswith("note: encoded")]
    assert "the entry there was damaged:" in note and why in note, note
    assert (entry / "ids.bin").read_bytes() == good
    assert REUSED in train(corpus, out=tmp_path / "m")


def _flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_meta(entry, **fields) -> None:
    meta = json.loads((entry / "meta.json").read_text())
    (entry / "meta.json").write_text(json.dumps(meta | fields))


FILES = [b"Ab cd.\nEF gh\n" * 90, b"", "ΣΑΣ σ. x\r\ny\n".encode() * 3, b"tiny", b"\x00\x01 binary",
         b"", b"x y\r\nz\n" * 150, b"last"]  # fmt: skip


def summary_files(notes: Console) -> int:
    """How many files the reading line says were read."""
    line = next(x for x in notes.file.getvalue().splitlines() if x.startswith("read "))
    return int(line.split()[1])


@pytest.mark.parametrize("level", ["char", "word", "bpe"])
def test_cached_ids_equal_reading_the_corpus_whole(tmp_path, level):
    """Several files (empty ones, CRLF, files too small for their own validation share, no
    final newline, a binary one skipped): the same tokenizer, train and validation ids and the
    same report as the in-memory path."""
    paths = []
    for i, text in enumerate(FILES):
        paths.append(str(tmp_path / f"{i}.txt"))
        (tmp_path / f"{i}.txt").write_bytes(text)
    opts = train_opts(paths, str(tmp_path / "m"), level=level, lowercase=True, skip_bad=True)
    notes = Console(file=io.StringIO(), width=200)
    tok, train_ids, val_ids, summary = cli_train.prepare_data(opts, notes)
    text, report = load_corpus(paths, skip_bad=True)
    assert [s.path for s in report.skipped] == [paths[4]] and "\ntiny\nx y" in text
    assert summary_files(notes) == len(report.files)
    crlf = f"note: normalised {report.crlf_normalised} CRLF/CR line endings to LF"
    assert report.crlf_normalised == 3 * 1 + 150 and crlf in notes.file.getvalue()
    ids, ends = encode_files(text, report.ends, tok)
    want_train, want_val, how = split_per_file(ids, ends, 0.1)
    assert np.array_equal(train_ids, want_train) and np.array_equal(val_ids, want_val)
    assert summary["validation"] == how and "and of the other" in how
    in_memory = make_tokenizer(text, cli_train_data._corpus_options(opts))
    assert tok.to_dict() == in_memory.to_dict()
    assert summary["corpus_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert summary["corpus_chars"] == len(text) and summary["corpus_files"] == report.files
    again = cli_train.prepare_data(opts, QUIET)
    assert again[0].to_dict() == tok.to_dict() and np.array_equal(again[1], train_ids)


def test_training_reads_a_map_of_the_cache_not_a_copy(corpus, tmp_path):
    opts = train_opts([str(corpus)], str(tmp_path / "m"))
    tok, train_ids, val_ids, summary = cli_train.prepare_data(opts, QUIET)
    [entry] = entries()
    base = train_ids
    while not isinstance(base, np.memmap):
        base = base.base
    assert os.path.samefile(base.filename, entry / "ids.bin")
    model_cfg, train_cfg = cli_config.make_configs(opts, tok, len(train_ids), len(val_ids))
    model = tr.new_model(model_cfg, 0, "cpu")
    trainer = tr.Trainer(model, tok, train_ids, val_ids, train_cfg, tmp_path / "m", summary)
    assert np.shares_memory(trainer.streams.numpy(), train_ids)
    assert trainer.streams.dtype.itemsize == 1  # uint8 ids stay uint8


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc for CPU times")
def test_trainings_started_at_once_wait_for_one_encoding(corpus, tmp_path):
    """While the entry's lock is held (here by the test, as by a first rank encoding), two
    trainings wait at it; released, one encodes and the other maps what it wrote."""
    from filelock import FileLock

    train(corpus, out=tmp_path / "m")
    [entry] = entries()
    (entry / "meta.json").unlink()  # uncommitted: the next training must encode
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "rnnrepl", "train", str(corpus), *TINY, "--force"]
    with FileLock(entry / "lock"):
        procs = [
            subprocess.Popen(
                [*cmd, "-o", str(tmp_path / f"m{i}")],
                env=env,
                cwd=str(REPO),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in range(2)
        ]
        deadline = time.monotonic() + 120
        while not all(_waiting(p.pid) for p in procs):
            assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)
        assert all(p.poll() is None for p in procs) and not (entry / "meta.json").exists()
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sorted(ENCODED in e for e in errs) == [False, True], errs
    assert sum(REUSED in e for e in errs) == 1 and entries() == [entry]


def _waiting(pid: int) -> bool:
    """Alive, past its imports, and using no CPU over a second: waiting at the lock (filelock
    polls it with a fresh open every 50 ms, so an open file is no sign)."""

    def cpu() -> int:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks

    before = cpu()
    time.sleep(1.0)
    after = cpu()
    return after > 50 and after - before < 5


def _bytes(rng: random.Random, n: int) -> bytes:
    pieces = [b"ab ", b"\r\n", b"\r", b"\n", "\u00e9".encode(), "\U0001f600".encode(), b"x" * 999]
    rare = [b"\xe9", b"\x00", b"\x01", b"\xff\xfe"]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(rare) if rng.random() < 0.002 else rng.choice(pieces)
    return bytes(out)


@pytest.mark.parametrize("seed", range(40))
def test_reading_in_chunks_equals_reading_whole(tmp_path, seed):
    """Chunk edges inside a character, a CRLF pair or a UTF-16 unit; bad bytes and NULs past
    the first chunk: the same text, counts and errors (file:offset, line) as read_text."""
    rng = random.Random(seed)
    data = _bytes(rng, rng.choice([3000, 70_000, 150_000]))
    encoding = rng.choice([None, None, "latin-1", "utf-16"])
    if seed % 5 == 0:
        data = codecs.BOM_UTF16_LE + _bytes(rng, 80_000).decode("latin-1").encode("utf-16-le")
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    want = _outcome(lambda: _whole(str(path), encoding))
    assert _outcome(lambda: _chunked(str(path), encoding)) == want


def _whole(path: str, encoding: str | None) -> tuple:
    text, report = read_text(path, encoding)
    return text, report.bytes, report.crlf_normalised, report.encodings[path]


def _chunked(path: str, encoding: str | None) -> tuple:
    reader = FileText(path, encoding, chunk=65_540)
    text = "".join(reader)
    return text, reader.bytes, reader.crlf, reader.encoding


def _outcome(read) -> tuple:
    try:
        return ("text", read())
    except RnnreplError as exc:
        return ("error", type(exc).__name__, str(exc), exc.hint)


def test_a_bad_byte_deep_in_a_big_file_is_located_as_before(tmp_path):
    path = tmp_path / "deep.txt"
    path.write_bytes(b"abc def\n" * 20_000 + b"caf\xe9\n")
    code, err, _ = invoke("train", str(path), "-o", str(tmp_path / "m"), *TINY)
    assert code == 3 and err.count("\n") == 1
    assert f"({path}:160003)" in err and "at byte offset 160003 (line 20001)" in err


def test_a_validation_file_gets_its_own_entry_reused_too(corpus, tmp_path):
    val = tmp_path / "v.txt"
    val.write_text(TOY.upper() * 3)
    first = train(corpus, out=tmp_path / "m", extra=["--val", str(val)])
    assert first.count(ENCODED) == 2 and f"validation: the file {val}" in first
    second = train(corpus, out=tmp_path / "m", extra=["--val", str(val)])
    assert second.count(REUSED) == 2 and ENCODED not in second
    assert len(entries()) == 2
    code, err, out = invoke("info", str(tmp_path / "m"), "--json")
    assert code == 0 and json.loads(out)["training"]["val_tokens"] == 3 * len(TOY)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_errors_come_in_the_order_of_the_files_as_before(tmp_path):
    """Hashing the inputs first must not change which error a user sees: the first file's."""
    bad = tmp_path / "latin.txt"
    bad.write_bytes("café\n".encode("latin-1") * 50)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, err, _ = invoke("train", str(bad), str(fifo), "-o", str(tmp_path / "m"), *TINY)
    assert code == 3 and err.count("\n") == 1
    assert f"({bad}:3)" in err and "--skip-bad" in err
    code, err, _ = invoke("train", str(fifo), str(bad), "-o", str(tmp_path / "m"), *TINY)
    assert code == 3 and "is not a regular file" in err and str(fifo) in err


def _small_files_only() -> None:
    """In the child: files may not grow past 4 kB; a write beyond fails (EFBIG), no signal."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize(("files", "what"), [(1, "ids.bin"), (2, "a temporary file")])
def test_a_cache_that_cannot_be_written_is_exit_5_in_one_line(tmp_path, files, what):
    paths = []
    for i in range(files):
        paths.append(str(tmp_path / f"{i}.txt"))
        (tmp_path / f"{i}.txt").write_text(TOY * 200)
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    got = subprocess.run(
        [sys.executable, "-m", "rnnrepl", "train", *paths, "-o", str(tmp_path / "m"), *TINY],
        env=env, cwd=str(REPO), capture_output=True, text=True, timeout=120,
        preexec_fn=_small_files_only,
    )  # fmt: skip
    assert got.returncode == 5, got.stderr
    assert got.stderr.count("\n") == 1 and got.stderr.startswith("rnnrepl: error: cannot write ")
    assert what in got.stderr and "File too large" in got.stderr
