from __future__ import annotations

import pytest
import torch

from rnnrepl.config import ModelConfig
from rnnrepl.fastpath import FastStep, fast_step
from rnnrepl.models import build_model


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


def test_fast_step_with_adaptive_softmax_and_window_fallback():
    torch.manual_seed(1)
    model = build_model(ModelConfig(vocab_size=40, embed=6, hidden=12, cutoffs=(10, 20))).eval()
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
