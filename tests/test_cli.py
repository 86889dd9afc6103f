"""The CLI as a user runs it, in this process through click's CliRunner (helpers.invoke): exact
output from a bigram model whose predictions are written by hand, and a tiny trained model for
what training has to learn. Real processes (signals, exit statuses, pipes) are test_exit_codes',
test_signals' and test_repl_lines' business."""

from __future__ import annotations

import json
import math

import pytest

from rnnrepl.cli.params import parse_duration
from tests.helpers import MODEL_CONTRACT, TOY, invoke
from tests.repl_support import CHAIN, CHAIN_ALPHABET, bigram, char_vocab, save

TINY = ["--seq-len", "32", "--batch-size", "8", "--lr", "0.01"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A tiny char model trained by `rnnrepl train` once for this module."""
    d = tmp_path_factory.mktemp("cli")
    corpus = d / "toy.txt"
    corpus.write_text(TOY * 80)
    args = ["--steps", "120", "--hidden", "48", "--embed", "16", "--eval-every", "60", *TINY]
    r = invoke("train", str(corpus), "-o", str(d / "toy"), "--layers", "1", *args)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(f"saved {d / 'toy.safetensors'}")
    return str(d / "toy.safetensors")


@pytest.fixture(scope="module")
def word_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("cliw")
    corpus = d / "toy.txt"
    corpus.write_text(TOY * 80)
    args = ["--steps", "80", "--hidden", "32", "--embed", "16", "--eval-every", "40"]
    r = invoke("train", str(corpus), "-o", str(d / "w"), "--level", "word", *args,
               "--seq-len", "8", "--batch-size", "8", "--lr", "0.01")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    return str(d / "w.safetensors")


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> str:
    """A bigram model writing "dog, sun.\\n" over and over (each successor has p > 0.9999)."""
    path = tmp_path_factory.mktemp("chain") / "chain"
    return str(save(bigram(char_vocab(CHAIN_ALPHABET), CHAIN), path))


def test_help_lists_every_command():
    r = invoke("--help")
    assert r.exit_code == 0 and r.stderr == ""
    # CliRunner formats help 80 columns wide (a terminal of 80 or more gets 78)
    assert r.stdout.split("Commands:\n")[1] == (
        "  chat      Interactive REPL: live next-token probabilities as you type.\n"
        "  corpus    Well-known public corpora: list them, fetch one (sha256-verified).\n"
        "  embed     Contextual string embeddings of each word of TEXT (or -f FILE).\n"
        "  eval      Cross entropy, perplexity and bits per token (char) of FILES...\n"
        "  explain   Inside the model at every step of TEXT: input x_t, hidden state...\n"
        "  generate  Stream a continuation of PROMPT (or -p/--prompt, --prompt-file)...\n"
        "  info      Configuration, vocabulary, parameters, training summary and...\n"
        "  list      Models in the model home and the bundled ones: level, size,...\n"
        "  neurons   Hidden units of a character model that track quotes, brackets,...\n"
        "  predict   Top-k next tokens after TEXT, with probabilities.\n"
        "  rm        Remove models (and their resume state) from the model home, by...\n"
        "  score     Per token: p of the actual token, J_t = -log p, the top-k; then...\n"
        "  similar   The K words of FILE whose contextual vectors are nearest...\n"
        "  train     Train a language model on text FILES, directories, globs, or...\n"
    )


def test_train_shows_progress_summary_and_sample(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TOY * 40)
    r = invoke("train", str(corpus), "-o", str(tmp_path / "m"), "--steps", "20", "--hidden", "16",
               "--embed", "8", "--seq-len", "16", "--batch-size", "4", "--eval-every", "10")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "val" in r.stderr and "bpc" in r.stderr
    assert "sample at step 10" in r.stderr
    assert "training summary" in r.stderr and "best val loss" in r.stderr
    assert (tmp_path / "m.safetensors").exists()


def test_generate_is_reproducible_with_a_seed_and_takes_the_prompt_as_argument(model_path):
    a = invoke("generate", model_path, "-p", "the ", "-n", "40", "--seed", "5")
    b = invoke("generate", model_path, "the ", "-n", "40", "--seed", "5")  # ollama's style
    assert a.exit_code == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("the ")
    assert len(a.stdout) == len("the ") + 40 + 1


def test_generate_greedy_writes_the_prompt_and_its_continuation(chain):
    r = invoke("generate", chain, "-p", "dog", "-n", "12", "--greedy")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "dog, sun.\ndog, \n", "")


def test_generate_stops_after_the_stop_string(chain):
    r = invoke("generate", chain, "dog", "-n", "100", "--greedy", "--stop", "sun")
    assert (r.exit_code, r.stdout) == (0, "dog, sun\n")


def test_predict_shows_the_next_tokens_as_bars(chain):
    r = invoke("predict", chain, "dog", "-k", "3")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        "next token\n"
        ", █████████████████████████████▌ 100.0%\n"
        "h                                  0.0%\n"
        "n                                  0.0%\n"
    )


def test_predict_json_is_a_distribution(model_path):
    r = invoke("predict", model_path, "the ca", "-k", "3", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    probs = [t["prob"] for t in data["top"]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True)
    assert data["top"][0]["token"] == "t"


def test_word_predict_completes_the_partial_word(word_model):
    r = invoke("predict", word_model, "the d", "--json")
    data = json.loads(r.stdout)
    assert data["partial"] == "d"
    assert [t["token"] for t in data["top"]] == ["dog"]
    assert data["top"][0]["prob"] == pytest.approx(1.0)
    r = invoke("predict", word_model, "the end", "--json")
    tokens = [t["token"] for t in json.loads(r.stdout)["top"]]
    assert r.exit_code == 0 and tokens


def test_score_mean_equals_eval(model_path, tmp_path):
    held = tmp_path / "held.txt"
    held.write_text("the dog sat on the mat.\n")
    s = invoke("score", model_path, "-f", str(held), "--json")
    e = invoke("eval", model_path, str(held), "--json")
    assert s.exit_code == 0 and e.exit_code == 0, s.stderr + e.stderr
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


def test_score_table_shows_each_token_then_the_means(chain):
    r = invoke("score", chain, "dog, sun", "-k", "2")
    assert (r.exit_code, r.stderr) == (0, "")
    assert [line.rstrip() for line in r.stdout.splitlines()] == [
        "t ┃ token ┃     p ┃   J_t ┃ top 2 predicted (y_t)",
        "━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━",
        "1 │ d     │ 1.000 │ 0.000 │ d 1.00  n 0.00",
        "2 │ o     │ 1.000 │ 0.000 │ o 1.00  h 0.00",
        "3 │ g     │ 1.000 │ 0.000 │ g 1.00  n 0.00",
        "4 │ ,     │ 1.000 │ 0.000 │ , 1.00  h 0.00",
        "5 │ ␣     │ 1.000 │ 0.000 │ ␣ 1.00  n 0.00",
        "6 │ s     │ 1.000 │ 0.000 │ s 1.00  h 0.00",
        "7 │ u     │ 1.000 │ 0.000 │ u 1.00  n 0.00",
        "8 │ n     │ 1.000 │ 0.000 │ n 1.00  h 0.00",
        "8 tokens, mean J = 0.0001 nats (0.000 bpc), perplexity 1.000; "
        "8 characters, 0.000 bits per character of text",
    ]


def test_info_shows_the_model_its_tokens_and_its_training(chain):
    r = invoke("info", chain)
    assert (r.exit_code, r.stderr) == (0, "")
    assert [line.rstrip() for line in r.stdout.splitlines()] == [
        "rnnrepl model",
        f"file       │ {chain}",
        "model      │ window 1, hidden 17, embed 17, dropout 0",
        "parameters │ 883",
        "tokens     │ char level, 16 (first: ⏎ ␣ , . a c d e g h n o s t u)",
        "made_by    │ tests",
    ]


def test_info_json(model_path):
    r = invoke("info", model_path, "--json")
    data = json.loads(r.stdout)
    assert data["level"] == "char" and data["config"]["hidden"] == 48
    assert data["training"]["steps"] > 0
    assert data["training"]["command"].startswith("rnnrepl train ")


def test_model_directory_and_bare_name_resolve(model_path):
    directory = str(model_path).rsplit("/", 1)[0]
    r = invoke("info", directory, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["path"] == model_path


CONTRACT = MODEL_CONTRACT


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["train", "/nonexistent/file.txt", "-o", "x"], 3,
         "no such file or directory (/nonexistent/file.txt)"),
        (["train", "EMPTY", "-o", "x"], 3, "corpus is empty: 0 characters in 1 file (EMPTY) — "
         "need at least 2 distinct symbols; pass files that contain text"),
        (["train", "SHORT", "-o", "x", "--seq-len", "64"], 3, "training text too short: 9 tokens, "
         "need at least 2080 (batch 32 x span 64 + 1) — use a smaller --batch-size/--seq-len or "
         "more text"),
        (["train", "BINARY", "-o", "x"], 3,
         "looks like a binary file (BINARY) — NUL byte at byte offset 0; pass a text file"),
        (["train", "SHORT", "-o", "x", "--arch", "transformer"], 2, "Invalid value for '--arch': "
         "'transformer' is not one of 'lstm', 'gru', 'rnn', 'window'. — run 'rnnrepl train --help'"),
        (["train", "SHORT", "--time", "soon"], 2, "Invalid value for '--time': 'soon' is not a "
         "duration like 90s, 5m or 1h30m — run 'rnnrepl train --help'"),
        (["info", "NOTMODEL"], 4, "this is a text file, not a model (NOTMODEL) — to train a model "
         "on it: rnnrepl train NOTMODEL -o NAME"),
        (["info", "/nonexistent/model"], 4, f"model not found (/nonexistent/model) — {CONTRACT}"),
        (["generate", "MODEL", "--top-p", "0"], 2, "Invalid value for '--top-p': 0.0 is not in "
         "the range 0<x<=1. — run 'rnnrepl generate --help'"),
        (["generate", "MODEL", "dog", "-p", "dog"], 2,
         "give the prompt once: PROMPT, -p/--prompt or --prompt-file"),
        (["predict", "MODEL"], 2, "Missing argument 'TEXT'. — run 'rnnrepl predict --help'"),
        (["score", "MODEL"], 2, "give TEXT or -f FILE (exactly one)"),
        (["nosuch"], 2, "No such command 'nosuch'. — run 'rnnrepl --help'"),
    ],
)  # fmt: skip
def test_errors_are_one_line_with_exit_codes(tmp_path, chain, args, code, line):
    files = {
        "EMPTY": tmp_path / "empty.txt",
        "SHORT": tmp_path / "short.txt",
        "BINARY": tmp_path / "bin.dat",
        "NOTMODEL": tmp_path / "fake.safetensors",
        "MODEL": chain,
    }
    files["EMPTY"].write_text("")
    files["SHORT"].write_text("abcdefghij\n")
    files["BINARY"].write_bytes(b"\x00\x01\x02binary\x00" * 50)
    files["NOTMODEL"].write_bytes(b"this is not a model" * 10)
    for name, path in files.items():
        line = line.replace(name, str(path))
    r = invoke(*(str(files.get(a, a)) for a in args))
    assert (r.exit_code, r.stdout, r.stderr) == (code, "", f"rnnrepl: error: {line}\n")


def test_duration_parsing():
    assert parse_duration("90") == 90
    assert parse_duration("5m") == 300
    assert parse_duration("1h30m") == 5400
    assert parse_duration("71s") == 71
    with pytest.raises(Exception):
        parse_duration("soon")
