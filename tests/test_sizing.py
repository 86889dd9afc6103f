"""Default sizes by corpus and budget (rnnrepl/train/sizing.py; README "Choosing the defaults"):
the char GRU under two minutes trains on short spans at a higher learning rate (issue #19), and
what the user gives is never overridden."""

from __future__ import annotations

import io
import json

from rich.console import Console

from rnnrepl.cli.train_config import make_configs
from rnnrepl.cli.train_data import prepare_data
from rnnrepl.store import modelfile
from rnnrepl.train import sizing
from tests.helpers import TOY, invoke, train_opts


def test_char_gru_budgets_take_one_wide_layer_short_spans_and_a_higher_rate_dropout_when_long():
    short = sizing.suggest("char", None, 1_000_000, 71)
    shape = (short["arch"], short["layers"], short["hidden"], short["seq_len"], short["lr"])
    assert shape == ("gru", 1, 384, 32, 5e-3) and short["eval_every"] == 800
    five = sizing.suggest("char", None, 1_000_000, 300)
    assert (five["layers"], five["hidden"], five["seq_len"], five["lr"]) == (1, 512, 64, 3e-3)
    assert five["eval_every"] == 800 and five["dropout"] == 0.0
    # the learning rate decays to nothing from 2 minutes on; it keeps a floor under two
    floors = [sizing.suggest("char", None, 1_000_000, t)["min_lr_ratio"] for t in (71, 300, 960)]
    assert floors == [sizing.MIN_LR_RATIO, 0.0, 0.0]
    # and AdamW decays its weights there; Adam elsewhere, and for the smaller corpus
    adamw = {(10**6, 71): False, (10**6, 300): True, (10**6, 960): True, (10**5, 300): False}
    for (n_train, budget), decays in adamw.items():
        got = sizing.suggest("char", None, n_train, budget)
        want = ("adamw", 0.1) if decays else ("adam", None)
        assert (got["optimizer"], got["weight_decay"]) == want, (n_train, budget)
    small = sizing.suggest("char", None, 100_000, 300)
    assert (small["layers"], small["hidden"], small["seq_len"]) == (2, 256, 128)
    assert "eval_every" not in small
    long = sizing.suggest("char", None, 1_000_000, 960)
    assert (long["layers"], long["hidden"], long["seq_len"], long["dropout"]) == (1, 512, 64, 0.2)
    small_long = sizing.suggest("char", None, 100_000, 960)
    assert (small_long["layers"], small_long["hidden"], small_long["dropout"]) == (2, 256, 0.1)


def test_other_architectures_keep_their_measured_settings_at_short_budgets():
    for arch in ("lstm", "rnn"):
        got = sizing.suggest("char", arch, 1_000_000, 71)
        assert (got["seq_len"], got["lr"]) == (128, 3e-3)


def test_the_train_command_records_the_short_budget_geometry_and_keeps_given_options(tmp_path):
    corpus = tmp_path / "toy.txt"
    corpus.write_text(TOY * 40, encoding="utf-8")
    out = tmp_path / "m"
    tiny = ["--hidden", "16", "--embed", "8", "--batch-size", "4", "--time", "3s"]
    r = invoke("train", str(corpus), "-o", str(out), *tiny)
    assert r.exit_code == 0, r.output
    cfg = modelfile.load_model(out.with_suffix(".safetensors")).training["train_config"]
    cfg = json.loads(cfg) if isinstance(cfg, str) else cfg
    assert (cfg["seq_len"], cfg["lr"], cfg["batch_size"], cfg["eval_every"]) == (32, 5e-3, 4, 800)
    model = modelfile.load_model(out.with_suffix(".safetensors")).config
    assert (model.layers, model.hidden) == (1, 16)
    r = invoke("train", str(corpus), "-o", str(tmp_path / "n"), *tiny, "--seq-len", "64",
               "--eval-every", "7")  # fmt: skip
    assert r.exit_code == 0, r.output
    cfg = modelfile.load_model(tmp_path / "n.safetensors").training["train_config"]
    cfg = json.loads(cfg) if isinstance(cfg, str) else cfg
    assert (cfg["seq_len"], cfg["eval_every"]) == (64, 7)


def test_the_schedule_options_reach_the_run_and_default_by_budget(tmp_path):
    corpus = tmp_path / "toy.txt"
    corpus.write_text(TOY * 40, encoding="utf-8")
    tiny = ["--hidden", "16", "--embed", "8", "--batch-size", "4", "--steps", "6"]

    def schedule(name: str, *extra: str) -> tuple:
        r = invoke("train", str(corpus), "-o", str(tmp_path / name), *tiny, *extra)
        assert r.exit_code == 0, r.output
        cfg = modelfile.load_model(tmp_path / f"{name}.safetensors").training["train_config"]
        cfg = json.loads(cfg) if isinstance(cfg, str) else cfg
        return cfg["warmup"], cfg["min_lr_ratio"]

    assert schedule("a") == (sizing.WARMUP, sizing.MIN_LR_RATIO)  # a toy corpus: the old floor
    assert schedule("b", "--warmup", "3", "--min-lr-ratio", "0") == (3, 0.0)
    r = invoke("train", str(corpus), "-o", str(tmp_path / "c"), *tiny, "--min-lr-ratio", "1.5")
    assert r.exit_code == 2 and "--min-lr-ratio" in r.output


def test_the_optimiser_and_its_weight_decay_come_from_the_rule_unless_given(tmp_path, monkeypatch):
    corpus = tmp_path / "toy.txt"
    corpus.write_text(TOY * 40, encoding="utf-8")

    def optimiser(**given) -> tuple:
        opts = train_opts([str(corpus)], str(tmp_path / "m"), optimizer=None) | given
        tok, train_ids, val_ids, _ = prepare_data(opts, Console(file=io.StringIO()))
        cfg = make_configs(opts, tok, len(train_ids), len(val_ids))[1]
        return cfg.optimizer, cfg.weight_decay

    assert optimiser() == ("adam", 0.0)
    assert optimiser(optimizer="adamw") == ("adamw", 0.01)  # the optimiser's own default
    assert optimiser(optimizer="adamw", weight_decay=0.0) == ("adamw", 0.0)
    assert optimiser(weight_decay=1e-4) == ("adam", 1e-4)
    monkeypatch.setitem(sizing.OPTIMISER, "optimizer", "adamw")  # a rule that decays
    monkeypatch.setitem(sizing.OPTIMISER, "weight_decay", 0.2)
    assert optimiser() == ("adamw", 0.2)
    assert optimiser(optimizer="adamw") == ("adamw", 0.2)
    assert optimiser(optimizer="adam") == ("adam", 0.0)  # not the rule's decay as an L2 penalty
    assert optimiser(optimizer="sgd", weight_decay=0.1) == ("sgd", 0.1)
