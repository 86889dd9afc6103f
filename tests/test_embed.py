"""Contextual string embeddings (`rnnrepl embed`, `rnnrepl similar`; Akbik et al. 2018): each
word's vector is the forward model's top-layer state after the character following the word,
joined to the backward model's after the character preceding it."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import invoke
from safetensors import safe_open

from rnnrepl.config import ModelConfig
from rnnrepl.model.lm import build_model
from rnnrepl.store.modelfile import load_model, save_model
from rnnrepl.text.tokenizers import CharVocab, WordVocab

# a combining mark (e + U+0301), an astral character, CJK without spaces, a tab and a newline
UNICODE = "e\u0301té 𝒳yz 日本語\tok\nthe bank and the bank"
TEXT = "the river bank was steep; the bank lent money to the bank manager."
CHARS = sorted(set(UNICODE + TEXT + " \n"))


def _model_file(path, direction: str, arch: str, hidden: int, layers: int, seed: int):
    """A char model built directly (random weights: every state still depends on its context)."""
    torch.manual_seed(seed)
    tok = CharVocab(["<unk>", *CHARS])
    cfg = ModelConfig(vocab_size=tok.size, arch=arch, embed=8, hidden=hidden, layers=layers)
    return save_model(path, build_model(cfg), tok, {"direction": direction})


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A forward LSTM 2x10 and a backward GRU 1x6: the two may differ in size."""
    d = tmp_path_factory.mktemp("embed")
    fwd = _model_file(d / "fwd", "forward", "lstm", 10, 2, seed=1)
    bwd = _model_file(d / "bwd", "backward", "gru", 6, 1, seed=2)
    return str(fwd), str(bwd)


def _json(*args: str) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _last_state(path: str, chars: str) -> torch.Tensor:
    """The top layer's output after reading the start token then `chars`, through the
    recurrent layer on the whole sequence at once."""
    loaded = load_model(path)
    ids = [loaded.tokenizer.index["\n"], *(loaded.tokenizer.index[c] for c in chars)]
    with torch.no_grad():
        x = loaded.model.embed(torch.tensor([ids]))
        out = loaded.model.rnn(x)[0]  # (1, t, hidden): the top layer at every step
    return out[0, -1]


@pytest.mark.parametrize("text", [TEXT, UNICODE])
def test_a_vector_is_the_states_at_the_papers_positions(pair, text):
    got = _json("embed", *pair, text)
    words = text.split()
    assert got["words"] == words
    assert [text[a:b] for a, b in got["offsets"]] == words
    assert got["dims"] == {"forward": 10, "backward": 6, "total": 16}
    # As in Flair: after the start token, forward reads text + " ", backward reverse(" " + text)
    for (start, end), vector in zip(got["offsets"], got["vectors"], strict=True):
        # forward: has read the text up to and including the character after the word
        forward = _last_state(pair[0], (text + " ")[: end + 1])
        # backward: has read from the end of the text back to the character before the word
        backward = _last_state(pair[1], (" " + text)[start:][::-1])
        want = torch.cat([forward, backward])
        torch.testing.assert_close(torch.tensor(vector), want, atol=1e-5, rtol=1e-5)
        one_early = _last_state(pair[0], text[:end])  # an off-by-one is far away
        assert (torch.tensor(vector[:10]) - one_early).abs().max() > 1e-2


def test_offsets_count_code_points(pair):
    got = _json("embed", *pair, UNICODE)
    assert got["words"][:4] == ["e\u0301té", "𝒳yz", "日本語", "ok"]
    assert got["offsets"][:4] == [[0, 4], [5, 8], [9, 12], [13, 15]]


def test_the_same_word_in_two_contexts_gets_two_vectors(pair):
    got = _json("embed", *pair, TEXT)
    banks = [v for w, v in zip(got["words"], got["vectors"], strict=True) if w == "bank"]
    assert len(banks) == 3
    a, b = torch.tensor(banks[0]), torch.tensor(banks[1])
    assert not torch.allclose(a[:10], b[:10], atol=1e-3)  # the forward halves differ
    assert not torch.allclose(a[10:], b[10:], atol=1e-3)  # and the backward halves


def test_chunked_equals_whole_and_the_file_holds_the_same(pair, tmp_path):
    text = (TEXT + "\n") * 40
    source = tmp_path / "long.txt"
    source.write_text(text, encoding="utf-8")
    whole = _json("embed", *pair, "-f", str(source), "--chunk", "100000")
    for chunk in ("1", "7", "64"):
        chunked = _json("embed", *pair, "-f", str(source), "--chunk", chunk)
        assert chunked["offsets"] == whole["offsets"]
        torch.testing.assert_close(
            torch.tensor(chunked["vectors"]), torch.tensor(whole["vectors"]), atol=1e-5, rtol=1e-5
        )
    out = tmp_path / "vectors.safetensors"
    result = invoke("embed", *pair, "-f", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: {len(text.split())} words x 16 dims" in result.output
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
        vectors = f.get_tensor("vectors")
    assert json.loads(meta["words"]) == whole["words"]
    assert json.loads(meta["offsets"]) == whole["offsets"]
    assert vectors.shape == (len(text.split()), 16) and vectors.dtype == torch.float32
    torch.testing.assert_close(vectors, torch.tensor(whole["vectors"]), atol=0, rtol=0)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file


def test_similar_ranks_by_cosine(pair, tmp_path):
    source = tmp_path / "text.txt"
    source.write_text(TEXT, encoding="utf-8")
    vectors = torch.tensor(_json("embed", *pair, "-f", str(source))["vectors"])
    got = _json("similar", *pair, "2", "-f", str(source), "-k", "4")
    assert got["query"]["word"] == "bank" and got["query"]["before"] == "the river"
    unit = torch.nn.functional.normalize(vectors, dim=1)
    cosine = (unit @ unit[2]).tolist()
    others = sorted((i for i in range(len(cosine)) if i != 2), key=lambda i: -cosine[i])
    assert [r["index"] for r in got["nearest"]] == others[:4]
    for row in got["nearest"]:
        assert row["similarity"] == pytest.approx(cosine[row["index"]], abs=1e-5)
    shown = invoke("similar", *pair, "2", "-f", str(source), "-k", "2")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "word 2: the river [bank] was steep; the bank" and len(lines) == 3


def _one_line(result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnrepl: error: "), result.output
    assert all(w in lines[0] for w in words), lines[0]


def test_refused_inputs_are_one_line(pair, tmp_path):
    fwd, bwd = pair
    _one_line(invoke("embed", fwd, fwd, "the bank"), 2, "BACKWARD must be a backward model")
    _one_line(invoke("embed", bwd, fwd, "the bank"), 2, "FORWARD must be a forward model")
    _one_line(invoke("embed", fwd, bwd, " \n\t "), 3, "nothing to embed")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    _one_line(invoke("embed", fwd, bwd, "-f", str(empty)), 3, "nothing to embed")
    _one_line(invoke("embed", fwd, bwd, "a", "--json", "-o", "x"), 2, "give one of them")
    _one_line(invoke("embed", fwd, bwd), 2, "give TEXT or -f FILE")
    source = tmp_path / "t.txt"
    source.write_text("the bank", encoding="utf-8")
    _one_line(invoke("similar", fwd, bwd, "2", "-f", str(source)), 2, "out of range")
    torch.manual_seed(0)
    words = WordVocab(["<unk>", "\n", "the", "bank"])
    word_model = build_model(ModelConfig(vocab_size=words.size, embed=4, hidden=4, layers=1))
    word_file = str(save_model(tmp_path / "word", word_model, words, {}))
    _one_line(invoke("embed", word_file, bwd, "the bank"), 2, "FORWARD is a word-level model")
