"""Sizing by what the budget buys on this machine (rnnrepl/train/probe.py, sizing.FEW_TOKENS; the
README's "Choosing the defaults"): where the larger char GRU would read too few tokens in the
time budget, `train` takes the short-budget GRU, and a resumed run keeps the model it had."""

from __future__ import annotations

import io
import math
import random
import re

import pytest
import torch
from rich.console import Console

from rnnrepl.cli.train_config import make_configs, resumed_settings, speed_probe
from rnnrepl.cli.train_data import prepare_data
from rnnrepl.config import ModelConfig, TrainConfig
from rnnrepl.store import modelfile
from rnnrepl.train import sizing
from rnnrepl.train.probe import tokens_per_second
from tests.helpers import invoke, train_opts

FEW = sizing.FEW_TOKENS
SHORT = ["--hidden", "384", "--seq-len", "32", "--batch-size", "64", "--lr", "7e-3"]


def large_corpus(tmp_path):
    """Text whose training split is a large char corpus (sizing.LARGE_CHAR_CORPUS or more)."""
    rng = random.Random(0)
    words = "the of and to in that it was he for on are with as his they at be this from".split()
    lines = (" ".join(rng.choices(words, k=12)) for _ in range(sizing.LARGE_CHAR_CORPUS // 30))
    path = tmp_path / "large.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def configs(corpus, tmp_path, probe, interrupted=None, **given):
    """make_configs for `train CORPUS` with the rule's sizes, unless `given`, `probe` and
    `interrupted`."""
    rule = dict.fromkeys(("arch", "layers", "hidden", "embed", "seq_len", "batch_size", "lr"))
    opts = train_opts([str(corpus)], str(tmp_path / "m"), **rule, optimizer=None) | given
    tok, train_ids, val_ids, _ = prepare_data(opts, Console(file=io.StringIO()))
    assert len(train_ids) >= sizing.LARGE_CHAR_CORPUS
    return make_configs(opts, tok, len(train_ids), len(val_ids), probe, interrupted)


def test_the_rule_takes_the_short_gru_where_the_budget_buys_few_tokens():
    for budget in (300, 960):
        # the short budget's geometry, this budget's optimiser and schedule, no dropout
        few = sizing.suggest("char", None, 10**6, budget, tokens=FEW - 1)
        assert few == sizing.suggest("char", None, 10**6, 300) | sizing.SHORT_GEOMETRY
        short = sizing.suggest("char", None, 10**6, 71)
        assert all(few[k] == short[k] for k in ("layers", "hidden", "seq_len", "embed"))
        # at the larger batch (a budget of minutes, not seconds), a larger learning rate
        assert (few["batch_size"], few["lr"], short["batch_size"], short["lr"]) == (
            64,
            7e-3,
            32,
            5e-3,
        )
        assert (few["hidden"], few["dropout"], few["optimizer"], few["min_lr_ratio"]) == (
            384,
            0.0,
            "adamw",
            0.0,
        )
        enough = sizing.suggest("char", None, 10**6, budget, tokens=FEW)
        assert enough == sizing.suggest("char", None, 10**6, 300)  # 3 readings: no dropout
        assert enough["hidden"] == 512 and sizing.speed_matters("char", None, 10**6, budget)
    # only where the rule would take the larger GRU: not under two minutes, for a small corpus,
    # another architecture or level
    assert not sizing.speed_matters("char", None, 10**6, 71)
    assert not sizing.speed_matters("char", None, 10**5, 300)
    assert not sizing.speed_matters("char", "lstm", 10**6, 300)
    assert not sizing.speed_matters("word", None, 10**6, 300)


def test_dropout_follows_the_readings_of_the_text_the_budget_buys_where_they_are_measured():
    many = sizing.MANY_EPOCHS
    long, mid = sizing.LONG_BUDGET_GRU["dropout"], sizing.MID_BUDGET_GRU["dropout"]
    assert (long, mid) == (0.2, 0.0)
    for budget in (300, 960):
        for n_train, tokens, dropout in [
            (10**6, many * 10**6, long),  # the 1x512 reads the text 8 times
            (10**6, many * 10**6 - 1, mid),
            (10**6, FEW - 1, mid),  # the short GRU: 2 x 3 M tokens, 6 readings
            (700_000, FEW - 1, long),  # 8.6 readings of a smaller text
            (800_000, FEW - 1, mid),  # 7.5
        ]:
            got = sizing.suggest("char", None, n_train, budget, tokens=tokens)
            assert got["dropout"] == dropout, (budget, n_train, tokens)
            assert got["hidden"] == (384 if tokens < FEW else 512)
        # not measured (another device, several processes): the budget decides, as before
        assert sizing.suggest("char", None, 10**6, budget)["dropout"] == (
            long if budget > 900 else mid
        )


def test_make_configs_asks_the_probe_only_for_the_larger_gru_and_follows_it(tmp_path):
    corpus = large_corpus(tmp_path)
    asked = []

    def probe(rate):
        def measure(model_cfg: ModelConfig, train_cfg: TrainConfig) -> float:
            asked.append((model_cfg.hidden, train_cfg.seq_len, train_cfg.time_limit))
            return rate

        return measure

    slow, _ = configs(corpus, tmp_path, probe(FEW / 300 * 0.99), time_limit=300.0, steps=None)
    assert (slow.hidden, slow.layers) == (384, 1) and asked == [(512, 64, 300.0)]
    fast, _ = configs(corpus, tmp_path, probe(FEW / 300), time_limit=300.0, steps=None)
    assert fast.hidden == 512 and len(asked) == 2
    assert fast.dropout == 0.2  # 3 M tokens are over 8 readings of this 200,000-character text
    given_dropout, _ = configs(
        corpus, tmp_path, probe(FEW / 300), time_limit=300.0, steps=None, dropout=0.0
    )
    assert (given_dropout.hidden, given_dropout.dropout, len(asked)) == (512, 0.0, 3)
    # no budget given: the default five minutes are the budget
    default, _ = configs(corpus, tmp_path, probe(FEW / 300 * 0.99), steps=None)
    assert default.hidden == 384 and asked[-1] == (512, 64, sizing.DEFAULT_TIME)
    # the user's geometry, a short budget: nothing asked
    given, _ = configs(corpus, tmp_path, probe(1.0), time_limit=300.0, steps=None, hidden=512)
    short, _ = configs(corpus, tmp_path, probe(1.0), time_limit=71.0, steps=None)
    assert (given.hidden, short.hidden, len(asked)) == (512, 384, 4)
    # on --resume, what the interrupted run's speed decided, and nothing asked
    kept = {"hidden": 384, "seq_len": 32, "lr": 5e-3, "dropout": 0.2}
    resumed, train = configs(corpus, tmp_path, probe(FEW), kept, time_limit=300.0, steps=None)
    assert (resumed.hidden, resumed.dropout, train.seq_len, train.lr) == (384, 0.2, 32, 5e-3)
    nothing_kept, _ = configs(corpus, tmp_path, probe(FEW), {}, time_limit=300.0, steps=None)
    assert nothing_kept.hidden == 512 and len(asked) == 4


def test_nothing_is_measured_off_the_cpu_across_processes_or_for_a_count_of_steps(tmp_path):
    opts = train_opts(["x"], str(tmp_path / "m"), time_limit=300.0, steps=None, resume=False)
    notes = Console(file=io.StringIO())
    assert speed_probe(opts, "cpu", False, notes, 10**6) is not None
    assert speed_probe(opts, "cuda:0", False, notes, 10**6) is None
    assert speed_probe(opts, "cpu", True, notes, 10**6) is None
    counted = opts | {"time_limit": None, "steps": 100}
    assert speed_probe(counted, "cpu", False, notes, 10**6) is None
    both = opts | {"steps": 100}  # the time still bounds the run
    assert speed_probe(both, "cpu", False, notes, 10**6) is not None
    # a resumed run measures nothing: it reads the interrupted run's state, where one is measured
    resumed = opts | {"resume": True}
    assert speed_probe(resumed, "cpu", False, notes, 10**6) is None
    assert resumed_settings(opts, "cpu", False, tmp_path / "m") is None
    assert resumed_settings(resumed, "cuda:0", False, tmp_path / "m") is None
    # no state to read: nothing kept, and the resume itself reports the missing state
    assert resumed_settings(resumed, "cpu", False, tmp_path / "m") == {}


def test_the_probe_times_the_training_step_and_leaves_the_random_state_alone():
    model_cfg = ModelConfig(vocab_size=30, arch="gru", embed=8, hidden=16, layers=1)
    train_cfg = TrainConfig(seq_len=8, batch_size=4, optimizer="adamw", weight_decay=0.1)
    before = torch.get_rng_state()
    rate = tokens_per_second(model_cfg, train_cfg, "cpu")
    assert math.isfinite(rate) and rate > 0
    assert torch.equal(torch.get_rng_state(), before)


def test_train_takes_the_model_its_measurement_names(tmp_path):
    corpus = large_corpus(tmp_path)
    r = invoke("train", str(corpus), "-o", str(tmp_path / "m"), "--time", "5m", "--steps", "2")
    assert r.exit_code == 0, r.output
    note = re.search(r"note: here the gru 1x512\S* .* trains at ([\d,]+) tokens/s", r.output)
    assert note, r.output
    took_short = "1x384, batch 64 x 32, at lr 0.007 learns more" in r.output
    assert took_short == (int(note.group(1).replace(",", "")) * 300 < FEW)
    config = modelfile.load_model(tmp_path / "m.safetensors").config
    assert config.hidden == (384 if took_short else 512)
    # in 5 minutes the rule has no dropout, unless the budget buys 8 readings of the text or more
    reads = float(re.search(r"\(([\d.]+) readings of the text\)", r.output).group(1))
    assert 0 < reads * sizing.LARGE_CHAR_CORPUS < int(note.group(1).replace(",", "")) * 300
    more = "; from 8 readings, dropout 0.2" in r.output
    assert config.dropout == (0.2 if more else 0.0)


def test_a_resumed_run_keeps_the_short_gru_it_was_given(tmp_path):
    corpus = large_corpus(tmp_path)
    out = str(tmp_path / "m")
    first = invoke("train", str(corpus), "-o", out, "--time", "5m", "--steps", "2", *SHORT)
    assert first.exit_code == 0, first.output
    # the same budget with the sizes left to the rule: no measurement, the interrupted run's model
    again = invoke("train", str(corpus), "-o", out, "--time", "5m", "--steps", "3", "--resume")
    assert again.exit_code == 0, again.output
    assert "resuming from step 2" in again.output and "tokens/s, " not in again.output
    assert modelfile.load_model(tmp_path / "m.safetensors").config.hidden == 384


@pytest.mark.parametrize("dropout", ["0", "0.2"])
def test_a_resumed_run_keeps_the_dropout_it_was_given(tmp_path, dropout):
    corpus = large_corpus(tmp_path)
    out = str(tmp_path / "m")
    first = invoke(
        "train", str(corpus), "-o", out, "--time", "5m", "--steps", "2", "--dropout", dropout
    )
    assert first.exit_code == 0, first.output
    hidden = modelfile.load_model(tmp_path / "m.safetensors").config.hidden
    again = invoke("train", str(corpus), "-o", out, "--time", "5m", "--steps", "3", "--resume")
    assert again.exit_code == 0, again.output
    assert "resuming from step 2" in again.output and "tokens/s, " not in again.output
    config = modelfile.load_model(tmp_path / "m.safetensors").config
    assert (config.hidden, config.dropout) == (hidden, float(dropout))
