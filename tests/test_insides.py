"""`rnnrepl explain` and `rnnrepl neurons`: the insides of a model, with its own numbers."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import write
from helpers import invoke

from rnnrepl.config import ModelConfig
from rnnrepl.infer import neurons as nr
from rnnrepl.infer.insides import most_active, trace
from rnnrepl.model.lm import build_model
from rnnrepl.store.modelfile import save_model
from rnnrepl.text.tokenizers import CharVocab

TEXT = 'the cat said "hello" (to the dog).\nthe dog said "woof".\n'


def _model(arch: str, hidden: int = 6, layers: int = 2, one_hot: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    tok = CharVocab.build(Counter(TEXT))
    embed = tok.size if one_hot else 5
    cfg = ModelConfig(tok.size, arch, embed, hidden, layers, one_hot=one_hot)
    return build_model(cfg).eval(), tok


def _saved(tmp_path, arch="lstm", **kw):
    model, tok = _model(arch, **kw)
    return str(save_model(tmp_path / f"{arch}.safetensors", model, tok, {}))


def _start(tok) -> int:
    return tok.index["\n"]


@pytest.mark.parametrize("arch", ["rnn", "gru", "lstm"])
def test_the_trace_is_the_models_own_forward_pass(arch):
    model, tok = _model(arch)
    ids = tok.encode(TEXT)
    tr = trace(model, ids, _start(tok))
    x = torch.tensor([[_start(tok), *ids[:-1]]])
    with torch.no_grad():
        h, _ = model.features(x, None)
        logits, _ = model(x)
    np.testing.assert_allclose(tr.layers[-1].h, h[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(tr.logp, torch.log_softmax(logits[0], -1).numpy(), atol=1e-5)
    assert tr.loss.shape == (len(ids),) and tr.inputs[1:] == ids[:-1]


def test_gates_reproduce_the_hidden_state():
    lstm = trace(*_model("lstm")[:1], TEXT_IDS(), 0).layers
    for layer in lstm:  # h_t = o_t * tanh(c_t), c_t = f_t c_{t-1} + i_t g_t
        g = layer.gates
        np.testing.assert_allclose(layer.h, g["o"] * np.tanh(layer.c), atol=1e-5)
        c_prev = np.vstack([np.zeros((1, layer.c.shape[1])), layer.c[:-1]])
        np.testing.assert_allclose(layer.c, g["f"] * c_prev + g["i"] * g["g"], atol=1e-5)
    gru = trace(*_model("gru")[:1], TEXT_IDS(), 0).layers
    for layer in gru:  # h_t = (1 - z_t) n_t + z_t h_{t-1}
        g, h = layer.gates, layer.h
        h_prev = np.vstack([np.zeros((1, h.shape[1])), h[:-1]])
        np.testing.assert_allclose(h, (1 - g["z"]) * g["n"] + g["z"] * h_prev, atol=1e-5)


def TEXT_IDS() -> list[int]:
    return CharVocab.build(Counter(TEXT)).encode(TEXT)


def test_window_model_trace():
    torch.manual_seed(0)
    model = build_model(ModelConfig(9, "window", embed=3, hidden=5, window=3)).eval()
    ids = [1, 2, 3, 4, 5]
    tr = trace(model, ids, 0)
    with torch.no_grad():
        h, _ = model.features(torch.tensor([[0, *ids[:-1]]]), None)
    np.testing.assert_allclose(tr.layers[0].h, h[0].numpy(), atol=1e-6)


def _numbers(line: str) -> list[float]:
    return [float(v) for v in re.findall(r"[+-]\d\.\d\d", line)]


def test_explain_shows_every_step_with_the_figures_of_score(tmp_path):
    path = _saved(tmp_path, "lstm", one_hot=True)
    result = invoke("explain", path, "the cat")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    heads = [line for line in lines if line.startswith("t=")]
    assert len(heads) == 7 and "one-hot #" in heads[0]
    for row in ("h1", "c1", "i1", "f1", "g1", "o1", "h2", "c2", "y_t"):
        assert sum(line.split()[0] == row for line in lines if line.strip()) == 7
    scored = json.loads(invoke("score", path, "the cat", "--json").output)["steps"]
    got = [float(re.search(r"J_t (\d+\.\d+)", h).group(1)) for h in heads]
    assert got == pytest.approx([s["loss"] for s in scored], abs=1e-3)
    model, tok = _model("lstm", one_hot=True)
    tr = trace(model, tok.encode("the cat"), _start(tok))
    h1 = [line for line in lines if line.split()[:1] == ["h1"]]
    assert _numbers(h1[3]) == pytest.approx(tr.layers[0].h[3].tolist(), abs=0.006)
    assert invoke("score", path, "the cat", "--explain", "-k", "4").output == result.output


def test_explain_in_colour_draws_cells_not_numbers(tmp_path):
    path = _saved(tmp_path, "gru")
    result = invoke("explain", path, "cat", env={"NO_COLOR": "", "FORCE_COLOR": "1"})
    assert result.exit_code == 0
    h1 = [line for line in result.output.splitlines() if "h1" in line]
    assert len(h1) == 3 and all("\x1b[" in line and not _numbers(line) for line in h1)


def test_explain_json_has_every_array(tmp_path):
    path = _saved(tmp_path, "lstm", hidden=7)
    data = json.loads(invoke("explain", path, "the", "--json").output)
    assert data["arch"] == "lstm" and len(data["steps"]) == 3
    step = data["steps"][1]
    assert step["input"] == "t" and step["target"] == "h"
    for layer in step["layers"]:
        assert set(layer) == {"h", "c", "i", "f", "g", "o"} and len(layer["h"]) == 7
    assert sum(step["y"]) == pytest.approx(1, abs=1e-4)
    assert step["p"] == pytest.approx(step["y"][data["vocab"].index("h")], abs=1e-5)


def test_a_large_layer_shows_its_most_active_units(tmp_path):
    path = _saved(tmp_path, "rnn", hidden=40, layers=1)
    result = invoke("explain", path, "the cat", "--units", "5")
    assert "the 5 most active of 40 units" in result.output
    h1 = [line for line in result.output.splitlines() if line.split()[:1] == ["h1"]]
    assert all(len(_numbers(line)) == 5 for line in h1)
    model, tok = _model("rnn", hidden=40, layers=1)
    layer = trace(model, tok.encode("the cat"), _start(tok)).layers[0]
    means = np.abs(layer.h).mean(0)
    assert means[most_active(layer, 5)].min() >= np.sort(means)[-5] - 1e-9


def test_explain_refuses_what_it_cannot_show(tmp_path):
    path = _saved(tmp_path, "gru")
    for args in (["explain", path, ""], ["explain", path, "a" * 501], ["explain", path]):
        result = invoke(*args)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_properties_of_characters():
    props = nr.properties('a "b c" (d)\nef')
    assert props["in quotes"].tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert props["in brackets"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert props["line position"].tolist()[-4:] == [11, 0, 1, 2]
    assert props["word start"].nonzero()[0].tolist() == [0, 3, 5, 9, 12]
    assert props["line break"].nonzero()[0].tolist() == [11]


def test_the_unit_that_tracks_a_property_is_found():
    rng = np.random.default_rng(0)
    props = nr.properties(TEXT * 3)
    acts = rng.normal(size=(len(TEXT) * 3, 10))
    acts[:, 7] = props["in quotes"] * 0.8 + rng.normal(scale=0.1, size=len(TEXT) * 3)
    best = [m for m in nr.best_units([acts[:, :4], acts], props, 1) if m.prop == "in quotes"]
    assert (best[0].layer, best[0].unit) == (2, 7) and best[0].r > 0.9
    r = nr.correlations(acts, props["line position"])
    assert r[3] == pytest.approx(np.corrcoef(acts[:, 3], props["line position"])[0, 1])


def test_neurons_lists_units_and_colours_by_one(tmp_path):
    path = _saved(tmp_path, "lstm", hidden=8)
    corpus = write(tmp_path / "text.txt", TEXT * 4)
    table = invoke("neurons", path, "-f", str(corpus))
    assert table.exit_code == 0, table.output
    for prop in nr.PROPERTIES:
        assert prop in table.output
    shown = invoke("neurons", path, "-f", str(corpus), "--unit", "2:3")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == TEXT.splitlines()[0] and re.fullmatch(r"[0-9]+", lines[1])
    assert len(lines[1]) == len(lines[0])
    data = json.loads(invoke("neurons", path, "-f", str(corpus), "--unit", "2:3", "--json").output)
    model, tok = _model("lstm", hidden=8)
    ids = tok.encode(TEXT)
    with torch.no_grad():  # the state after reading character j
        h, _ = model.features(torch.tensor([[_start(tok), *ids]]), None)
    assert data["activation"][: len(ids)] == pytest.approx(h[0, 1:, 3].tolist(), abs=1e-5)


def test_neurons_refuses_word_models_and_bad_units(tmp_path):
    path = _saved(tmp_path, "gru")
    corpus = write(tmp_path / "text.txt", TEXT)
    for spec in ("3:0", "1:6", "x", "1:-1"):
        result = invoke("neurons", path, "-f", str(corpus), "--unit", spec)
        assert result.exit_code == 2 and "Traceback" not in result.output, spec
    words = write(tmp_path / "w.txt", "a b c d e f g\n" * 200)
    out = tmp_path / "w.safetensors"
    trained = invoke("train", str(words), "-o", str(out), "--level", "word", "--steps", "2",
                     "--hidden", "4", "--embed", "4", "--layers", "1", "--batch-size", "2",
                     "--seq-len", "4")  # fmt: skip
    assert trained.exit_code == 0, trained.output
    result = invoke("neurons", str(out), "-f", str(words))
    assert result.exit_code == 2 and "character models" in result.output
