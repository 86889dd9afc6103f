"""rnnrepl.units: the one conversion from nats to bits and perplexity, and what the commands
show when a loss is too large for exp() (a broken or hostile model file)."""

from __future__ import annotations

import json
import math

import pytest

from rnnrepl.store import modelfile
from rnnrepl.store.home import models_home
from rnnrepl.units import (
    LN2,
    bits,
    bits_per_character,
    finite_or_none,
    level_figure,
    perplexity,
)
from tests.helpers import run_main
from tests.repl_support import save, word_model


def test_bits_and_perplexity_of_known_losses():
    assert LN2 == pytest.approx(0.6931471805599453)
    assert bits(LN2) == pytest.approx(1.0)
    assert bits(math.log(256)) == pytest.approx(8.0)  # a uniform guess among 256 bytes
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(50)) == pytest.approx(50.0)  # a uniform guess among 50 words
    assert (round(bits(1.55), 3), round(perplexity(1.55), 3)) == (2.236, 4.711)  # README's score
    assert level_figure(math.log(4), "char") == ("bpc", pytest.approx(2.0))
    assert level_figure(math.log(4), "word") == ("ppl", pytest.approx(4.0))


def test_bits_per_character_is_the_bits_of_all_tokens_over_the_characters():
    assert bits_per_character(LN2, 3, 12) == pytest.approx(0.25)  # 3 tokens of 1 bit, 12 chars
    assert bits_per_character(math.log(4), 5, 5) == pytest.approx(bits(math.log(4)))  # char level
    assert math.isnan(bits_per_character(LN2, 0, 0))  # no characters: no figure
    assert math.isnan(bits_per_character(math.nan, 0, 3))  # nothing scored (spaces, word level)


def test_perplexity_past_the_largest_float_is_inf_never_an_overflow_error():
    assert perplexity(709.0) == pytest.approx(math.exp(709.0))
    assert perplexity(710.0) == math.inf  # math.exp(710.0) raises OverflowError
    assert perplexity(1e300) == math.inf
    assert perplexity(math.inf) == math.inf
    assert perplexity(-math.inf) == 0.0
    assert math.isnan(perplexity(math.nan))
    assert bits(math.inf) == math.inf


def test_json_gets_null_for_what_is_not_a_finite_number():
    assert finite_or_none(2.5) == 2.5
    assert finite_or_none(math.inf) is None
    assert finite_or_none(-math.inf) is None
    assert finite_or_none(math.nan) is None


def test_list_shows_an_overflowing_perplexity_as_inf_and_json_as_null():
    path = save(word_model(["cat", "dog"], {}), models_home() / "huge.safetensors")
    modelfile.update_training(path, {"val_loss": 800.0})  # exp(800) overflows a float
    code, out, err = run_main(["list", "--json"])
    assert code == 0, err
    entry = next(m for m in json.loads(out)["models"] if m["name"] == "huge")
    assert entry["val_loss"] == 800.0 and entry["ppl"] is None
    code, out, err = run_main(["list"])
    assert code == 0, err
    assert "ppl inf" in next(line for line in out.splitlines() if "huge" in line)
