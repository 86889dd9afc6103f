"""Backward character models (`train --reverse`, Flair's recipe): trained on each file's text
reversed as a whole, the direction recorded in the model file, every command that feeds such a
model text reversing it the same way, and the commands that continue text refusing it."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import write
from helpers import invoke

from rnnrepl.store.modelfile import load_model, update_training

# Each file begins and ends with a newline, so a file of the reversed text reads (its final
# newline included) exactly as the reversed text of the original.
ONE = "\n" + "the cat sat on the mat. a dog ran far away!\n" * 30
TWO = "\n" + "quick brown foxes jump over lazy dogs, twice.\n" * 25
SMALL = ["--layers", "1", "--hidden", "12", "--seq-len", "16", "--batch-size", "4"]
SMALL += ["--steps", "20", "--seed", "1", "--eval-every", "10"]


def _train(out, *args: str, stdin: str | None = None):
    result = invoke("train", *args, "-o", str(out), *SMALL, stdin=stdin)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A backward model of two files, and a forward model of the two files reversed by hand."""
    d = tmp_path_factory.mktemp("reverse")
    one, two = write(d / "one.txt", ONE), write(d / "two.txt", TWO)
    r_one, r_two = write(d / "r_one.txt", ONE[::-1]), write(d / "r_two.txt", TWO[::-1])
    backward = _train(d / "backward.safetensors", str(one), str(two), "--reverse")
    forward = _train(d / "forward.safetensors", str(r_one), str(r_two))
    return {"dir": d, "backward": backward, "forward": forward, "files": (one, two)}


def _weights(path):
    return load_model(path).model.state_dict()


def test_training_reversed_equals_training_on_the_reversed_files(models):
    b, f = _weights(models["backward"]), _weights(models["forward"])
    assert all(torch.equal(b[k], f[k]) for k in b)
    training = load_model(models["backward"]).training
    assert training["direction"] == "backward"
    assert "read backwards" in training["validation"]
    assert load_model(models["forward"]).training["direction"] == "forward"


def test_standard_input_is_reversed_the_same_way(models):
    out = _train(models["dir"] / "stdin.safetensors", "-", "--reverse", stdin=ONE)
    alone = _train(models["dir"] / "one-file.safetensors", str(models["files"][0]), "--reverse")
    a, b = _weights(out), _weights(alone)
    assert all(torch.equal(a[k], b[k]) for k in a)
    sha = [load_model(p).training["corpus_sha256"] for p in (out, alone)]
    assert sha[0] == sha[1]  # of the text as read, on both paths


def _figures(*args: str) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_scoring_a_backward_model_scores_the_reversed_text(models, tmp_path):
    """The reversal at scoring gives the figure of the reversed text under the same weights
    labelled forward: the bits per character the model sees."""
    labelled = shutil.copy(models["backward"], tmp_path / "labelled.safetensors")
    update_training(labelled, {"direction": "forward"})
    one = models["files"][0]
    reversed_one = write(tmp_path / "reversed.txt", ONE[::-1])
    back = _figures("eval", str(models["backward"]), str(one))["total"]
    fwd = _figures("eval", str(labelled), str(reversed_one))["total"]
    assert back["bits_per_char"] == fwd["bits_per_char"] and back["tokens"] == len(ONE)
    unreversed = _figures("eval", str(labelled), str(one))["total"]
    assert unreversed["bits_per_char"] != back["bits_per_char"]  # the reversal did something
    scored = _figures("score", str(models["backward"]), "-f", str(one))
    direct = _figures("score", str(labelled), "-f", str(reversed_one))
    assert scored == direct
    assert scored["bits_per_char"] == pytest.approx(back["bits_per_char"], rel=1e-4)


def test_info_shows_the_direction(models):
    assert _figures("info", str(models["backward"]))["direction"] == "backward"
    assert _figures("info", str(models["forward"]))["direction"] == "forward"
    shown = invoke("info", str(models["backward"])).output
    assert "direction     │ backward (trained on reversed text: reads right to left)" in shown
    assert "direction" not in invoke("info", str(models["forward"])).output  # the default
    # a file from before --reverse records no direction: forward
    old = _figures("info", "shakespeare-char")
    assert "direction" not in old["training"] and old["direction"] == "forward"


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "{m}", "-n", "5"],
        ["predict", "{m}", "the"],
        ["chat", "{m}"],
        ["eval", "{m}", "{f}", "--ksr"],
    ],
)
def test_commands_that_continue_text_refuse_a_backward_model(models, command):
    args = [a.format(m=models["backward"], f=models["files"][0]) for a in command]
    result = invoke(*args, stdin="the cat\n")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "backward model" in lines[0] and "right to left" in lines[0]


def test_reverse_is_for_character_models(models):
    for level in ("word", "bpe"):
        result = invoke("train", str(models["files"][0]), "--reverse", "--level", level)
        assert result.exit_code == 2
        assert result.output.strip().splitlines() == [
            "rnnrepl: error: --reverse trains a backward character model: it needs --level "
            "char — drop --level, or drop --reverse"
        ]
