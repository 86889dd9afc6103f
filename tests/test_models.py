from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrepl.config import ARCHS, ModelConfig
from rnnrepl.model.devices import cpu_runs_bf16
from rnnrepl.model.lm import build_model, parameter_count
from tests.helpers import invoke


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_whole_sequence_equals_token_by_token(arch, tie, layers):
    """The contract the REPL relies on: one call == feeding one token at a time with the state."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=13, arch=arch, embed=6, hidden=10, layers=layers, tie=tie, window=4, dropout=0.3
    )
    model = build_model(cfg).eval()
    ids = torch.randint(0, 13, (3, 9))
    whole, state_whole = model(ids)
    state, steps = None, []
    for t in range(ids.shape[1]):
        out, state = model(ids[:, t : t + 1], state)
        steps.append(out)
    assert whole.shape == (3, 9, 13)
    torch.testing.assert_close(whole, torch.cat(steps, 1), atol=1e-5, rtol=0)
    for a, b in zip(state_whole, state, strict=True):
        torch.testing.assert_close(a.float(), b.float(), atol=1e-5, rtol=0)


def test_tied_model_shares_the_embedding():
    cfg = ModelConfig(vocab_size=9, arch="lstm", embed=4, hidden=8, tie=True)
    model = build_model(cfg)
    assert model.decoder is None and model.proj is not None
    assert "decoder.weight" not in model.state_dict()
    untied = build_model(ModelConfig(vocab_size=9, arch="lstm", embed=4, hidden=8))
    assert model.num_parameters() < untied.num_parameters()


def test_init_state_follows_batch_and_dtype():
    model = build_model(ModelConfig(vocab_size=5, arch="lstm", embed=3, hidden=4, layers=3))
    h, c = model.init_state(6)
    assert h.shape == c.shape == (3, 6, 4)
    (ctx,) = build_model(
        ModelConfig(vocab_size=5, arch="window", embed=3, hidden=4, window=5)
    ).init_state(2)
    assert ctx.shape == (2, 4) and bool((ctx == 5).all())


@pytest.mark.parametrize(
    "bad", [{"arch": "transformer"}, {"hidden": 0}, {"dropout": 1.0}, {"layers": -1}]
)
def test_bad_configs_are_refused(bad):
    with pytest.raises(ValueError):
        ModelConfig(vocab_size=5, **bad)


@pytest.mark.parametrize("arch", ["lstm", "window"])
@pytest.mark.parametrize("cutoffs", [(), (4, 9), (4,)])
@pytest.mark.parametrize("tie", [False, True])
def test_loss_equals_cross_entropy_of_forward(arch, cutoffs, tie):
    """model.loss (cheap with an adaptive or class-factored softmax) == cross entropy of the
    full distribution."""
    torch.manual_seed(1)
    cfg = ModelConfig(
        vocab_size=20, arch=arch, embed=6, hidden=12, cutoffs=cutoffs, window=3, tie=tie
    )
    model = build_model(cfg).eval()
    ids = torch.randint(0, 20, (2, 7))
    targets = torch.randint(0, 20, (2, 7))
    targets[0, :3] = torch.tensor([0, 19, cutoffs[-1] if cutoffs else 5])  # both edges of a class
    loss, _ = model.loss(ids, targets)
    logits, _ = model(ids)
    expect = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    torch.testing.assert_close(loss, expect, atol=1e-5, rtol=1e-5)
    # Log-probabilities of the adaptive head are a proper distribution.
    assert torch.allclose(torch.softmax(logits, -1).sum(-1), torch.ones(2, 7), atol=1e-5)


@pytest.mark.parametrize("tie", [False, True])
def test_adaptive_softmax_is_incremental_too(tie):
    torch.manual_seed(2)
    cfg = ModelConfig(vocab_size=30, embed=6, hidden=10, cutoffs=(5, 15), tie=tie)
    model = build_model(cfg).eval()
    ids = torch.randint(0, 30, (1, 6))
    whole, _ = model(ids)
    state, outs = None, []
    for t in range(6):
        out, state = model(ids[:, t : t + 1], state)
        outs.append(out)
    torch.testing.assert_close(whole, torch.cat(outs, 1), atol=1e-5, rtol=0)


def test_adaptive_softmax_refuses_bad_cutoffs():
    with pytest.raises(ValueError):
        ModelConfig(vocab_size=30, cutoffs=(15, 5))
    with pytest.raises(ValueError):
        ModelConfig(vocab_size=30, cutoffs=(5, 30))


@pytest.mark.skipif(not cpu_runs_bf16(), reason="this CPU has no bf16 kernels (AVX-512 or AMX)")
@pytest.mark.parametrize("tie", [False, True])
def test_adaptive_softmax_trains_under_bf16_autocast(tie):
    torch.manual_seed(3)
    cfg = ModelConfig(vocab_size=30, embed=6, hidden=10, cutoffs=(5, 15), tie=tie)
    model = build_model(cfg)
    ids = torch.randint(0, 30, (2, 5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = model.loss(ids, ids)
    loss.backward()
    assert torch.isfinite(loss) and model.embed.weight.grad is not None


def test_tied_class_softmax_scores_words_with_their_embedding_rows():
    """Tied with classes: no output matrix of its own, and the training loss sends gradient into
    the embedding rows of target words never seen as inputs (the output side of the tie)."""
    torch.manual_seed(4)
    cfg = ModelConfig(vocab_size=30, embed=8, hidden=8, cutoffs=(5, 15), tie=True)
    model = build_model(cfg)
    assert model.asm is None and model.decoder is None
    assert parameter_count(cfg) < parameter_count(ModelConfig(**{**cfg.to_dict(), "tie": False}))
    ids = torch.zeros(1, 4, dtype=torch.long)
    targets = torch.tensor([[3, 7, 20, 29]])
    loss, _ = model.loss(ids, targets)
    loss.backward()
    grad = model.embed.weight.grad
    assert all(float(grad[t].abs().sum()) > 0 for t in (3, 7, 20, 29))
    assert float(grad[10].abs().sum()) > 0  # a class's other words: its softmax normalizes
    assert float(grad[2].abs().sum()) > 0  # the shortlist is always normalized over


@settings(max_examples=60, deadline=None)
@given(
    arch=st.sampled_from(ARCHS),
    tie=st.booleans(),
    layers=st.integers(1, 3),
    embed=st.integers(1, 24),
    hidden=st.integers(1, 40),
    window=st.integers(1, 5),
    clusters=st.integers(0, 3),
)
def test_parameter_count_matches_the_built_model(
    arch, tie, layers, embed, hidden, window, clusters
):
    vocab = 50
    cutoffs = tuple(range(10, 10 + 10 * clusters, 10))
    cfg = ModelConfig(
        vocab_size=vocab,
        arch=arch,
        embed=embed,
        hidden=hidden,
        layers=layers,
        tie=tie,
        window=window,
        cutoffs=cutoffs,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero-width adaptive-softmax tails warn on init
        built = build_model(cfg).num_parameters()
    assert parameter_count(cfg) == built


@pytest.mark.skipif(
    cpu_runs_bf16(), reason="this CPU runs bf16: the refusal is for CPUs that cannot"
)
def test_explicit_bf16_is_refused_in_one_line_on_a_cpu_without_bf16_kernels(tmp_path):
    """On an AVX2-only CPU an LSTM under bf16 autocast fails inside oneDNN: say so up front."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world, hello there. " * 400)
    got = invoke("train", str(corpus), "-o", str(tmp_path / "m"), "--arch", "lstm",
                 "--precision", "bf16", "--steps", "2")  # fmt: skip
    assert got.exit_code == 2, got.stderr
    assert got.stderr.count("\n") == 1 and "--precision fp32" in got.stderr
