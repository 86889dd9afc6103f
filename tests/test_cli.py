from __future__ import annotations

import json
import math

import pytest

from tests.helpers import TOY, run_cli


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A tiny char model trained by the real CLI once for this module."""
    d = tmp_path_factory.mktemp("cli")
    corpus = d / "toy.txt"
    corpus.write_text(TOY * 80)
    out = d / "toy"
    r = run_cli(
        "train",
        str(corpus),
        "-o",
        str(out),
        "--steps",
        "120",
        "--hidden",
        "48",
        "--embed",
        "16",
        "--layers",
        "1",
        "--seq-len",
        "32",
        "--batch-size",
        "8",
        "--eval-every",
        "60",
        "--lr",
        "0.01",
    )
    assert r.returncode == 0, r.stderr
    assert "saved" in r.stdout
    return str(out) + ".safetensors"


@pytest.fixture(scope="module")
def word_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("cliw")
    corpus = d / "toy.txt"
    corpus.write_text(TOY * 80)
    r = run_cli(
        "train",
        str(corpus),
        "-o",
        str(d / "w"),
        "--level",
        "word",
        "--steps",
        "80",
        "--hidden",
        "32",
        "--embed",
        "16",
        "--seq-len",
        "8",
        "--batch-size",
        "8",
        "--eval-every",
        "40",
        "--lr",
        "0.01",
    )
    assert r.returncode == 0, r.stderr
    return str(d / "w.safetensors")


def test_train_shows_progress_summary_and_sample(model_path, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TOY * 40)
    r = run_cli(
        "train",
        str(corpus),
        "-o",
        str(tmp_path / "m"),
        "--steps",
        "20",
        "--hidden",
        "16",
        "--embed",
        "8",
        "--seq-len",
        "16",
        "--batch-size",
        "4",
        "--eval-every",
        "10",
    )
    assert r.returncode == 0, r.stderr
    assert "val" in r.stderr and "bpc" in r.stderr
    assert "sample at step 10" in r.stderr
    assert "training summary" in r.stderr and "best val loss" in r.stderr
    assert (tmp_path / "m.safetensors").exists()


def test_generate_is_reproducible_with_a_seed_and_takes_the_prompt_as_argument(model_path):
    a = run_cli("generate", model_path, "-p", "the ", "-n", "40", "--seed", "5")
    b = run_cli("generate", model_path, "the ", "-n", "40", "--seed", "5")  # ollama's style
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("the ")
    assert len(a.stdout) == len("the ") + 40 + 1


def test_generate_greedy_and_stop(model_path):
    r = run_cli("generate", model_path, "-p", "the cat", "-n", "100", "--greedy", "--stop", "the")
    assert r.returncode == 0, r.stderr
    generated = r.stdout[len("the cat") :].rstrip("\n")
    assert generated.endswith("the") and generated.count("the") == 1, generated


def test_predict_json_is_a_distribution(model_path):
    r = run_cli("predict", model_path, "the ca", "-k", "3", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    probs = [t["prob"] for t in data["top"]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True)
    assert data["top"][0]["token"] == "t"


def test_word_predict_completes_the_partial_word(word_model):
    r = run_cli("predict", word_model, "the d", "--json")
    data = json.loads(r.stdout)
    assert data["partial"] == "d"
    assert [t["token"] for t in data["top"]] == ["dog"]
    assert data["top"][0]["prob"] == pytest.approx(1.0)
    r = run_cli("predict", word_model, "the end", "--json")
    tokens = [t["token"] for t in json.loads(r.stdout)["top"]]
    assert r.returncode == 0 and tokens


def test_score_mean_equals_eval(model_path, tmp_path):
    held = tmp_path / "held.txt"
    held.write_text("the dog sat on the mat.\n")
    s = run_cli("score", model_path, "-f", str(held), "--json")
    e = run_cli("eval", model_path, str(held), "--json")
    assert s.returncode == 0 and e.returncode == 0, s.stderr + e.stderr
    score, ev = json.loads(s.stdout), json.loads(e.stdout)
    losses = [t["loss"] for t in score["steps"]]
    assert len(losses) == ev["total"]["tokens"] == len("the dog sat on the mat.\n")
    mean = sum(losses) / len(losses)
    assert mean == pytest.approx(score["cross_entropy"], rel=1e-6)
    assert ev["total"]["cross_entropy"] == pytest.approx(mean, rel=1e-5)
    assert ev["total"]["perplexity"] == pytest.approx(math.exp(mean), rel=1e-5)
    assert ev["total"]["bits_per_char"] == pytest.approx(mean / math.log(2), rel=1e-5)
    for t in score["steps"]:
        assert t["loss"] == pytest.approx(-math.log(t["prob"]), rel=1e-5, abs=1e-9)


def test_score_table_output(model_path):
    r = run_cli("score", model_path, "hello", "-k", "2")
    assert r.returncode == 0, r.stderr
    assert "J_t" in r.stdout and "perplexity" in r.stdout and "bpc" in r.stdout


def test_info_json(model_path):
    r = run_cli("info", model_path, "--json")
    data = json.loads(r.stdout)
    assert data["level"] == "char" and data["config"]["hidden"] == 48
    assert data["training"]["steps"] > 0 and "train" in data["training"]["command"]
    assert run_cli("info", model_path).returncode == 0


def test_model_directory_and_bare_name_resolve(model_path):
    directory = str(model_path).rsplit("/", 1)[0]
    r = run_cli("info", directory, "--json")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["train", "/nonexistent/file.txt", "-o", "x"], 3, "/nonexistent/file.txt"),
        (["train", "EMPTY", "-o", "x"], 3, "empty"),
        (["train", "SHORT", "-o", "x", "--seq-len", "64"], 3, "too short"),
        (["train", "BINARY", "-o", "x"], 3, "binary"),
        (["train", "SHORT", "-o", "x", "--arch", "transformer"], 2, "transformer"),
        (["info", "NOTMODEL"], 4, "NOTMODEL"),
        (["info", "/nonexistent/model"], 4, "not found"),
        (["generate", "MODEL", "--top-p", "0"], 2, "top-p"),
        (["score", "MODEL"], 2, "TEXT"),
    ],
)
def test_errors_are_one_line_with_exit_codes(tmp_path, model_path, args, code, needle):
    files = {
        "EMPTY": tmp_path / "empty.txt",
        "SHORT": tmp_path / "short.txt",
        "BINARY": tmp_path / "bin.dat",
        "NOTMODEL": tmp_path / "fake.safetensors",
    }
    files["EMPTY"].write_text("")
    files["SHORT"].write_text("abcdefghij\n")
    files["BINARY"].write_bytes(b"\x00\x01\x02binary\x00" * 50)
    files["NOTMODEL"].write_bytes(b"this is not a model" * 10)
    args = [str(files[a]) if a in files else model_path if a == "MODEL" else a for a in args]
    needle = str(files[needle]) if needle in files else needle
    r = run_cli(*args)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert needle in r.stderr
    if code != 2:
        assert r.stderr.startswith("rnnrepl: error: ") and r.stderr.count("\n") == 1


def test_duration_parsing():
    from rnnrepl.cli.main import parse_duration

    assert parse_duration("90") == 90
    assert parse_duration("5m") == 300
    assert parse_duration("1h30m") == 5400
    assert parse_duration("71s") == 71
    with pytest.raises(Exception):
        parse_duration("soon")
