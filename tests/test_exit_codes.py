"""The exit-code contract of RELIABILITY.md, command by command, with and without --debug.

Every bad case runs through `rnnrepl.cli.main.main` (the console script's entry point) in this
process; faults that cannot be produced from outside (out of memory, a full disk, a bug) are
injected with monkeypatch. Without --debug: the exit code, one line on stderr that starts with
`rnnrepl: error:` and names the problem, never a traceback. With --debug: the same exit code and
the traceback. One real `python -m rnnrepl` process per exit code checks the status a shell sees.
"""

from __future__ import annotations

import errno
import json
import pickle

import pytest
import torch

from rnnrepl.model import lm as models
from rnnrepl.store import modelfile, resume
from tests.helpers import run_cli, run_main

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 40
TRAIN = ["--hidden", "16", "--embed", "8", "--layers", "1", "--seq-len", "16", "--batch-size", "4"]
TRAIN += ["--precision", "fp32", "--steps", "4"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("exit")
    f = {
        "CORPUS": d / "text.txt",
        "EMPTY": d / "empty.txt",
        "SPACES": d / "spaces.txt",
        "BINARY": d / "binary.dat",
        "LATIN1": d / "latin1.txt",
        "NOTMODEL": d / "fake.safetensors",
        "PICKLE": d / "evil.pt",
        "CATALOG": d / "catalog.json",
        "MODEL": d / "model.safetensors",
    }
    f["CORPUS"].write_text(TEXT)
    f["EMPTY"].write_text("")
    f["SPACES"].write_text(" \n\t \n" * 20)
    f["BINARY"].write_bytes(b"\x00\x01\x02binary\x00" * 50)
    f["LATIN1"].write_bytes(("caf\u00e9 " * 500).encode("latin-1"))
    f["NOTMODEL"].write_bytes(b"this is not a model" * 10)
    f["PICKLE"].write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    f["CATALOG"].write_text("{not json")
    code, err, _ = invoke(["train", str(f["CORPUS"]), "-o", str(f["MODEL"]), *TRAIN])
    assert code == 0, err
    return f


def invoke(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    """Run the CLI entry point in-process: (exit code, stderr, stdout)."""
    code, out, err = run_main(argv, stdin)
    return code, err, out


# (command line, exit code, text the message must contain). Names in capitals are files above.
CASES = [
    (["train", "/nonexistent/file.txt", "-o", "OUT"], 3, "/nonexistent/file.txt"),
    (["train", "EMPTY", "-o", "OUT"], 3, "empty"),
    (["train", "SPACES", "-o", "OUT"], 3, "whitespace"),
    (["train", "BINARY", "-o", "OUT"], 3, "binary"),
    (["train", "LATIN1", "-o", "OUT"], 3, "--encoding"),
    (["train", "CORPUS", "-o", "OUT", "--val", "EMPTY"], 3, "empty"),
    (["train", "CORPUS", "-o", "OUT", "--seq-len", "5000"], 3, "too short"),
    (["train", "CORPUS", "-o", "OUT", "--arch", "transformer"], 2, "transformer"),
    (["train", "CORPUS", "-o", "OUT", "--resume"], 2, "nothing to resume"),
    (["generate", "NOTMODEL"], 4, "NOTMODEL"),
    (["generate", "PICKLE"], 4, "pickle"),
    (["generate", "/nonexistent/model"], 4, "not found"),
    (["generate", "MODEL", "--top-p", "0"], 2, "top-p"),
    (["generate", "MODEL", "-p", "x", "--prompt-file", "CORPUS"], 2, "give the prompt once"),
    (["generate", "MODEL", "the", "-p", "x"], 2, "give the prompt once"),
    (["generate", "MODEL", "--prompt-file", "BINARY"], 3, "binary"),
    (["predict", "NOTMODEL", "the"], 4, "NOTMODEL"),
    (["predict", "MODEL"], 2, "TEXT"),
    (["score", "MODEL"], 2, "TEXT"),
    (["score", "MODEL", "-f", "/nonexistent/file.txt"], 3, "/nonexistent/file.txt"),
    (["score", "PICKLE", "the cat"], 4, "pickle"),
    (["eval", "MODEL", "BINARY"], 3, "binary"),
    (["eval", "MODEL", "EMPTY"], 3, "empty"),
    (["eval", "NOTMODEL", "CORPUS"], 4, "NOTMODEL"),
    (["info", "NOTMODEL"], 4, "NOTMODEL"),
    (["info", "PICKLE"], 4, "pickle"),
    (["chat", "NOTMODEL"], 4, "NOTMODEL"),
    (["corpus", "list", "--catalog", "CATALOG"], 3, "CATALOG"),
    (["corpus", "fetch", "no-such-corpus"], 2, "no-such-corpus"),
    (["no-such-command"], 2, "no-such-command"),
    # Option values that pass a plain range check and then crash: refused at the edge.
    (["generate", "MODEL", "--temperature", "nan"], 2, "not a finite number"),
    (["generate", "MODEL", "--temperature", "inf"], 2, "not a finite number"),
    (["generate", "MODEL", "--top-p", "nan"], 2, "not a finite number"),
    (["generate", "MODEL", "--seed", str(2**64)], 2, "--seed"),
    (["generate", "MODEL", "--seed", str(-(2**63) - 1)], 2, "--seed"),
    (["chat", "MODEL", "--temperature", "nan"], 2, "not a finite number"),
    (["chat", "MODEL", "--top-p", "inf"], 2, "--top-p"),
    (["chat", "MODEL", "--seed", str(2**64)], 2, "--seed"),
    (["train", "CORPUS", "-o", "OUT", "--seed", str(2**64)], 2, "--seed"),
    (["train", "CORPUS", "-o", "OUT", "--lr", "1e308"], 2, "--lr"),
    (["train", "CORPUS", "-o", "OUT", "--lr", "inf"], 2, "--lr"),
    (["train", "CORPUS", "-o", "OUT", "--clip", "nan"], 2, "not a finite number"),
    (["train", "CORPUS", "-o", "OUT", "--clip", "inf"], 2, "not a finite number"),
    (["train", "CORPUS", "-o", "OUT", "--epochs", "inf"], 2, "not a finite number"),
    (["train", "CORPUS", "-o", "OUT", "--dropout", "nan"], 2, "not a finite number"),
    (["train", "CORPUS", "-o", "OUT", "--val-fraction", "nan"], 2, "not a finite number"),
    (["train", "CORPUS", "-o", "OUT", "--time", "9" * 400 + "s"], 2, "finite"),
]

# Values at the edge of what is allowed work: a temperature or top-p that underflows is greedy,
# the largest and smallest 64-bit seeds seed.
WORKING = [
    ["generate", "MODEL", "-p", "the", "-n", "8", "--temperature", "1e-300"],
    ["generate", "MODEL", "-p", "the", "-n", "8", "--temperature", "5e-324"],
    ["generate", "MODEL", "-p", "the", "-n", "8", "--top-p", "5e-324"],
    ["generate", "MODEL", "-p", "the", "-n", "8", "--top-p", "1e-300", "--temperature", "2"],
    ["generate", "MODEL", "-p", "the", "-n", "8", "--greedy"],
]
SEEDS = [str(2**64 - 1), str(-(2**63)), "0"]


def _fill(args: list[str], files, tmp_path) -> list[str]:
    names = {k: str(v) for k, v in files.items()} | {"OUT": str(tmp_path / "out")}
    return [names.get(a, a) for a in args]


# One real `python -m rnnrepl` process per exit code that input can cause: the status the shell
# sees. 5 (ulimit -v) is test_out_of_memory's, 130 and 143 test_signals'; 1 and 6 need injection.
REAL = [
    (["generate", "MODEL", "-p", "the", "-n", "4", "--seed", "1"], 0),
    (["generate", "MODEL", "--top-p", "0"], 2),
    (["train", "EMPTY", "-o", "OUT"], 3),
    (["info", "PICKLE"], 4),
]


@pytest.mark.parametrize(("args", "code"), REAL, ids=[str(c[1]) for c in REAL])
def test_a_real_process_exits_with_the_code(files, tmp_path, args, code):
    r = run_cli(*_fill(args, files, tmp_path))
    assert r.returncode == code, r.stderr
    if code:
        assert r.stdout == "" and r.stderr.startswith("rnnrepl: error: ")
        assert r.stderr.count("\n") == 1
    else:
        assert r.stderr == "" and r.stdout.startswith("the")


@pytest.mark.parametrize(("args", "code", "needle"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_every_command_maps_bad_input_to_its_exit_code(files, tmp_path, args, code, needle):
    argv = _fill(args, files, tmp_path)
    needle = _fill([needle], files, tmp_path)[0]
    got, err, _ = invoke(argv)
    assert got == code, err
    assert "Traceback" not in err
    assert needle in err, err
    assert err.startswith("rnnrepl: error: ") and err.count("\n") == 1, err  # click's too
    if code != 2:  # a bad command line fails before --debug is read
        got, err, _ = invoke(["--debug", *argv])
        assert got == code
        assert "Traceback (most recent call last)" in err and "rnnrepl: error: " in err


def test_out_of_memory_in_the_forward_pass_exits_5_and_keeps_the_last_model(
    files, tmp_path, monkeypatch
):
    out = tmp_path / "oom.safetensors"
    assert invoke(["train", str(files["CORPUS"]), "-o", str(out), *TRAIN])[0] == 0
    before = out.read_bytes()

    def oom(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(models.RNNLM, "features", oom)
    code, err, _ = invoke(
        ["train", str(files["CORPUS"]), "-o", str(out), "--resume", *TRAIN[:-1], "8"]
    )
    assert code == 5, err
    assert "out of memory" in err and "--batch-size" in err and "Traceback" not in err
    last = err.splitlines()[-1]  # after the data summary that training writes to stderr
    assert last.startswith("rnnrepl: error: out of memory") and err.count("rnnrepl: error") == 1
    assert out.read_bytes() == before
    monkeypatch.undo()
    modelfile.load_model(out)  # still a good model


def test_full_disk_while_saving_exits_5_and_leaves_no_file(files, tmp_path, monkeypatch):
    real_write = modelfile.atomic_write_bytes

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(modelfile, "atomic_write_bytes", full)
    monkeypatch.setattr(resume, "atomic_write_bytes", full)
    out = tmp_path / "full"
    code, err, _ = invoke(["train", str(files["CORPUS"]), "-o", str(out), *TRAIN])
    assert code == 5, err
    assert "No space left on device" in err and "Traceback" not in err
    assert not (tmp_path / "full.safetensors").exists()
    assert not (tmp_path / "full.state.safetensors").exists()
    assert real_write is not full


def test_a_bug_is_exit_1_with_a_hint_and_debug_shows_where(files, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(modelfile, "resolve_model_path", broken)
    code, err, _ = invoke(["info", str(files["MODEL"])])
    assert code == 1
    assert err == (
        "rnnrepl: error: internal error: ZeroDivisionError: division by zero — re-run with "
        "--debug for a traceback\n"
    )
    code, err, _ = invoke(["--debug", "info", str(files["MODEL"])])
    assert code == 1 and "Traceback" in err and "in broken" in err


def test_success_is_0_and_json_stays_parseable(files):
    model = str(files["MODEL"])
    for argv in (["info", model, "--json"], ["predict", model, "the", "--json"]):
        code, err, out = invoke(argv)
        assert code == 0 and err == ""
        assert json.loads(out)


@pytest.mark.parametrize("args", WORKING, ids=[" ".join(a[4:]) for a in WORKING])
def test_a_temperature_or_top_p_that_underflows_is_greedy(files, tmp_path, args):
    code, err, out = invoke(_fill(args, files, tmp_path))
    assert code == 0 and err == "", err
    _, _, greedy = invoke(_fill(WORKING[-1], files, tmp_path))
    assert out == greedy


@pytest.mark.parametrize("seed", SEEDS)
def test_every_64_bit_seed_works_in_generate_chat_and_train(files, tmp_path, seed):
    model = str(files["MODEL"])
    code, err, out = invoke(["generate", model, "-p", "the", "-n", "4", "--seed", seed])
    assert code == 0 and err == "", err
    code, err, _ = invoke(["chat", model, "--seed", seed, "-n", "4"], stdin="the\n")
    assert code == 0, err
    out_path = str(tmp_path / "seeded")
    code, err, _ = invoke(["train", str(files["CORPUS"]), "-o", out_path, *TRAIN, "--seed", seed])
    assert code == 0, err


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("/set temperature nan", "finite"),
        ("/set temperature inf", "finite"),
        ("/set top_p nan", "finite"),
        ("/set top_p -inf", "finite"),
        (f"/set seed {2**64}", "64 bits"),
        (f"/set seed {-(2**63) - 1}", "64 bits"),
    ],
)
def test_set_in_the_repl_refuses_what_would_crash(files, line, needle):
    code, err, out = invoke(["chat", str(files["MODEL"]), "-n", "3"], stdin=f"{line}\nthe\n")
    assert code == 0, err
    assert needle in err + out and "Traceback" not in err + out


def test_set_in_the_repl_takes_an_underflowing_temperature_as_greedy(files):
    model = str(files["MODEL"])
    stdin = "/set temperature 1e-300\n/set top_p 5e-324\nthe\n"
    code, err, out = invoke(["chat", model, "-n", "6"], stdin=stdin)
    assert code == 0 and "Traceback" not in err, err
    code, err, greedy = invoke(["chat", model, "-n", "6", "--temperature", "0"], stdin="the\n")
    assert out.splitlines()[-1] == greedy.splitlines()[-1]


ALLOC = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 123456789 bytes."
OOMS = [
    (MemoryError(), ""),
    (RuntimeError(f"[enforce fail at alloc_cpu.cpp:127] {ALLOC} Error code 12"), "117.7 MiB"),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "2.00 GiB"),
    (RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"), ""),
    (RuntimeError("not enough memory: you tried to allocate 4096 bytes"), "allocate 4.0 KiB)"),
]


@pytest.mark.parametrize(("exc", "size"), OOMS, ids=[repr(e)[:40] for e, _ in OOMS])
def test_out_of_memory_anywhere_is_exit_5_with_the_size_and_a_fix(files, monkeypatch, exc, size):
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(modelfile, "read_verified", fail)  # while loading, in every command
    for argv in (["info", str(files["MODEL"])], ["predict", str(files["MODEL"]), "the"]):
        code, err, _ = invoke(argv)
        assert code == 5, err
        assert err.startswith("rnnrepl: error: out of memory loading or running the model")
        assert size in err and "ulimit -v" in err and err.count("\n") == 1, err


def test_out_of_memory_building_the_vocabulary_suggests_max_vocab(files, tmp_path, monkeypatch):
    import rnnrepl.text.tokenizers

    def fail(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(rnnrepl.text.tokenizers, "build_tokenizer", fail)
    code, err, _ = invoke(["train", str(files["CORPUS"]), "-o", str(tmp_path / "v"), *TRAIN])
    assert code == 5, err
    assert err == (
        "rnnrepl: error: out of memory while training — lower --batch-size, --seq-len or "
        "--hidden (words: --max-vocab)\n"
    )


def test_a_runtime_error_that_is_not_about_memory_stays_a_bug(files, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(modelfile, "read_verified", fail)
    code, err, _ = invoke(["info", str(files["MODEL"])])
    assert code == 1 and "internal error: RuntimeError: shape mismatch" in err
