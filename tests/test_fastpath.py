from __future__ import annotations

import pytest
import torch

from rnnrepl.config import ModelConfig
from rnnrepl.infer.predictor import Predictor
from rnnrepl.model import step as fastpath
from rnnrepl.model.lm import build_model
from rnnrepl.model.step import FastStep, fast_step, int8_available
from rnnrepl.store.modelfile import load_model


@pytest.mark.parametrize("arch", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("layers", [1, 3])
def test_fast_step_equals_the_model(arch, tie, layers):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=17, arch=arch, embed=6, hidden=12, layers=layers, tie=tie)
    model = build_model(cfg).eval()
    step = fast_step(model)
    assert isinstance(step, FastStep)
    ids = torch.randint(0, 17, (1, 12))
    with torch.no_grad():
        expect, expect_state = model(ids)
    state, outs = None, []
    for t in range(12):
        out, state = step(ids[:, t : t + 1], state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, 1), expect, atol=1e-5, rtol=1e-5)
    for a, b in zip(state, expect_state, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tie", [False, True])  # adaptive softmax / tied class-factored
def test_fast_step_with_frequency_classes_and_window_fallback(tie):
    torch.manual_seed(1)
    cfg = ModelConfig(vocab_size=40, embed=6, hidden=12, cutoffs=(10, 20), tie=tie)
    model = build_model(cfg).eval()
    step = fast_step(model)
    ids = torch.randint(0, 40, (1, 5))
    with torch.no_grad():
        expect, _ = model(ids)
    state, outs = None, []
    for t in range(5):
        out, state = step(ids[:, t : t + 1], state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, 1), expect, atol=1e-5, rtol=1e-5)
    window = build_model(ModelConfig(vocab_size=9, arch="window", embed=4, hidden=8)).eval()
    assert fast_step(window) is window


needs_int8 = pytest.mark.skipif(
    not int8_available(), reason="this torch build has no x86 int8 (fbgemm/oneDNN) engine"
)

PASSAGE = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. "
    "resolved.\n\nFirst Citizen:\nFirst, you know Caius Marcius is chief enemy to the people.\n"
    "\nAll:\nWe know't, we know't.\n\nFirst Citizen:\nLet us kill him, and we'll have corn at "
    "our own price.\nIs't a verdict?\n\nAll:\nNo more talking on't; let it be done: away, away!\n"
)


def _losses(step, ids):
    """Per-token log-probabilities of `ids[1:]`, fed one token at a time through `step`."""
    state, rows = None, []
    for t in range(len(ids) - 1):
        out, state = step(torch.tensor([[ids[t]]]), state)
        rows.append(torch.log_softmax(out[0, 0].float(), -1))
    return torch.stack(rows)


# Encyclopedic prose written for this test (the word model's domain, not its training text).
WORD_PASSAGE = (
    "The river rises in the northern hills and flows south through a wide valley , where it "
    "was used for trade during the 18th century . The first bridge across it was built in 1820 "
    ", and the town that grew around it became the seat of the county . In the following "
    "years the population increased rapidly , and a railway station was opened in 1856 .\n"
    "The church of St Mary , which stands in the centre of the town , is a Grade I listed "
    "building . It was rebuilt after a fire in the 19th century , and its tower is one of the "
    "tallest in the region . The album was released in the United States in March , and it "
    "reached number one on the Billboard chart . The band toured Europe later that year .\n"
)


@needs_int8
@pytest.mark.parametrize(
    ("name", "passage"), [("shakespeare-char", PASSAGE), ("wikitext-word", WORD_PASSAGE)]
)
def test_int8_step_is_measured_close_on_the_bundled_models(name, passage):
    """The word model's 16k x 128 output layer is quantised too (over INT8_OUTPUT_MIN)."""
    loaded = load_model(name)
    ids = loaded.tokenizer.encode(passage)
    exact = _losses(fast_step(loaded.model), ids)
    step = fast_step(loaded.model, int8=True)
    assert step.int8
    approx = _losses(step, ids)
    targets = torch.tensor(ids[1:])
    nll_exact = -exact.gather(1, targets[:, None]).mean()
    nll_int8 = -approx.gather(1, targets[:, None]).mean()
    assert abs(float(nll_int8 - nll_exact)) < 0.01 * float(nll_exact)  # within 1% of the loss
    assert float((exact.argmax(1) == approx.argmax(1)).float().mean()) >= 0.97
    assert float((exact.exp() - approx.exp()).abs().max()) < 0.05  # probabilities, not logits


@needs_int8
@pytest.mark.parametrize("arch", ["lstm", "gru", "rnn"])
def test_int8_step_tracks_fp32_for_every_recurrent_arch(arch):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=30, arch=arch, embed=16, hidden=64, layers=2)
    model = build_model(cfg).eval()
    ids = torch.randint(0, 30, (40,)).tolist()
    exact, approx = _losses(fast_step(model), ids), _losses(fast_step(model, int8=True), ids)
    assert float((exact.exp() - approx.exp()).abs().max()) < 0.002


def test_int8_falls_back_to_exact_where_unavailable(monkeypatch):
    monkeypatch.setattr(fastpath, "int8_available", lambda: False)
    model = build_model(ModelConfig(vocab_size=9, embed=4, hidden=8)).eval()
    step = fastpath.fast_step(model, int8=True)
    assert isinstance(step, FastStep) and not step.int8
    assert not Predictor(load_model("shakespeare-char"), int8=False).int8
