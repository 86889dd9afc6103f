"""One-hot inputs (`--one-hot`, `--embed 0`): the notes' toy RNN, whose input at each step is the
token's one-hot vector and which learns no embedding."""

from __future__ import annotations

import shutil

import torch
from conftest import write
from helpers import invoke

from rnnrepl.config import ModelConfig
from rnnrepl.model.lm import build_model
from rnnrepl.model.step import fast_step
from rnnrepl.store.home import models_home
from rnnrepl.store.modelfile import load_model, save_model

HELLO = "hello hello hell help hole he hello\n" * 60
SMALL = ["--layers", "1", "--hidden", "12", "--seq-len", "16", "--batch-size", "4"]


def _train(tmp_path, name: str, *extra: str, text: str = HELLO):
    corpus = write(tmp_path / "hello.txt", text)
    out = tmp_path / f"{name}.safetensors"
    args = ["train", str(corpus), "-o", str(out), *SMALL, "--steps", "30", "--seed", "1", *extra]
    return invoke(*args), out


def test_one_hot_training_learns_no_embedding(tmp_path):
    result, out = _train(tmp_path, "toy", "--arch", "rnn", "--one-hot")
    assert result.exit_code == 0, result.output
    loaded = load_model(out)
    v = loaded.config.vocab_size
    assert loaded.config.one_hot and loaded.config.embed == v and not loaded.config.tie
    table = loaded.model.embed.weight
    assert torch.equal(table, torch.eye(v))  # 30 Adam steps later: still the identity
    assert not table.requires_grad
    assert loaded.model.rnn.weight_ih_l0.shape == (12, v)
    info = invoke("info", str(out))
    assert info.exit_code == 0 and "one-hot" in info.output
    learned = 12 * (v + 12 + 2) + 12 * v + v  # the RNN, the decoder and its bias: no table
    assert loaded.model.num_parameters() == learned and f"{learned:,}" in info.output
    models_home().mkdir(parents=True, exist_ok=True)
    shutil.copy(out, models_home() / "toy.safetensors")
    listed = invoke("list", "--json")
    assert f'"parameters": {learned}' in listed.output, listed.output


def test_embed_zero_is_the_same_model_as_one_hot(tmp_path):
    a = _train(tmp_path, "a", "--arch", "gru", "--one-hot")[1]
    b = _train(tmp_path, "b", "--arch", "gru", "--embed", "0")[1]
    wa, wb = load_model(a).model.state_dict(), load_model(b).model.state_dict()
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_the_input_is_the_one_hot_vector():
    """The one-hot model equals an embedding model whose embedding is the identity, and both
    equal the recurrent layer fed literal one-hot vectors."""
    torch.manual_seed(0)
    v = 11
    one_hot = build_model(ModelConfig(vocab_size=v, arch="lstm", embed=v, hidden=7, one_hot=True))
    plain = build_model(ModelConfig(vocab_size=v, arch="lstm", embed=v, hidden=7))
    plain.load_state_dict(one_hot.state_dict())
    assert torch.equal(plain.embed.weight, torch.eye(v))
    ids = torch.randint(0, v, (3, 9))
    with torch.no_grad():
        got, _ = one_hot(ids)
        same, _ = plain(ids)
        h, _ = one_hot.rnn(torch.nn.functional.one_hot(ids, v).float())
        literal = one_hot.head(h)
    assert torch.equal(got, same)
    torch.testing.assert_close(got, literal, atol=1e-6, rtol=1e-6)
    step, state, outs = fast_step(one_hot.eval()), None, []  # the batch-1 path of generation
    for t in range(9):
        out, state = step(ids[:1, t : t + 1], state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, 1), got[:1], atol=1e-5, rtol=1e-5)


def test_window_model_pads_with_the_zero_vector():
    model = build_model(ModelConfig(vocab_size=5, arch="window", embed=5, window=3, one_hot=True))
    table = model.embed.weight
    assert torch.equal(table[:5], torch.eye(5)) and not table[5].any()


def test_every_command_handles_a_one_hot_model(tmp_path):
    out = _train(tmp_path, "toy", "--arch", "lstm", "--one-hot")[1]
    for mode in ("--int8", "--exact"):
        gen = invoke("generate", str(out), "hel", "-n", "20", "--greedy", mode)
        assert gen.exit_code == 0 and gen.output.startswith("hel") and len(gen.output) > 15
    score = invoke("score", str(out), "hello help")
    assert score.exit_code == 0 and "bits per character" in score.output
    chat = invoke("chat", str(out), "-n", "10", "--seed", "2", stdin="hel\nhol\n")
    assert chat.exit_code == 0 and chat.output.strip()
    window = _train(tmp_path, "win", "--arch", "window", "--one-hot")[1]
    assert invoke("generate", str(window), "he", "-n", "10", "--greedy").exit_code == 0


def test_large_vocabulary_is_refused_with_the_limit_and_the_alternative(tmp_path):
    words = " ".join(f"w{i}" for i in range(1500)) + "\n"
    result, out = _train(tmp_path, "big", "--level", "word", "--one-hot", text=words * 3)
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "1,024" in line and "--embed N" in line
    assert not out.exists()


def test_one_hot_refuses_an_embedding_width_or_tying(tmp_path):
    for extra in (["--embed", "16"], ["--tie"]):
        result, out = _train(tmp_path, "x", "--one-hot", *extra)
        assert result.exit_code == 2 and "one-hot" in result.output, result.output
        assert not out.exists()


def test_a_file_whose_one_hot_table_is_not_the_identity_is_refused(tmp_path):
    out = _train(tmp_path, "toy", "--arch", "rnn", "--one-hot")[1]
    loaded = load_model(out)
    with torch.no_grad():
        loaded.model.embed.weight[0, 1] = 0.5
    bad = save_model(tmp_path / "bad.safetensors", loaded.model, loaded.tokenizer, {})
    result = invoke("generate", str(bad), "he", "-n", "5")
    assert result.exit_code == 4
    assert "not the identity" in result.output and "Traceback" not in result.output
