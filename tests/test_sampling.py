from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrepl.config import SampleConfig
from rnnrepl.model.sampling import filtered_probs, pick

logits_st = st.lists(st.floats(-20, 20, allow_nan=False), min_size=2, max_size=30).map(torch.tensor)


@settings(max_examples=200)
@given(logits_st, st.floats(0.05, 3), st.integers(0, 40), st.floats(0.01, 1.0))
def test_filtered_probs_are_a_distribution(logits, temperature, k, p):
    probs = filtered_probs(logits, SampleConfig(temperature=temperature, top_k=k, top_p=p))
    assert torch.isfinite(probs).all()
    assert abs(float(probs.sum()) - 1) < 1e-5
    assert (probs >= 0).all()


@given(logits_st)
def test_temperature_zero_is_argmax(logits):
    cfg = SampleConfig(temperature=0)
    assert int(pick(logits, cfg)) == int(logits.argmax())


@settings(max_examples=100)
@given(logits_st, st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_top_k_never_leaves_the_k_best(logits, k, seed):
    cfg = SampleConfig(temperature=1.0, top_k=k)
    probs = filtered_probs(logits, cfg)
    assert int((probs > 0).sum()) <= k
    gen = torch.Generator().manual_seed(seed)
    best = set(torch.sort(logits, descending=True, stable=True).indices[:k].tolist())
    for _ in range(20):
        assert int(pick(logits, cfg, gen)) in best


@settings(max_examples=200)
@given(logits_st, st.floats(0.01, 0.99))
def test_top_p_keeps_the_smallest_set_reaching_p(logits, p):
    full = torch.softmax(logits, -1)
    kept = filtered_probs(logits, SampleConfig(temperature=1.0, top_p=p)) > 0
    mass = float(full[kept].sum())
    assert mass >= p - 1e-6
    # Dropping the least likely kept token would fall below p: the set is minimal.
    smallest = float(full[kept].min())
    assert mass - smallest < p + 1e-6
    # Every kept token is at least as likely as every dropped one.
    if (~kept).any():
        assert float(full[kept].min()) >= float(full[~kept].max()) - 1e-7


def test_fixed_seed_reproduces_samples():
    logits = torch.randn(50)
    cfg = SampleConfig(temperature=1.0)
    a = [int(pick(logits, cfg, torch.Generator().manual_seed(7))) for _ in range(5)]
    b = [int(pick(logits, cfg, torch.Generator().manual_seed(7))) for _ in range(5)]
    assert a == b


def test_top_k_ranks_logits_even_when_softmax_rounds_them_equal():
    logits = torch.tensor([-1.4013e-45, 0.0])  # softmax gives exactly 0.5 / 0.5
    probs = filtered_probs(logits, SampleConfig(temperature=1.0, top_k=1))
    assert probs.tolist() == [0.0, 1.0]
