"""Perplexity with the word cache (`eval` at word level): the unigram cache mixed into the
model's probability of every token, checked by hand on a unigram model written by hand and
against a direct sum over the earlier tokens; the model's per-token losses under every softmax."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rnnrepl.config import ModelConfig
from rnnrepl.infer.cache_loss import DECAY, LAMBDA, cache_token_losses
from rnnrepl.model.lm import build_model
from tests.helpers import invoke
from tests.repl_support import bigram, char_vocab, save, word_model


def _direct(ids: list[int], losses: np.ndarray, lam: float, decay: float) -> np.ndarray:
    """The definition, summed over every earlier token each time (quadratic)."""
    out = []
    for t, token in enumerate(ids):
        p = math.exp(-losses[t])
        if t:
            weights = [decay ** (t - 1 - j) for j in range(t)]
            share = sum(w for w, b in zip(weights, ids, strict=False) if b == token) / sum(weights)
            p = (1 - lam) * p + lam * share
        out.append(-math.log(p))
    return np.array(out)


def test_cache_losses_by_hand():
    ids, p = [1, 2, 1, 3], 0.5
    got = cache_token_losses(ids, np.full(4, -math.log(p)), lam=0.1, decay=0.5)
    share_of_1 = 0.5 / (1 + 0.5)  # at t=2: the 1 at t=0 weighs 0.5, the 2 at t=1 weighs 1
    expect = [p, 0.9 * p, 0.9 * p + 0.1 * share_of_1, 0.9 * p]  # 3 never came before
    np.testing.assert_allclose(got, -np.log(expect))


def test_cache_losses_equal_the_direct_sum_through_rescaling():
    """A decay of 0.3 over 400 tokens drives the running scale past RESCALE (1e100) twice."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, 400).tolist()
    losses = rng.uniform(0.1, 5.0, 400)
    np.testing.assert_allclose(
        cache_token_losses(ids, losses, lam=0.3, decay=0.3), _direct(ids, losses, 0.3, 0.3)
    )


def test_a_repeated_token_costs_less_and_a_new_one_a_little_more():
    ids = [5, 6, 5, 5, 7]
    plain = np.full(5, math.log(100))
    mixed = cache_token_losses(ids, plain)
    assert mixed[0] == plain[0]  # nothing read yet
    assert mixed[2] < plain[2] and mixed[3] < mixed[2]  # seen once, then twice
    assert mixed[4] == pytest.approx(plain[4] - math.log(1 - LAMBDA))  # never seen: (1 - lambda) p


@pytest.mark.parametrize("cutoffs", [(), (4, 9)])
@pytest.mark.parametrize("tie", [False, True])
def test_token_losses_are_each_tokens_cross_entropy_and_loss_their_mean(cutoffs, tie):
    torch.manual_seed(3)
    cfg = ModelConfig(vocab_size=20, embed=6, hidden=12, cutoffs=cutoffs, tie=tie)
    model = build_model(cfg).eval()
    ids, targets = torch.randint(0, 20, (2, 7)), torch.randint(0, 20, (2, 7))
    each, _ = model.token_losses(ids, targets)
    logits, _ = model(ids)
    expect = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), reduction="none"
    )
    torch.testing.assert_close(each, expect, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.loss(ids, targets)[0], each.mean())


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cache")
    word = word_model(["the", "cat"], {"the": math.log(5)})  # <unk> \n the cat; p(the) = 5/8
    char = bigram(char_vocab("ab\n"), {}, {"a": math.log(5)})
    return {"word": str(save(word, d / "word")), "char": str(save(char, d / "char"))}


def _eval_json(*args: str) -> dict:
    r = invoke("eval", *args, "--json")
    assert (r.exit_code, r.stderr) == (0, ""), r.stderr
    return json.loads(r.stdout)


def test_word_eval_reports_the_perplexity_with_the_cache_computed_by_hand(models, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("the cat cat\n")  # the, cat, cat, \n under p = 5/8, 1/8, 1/8, 1/8
    cat_share = 1 / (1 + DECAY)  # at the second cat: cat just before (1), the before it (DECAY)
    probs = [5 / 8, (1 - LAMBDA) / 8, (1 - LAMBDA) / 8 + LAMBDA * cat_share, (1 - LAMBDA) / 8]
    expect = -sum(math.log(p) for p in probs) / 4
    got = _eval_json(models["word"], str(text))
    cached = got["files"][0]["with_word_cache"]
    assert cached["cross_entropy"] == pytest.approx(expect)
    assert cached["perplexity"] == pytest.approx(math.exp(expect))
    assert (cached["lambda"], cached["decay"]) == (LAMBDA, DECAY)
    plain = -sum(math.log(p) for p in (5 / 8, 1 / 8, 1 / 8, 1 / 8)) / 4
    assert got["files"][0]["cross_entropy"] == pytest.approx(plain)  # the plain figure stays
    assert got["total"]["with_word_cache"]["cross_entropy"] == pytest.approx(expect)
    r = invoke("eval", models["word"], str(text))
    assert r.stdout.rstrip().endswith(f"; with the word cache: perplexity {math.exp(expect):.3f}")


def test_no_cache_and_other_levels_report_no_cache_figure(models, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("the cat cat\n")
    assert "with_word_cache" not in _eval_json(models["word"], str(text), "--no-cache")["total"]
    chars = tmp_path / "c.txt"
    chars.write_text("abba\n")
    assert "with_word_cache" not in _eval_json(models["char"], str(chars))["total"]
    r = invoke("eval", models["char"], str(chars))
    assert "word cache" not in r.stdout
