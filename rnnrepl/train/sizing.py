"""Default sizes: pick a model and batch geometry that suit the corpus and the time budget.

Only options the user did not give are filled in. The figures come from measurements on a
2-core CPU (see bench/ and the README's "Choosing the defaults").
"""

from __future__ import annotations

from typing import Any

from rnnrepl.config import TrainConfig

DEFAULT_TIME = 300.0  # seconds, when no --steps/--epochs/--time is given
# The schedule's steps of warm-up and floor (a fraction of lr), unless given or set below
WARMUP, MIN_LR_RATIO = TrainConfig.warmup, TrainConfig.min_lr_ratio
# The optimiser, unless given or set below; weight decay None: the optimiser's own (adamw: 0.01)
OPTIMISER = {"optimizer": "adam", "weight_decay": None}
# Char GRU under two minutes (issue 19; README "Choosing the defaults"), on tiny Shakespeare in
# 71 s: spans of 32 characters at lr 5e-3 reached 1.57 nats/char where the 2x256's spans of 128
# at lr 3e-3 reached 1.94 (the same tokens/s, four times the optimiser steps; spans of 16 or 64,
# batch 16 or 64 and lr 8e-3 did no better); one layer of 384 and validating only every 800
# steps (at the end, on a slow machine) took a further 0.03-0.04 off.
SHORT_BUDGET_GRU = {"layers": 1, "hidden": 384, "seq_len": 32, "lr": 5e-3, "eval_every": 800}
# Char GRU from two minutes to a quarter of an hour, on a corpus of LARGE_CHAR_CORPUS characters
# or more (issue 19), on tiny Shakespeare in 5 minutes: one layer of 512 on spans of 64 at lr 3e-3
# reached 1.414 nats/char with dropout 0.1 and 1.392 without, where 2x256 at lr 4e-3 reached
# 1.415, batch 64 at lr 4e-3 1.428, the short budget's 1x384 on spans of 32 1.457 and the
# previous 2x512 on spans of 128 at lr 2e-3 1.863 (0.8 M tokens in 5 minutes on a slow machine).
# Its learning rate decays to nothing (2026-12-03, bf16, the whole validation split, 3 rounds):
# median 1.447 where the floor of a tenth left it at 1.459 (lr 4e-3 to nothing: 1.450; averaging
# its weights over the last ~500 steps gained 0.013 with the floor, 0.001 without: not kept).
# Under two minutes the floor stays: 1.532 / 1.544 without it, 1.532 / 1.537 with it in 71 s.
# AdamW with a decoupled weight decay of 0.1 (2026-12-03, one screening run each, the whole
# split): 1.435, 0.2 1.437, where Adam gave 1.447; Adam's beta2 at 0.99 1.443; DropConnect on the
# recurrent weights (0.1) 1.458, its masked call 18% slower per token; 1x640 1.454; spans of 128
# 1.460. Then 3 rounds against the reference: README "Choosing the defaults".
MID_BUDGET_GRU = {
    "layers": 1,
    "hidden": 512,
    "seq_len": 64,
    "batch_size": 32,
    "lr": 3e-3,
    "dropout": 0.0,
    "eval_every": 800,
    "min_lr_ratio": 0.0,
    "optimizer": "adamw",
    "weight_decay": 0.1,
}
# From a quarter of an hour: the same GRU with dropout 0.2. On tiny Shakespeare in 16 minutes
# (2026-12-03, bf16; first 30,000 validation characters) it reached 1.382 nats/char on 16.1 M
# tokens; without dropout 1.447, its best validation at minute 9 (it overfits from the fifth
# epoch or so); 1x768 with dropout 0.3 1.467. The previous 2x768 on spans of 128 had reached 1.79
# over the whole split on a slower machine; this one 1.457 over the whole split (README).
# With the 5-minute schedule and optimiser (learning rate to nothing, AdamW with weight decay
# 0.1) instead of a floor of a tenth and Adam (2026-12-03, one run each, the whole split, the
# reference in the same session): 1.427 on tiny Shakespeare (the reference 1.469) and 1.095 on
# code (the reference 1.130), where the floor and Adam had reached 1.457 and 1.139.
LONG_BUDGET_GRU = MID_BUDGET_GRU | {"dropout": 0.2}
SHORT_BUDGET, LONG_BUDGET = 120.0, 900.0  # seconds
LARGE_CHAR_CORPUS = 200_000  # training characters from which the larger char models pay
# The budget rules above were measured on machines where the GRU 1x512 reads 14-19k characters a
# second. On a slower one the budget buys fewer tokens, and the tokens decide. On a 2-core AVX2
# EPYC whose speed drifted between 3k and 8k a second (2026-12-03, tiny Shakespeare, the whole
# split): in 150 s the 1x512 read 1.1 M and reached 1.651 (2 runs), the short budget's geometry
# (1x384, spans of 32, lr 5e-3) 1.7-1.9 M and 1.528; in 5 minutes, the 1x512 on 2.2 M 1.518, that
# geometry on 3.5-3.7 M 1.466 with this rule's AdamW and decay to nothing, 1.509 with the short
# budget's Adam and floor. On the AVX2 machine of 2026-12-02 the 1x512 had won on 4.2 M tokens. So
# where the 1x512 would read fewer than FEW_TOKENS in the budget, `train` (having measured it for
# a few steps: rnnrepl/train/probe.py) gives the rule's GRU the short budget's geometry, at batch
# 64 and lr 7e-3: in 5 minutes on the AVX2 machine (2026-12-04, the whole split) it read
# 1.15-1.3x the tokens of batch 32 at lr 5e-3 (a CPU runs the larger batch's matrix products
# faster) and ended lower in two runs of three, 1.471 against 1.482 in median (README "Choosing
# the defaults"). Under two minutes batch 64 had done no better (1.595 against 1.580 in 71 s,
# 2026-12-02), so SHORT_BUDGET_GRU keeps batch 32.
FEW_TOKENS = 3_000_000
SHORT_GEOMETRY = {
    **{k: SHORT_BUDGET_GRU[k] for k in ("layers", "hidden", "seq_len")},
    "batch_size": 64,
    "lr": 7e-3,
}
# Dropout, where the speed is measured, follows the readings of the training text the budget buys,
# not the budget: at five readings (tiny Shakespeare in 5 minutes, the bf16 machine) no dropout
# beat 0.05 and 0.1 by 0.01; at sixteen (16 minutes) dropout 0.2 beat none by 0.065, where the
# model without it had begun to overfit from the fifth to the ninth reading. On a slower machine
# (2026-12-04, AVX2), 16 minutes bought five readings: dropout 0.2 reached 1.484, none 1.443 (the
# reference 1.479). MANY_EPOCHS is between five and sixteen; LONG_BUDGET_GRU's dropout from there
# (README "Choosing the defaults").
# The short GRU reads about SHORT_READS times the tokens the probe projects for the 1x512 (at batch
# 32, 1.3-1.6 measured; at batch 64, 1.8-2.1 on 2026-12-04).
MANY_EPOCHS, SHORT_READS = 8.0, 2.0
# What the measured speed decides, and the values it chooses between: a resumed run takes these
# from its interrupted run's state (only these: the state is verified after the model is built)
MEASURED = {k: {SHORT_GEOMETRY[k], MID_BUDGET_GRU[k]} for k in SHORT_GEOMETRY}
MEASURED["dropout"] = {MID_BUDGET_GRU["dropout"], LONG_BUDGET_GRU["dropout"]}


def suggest(
    level: str,
    arch: str | None,
    n_train: int,
    time_limit: float | None,
    tokens: float | None = None,
) -> dict[str, Any]:
    """Model and training settings for `n_train` training tokens and an optional time budget;
    `tokens`, where measured, is what the budget buys the larger char GRU on this machine."""
    budget = time_limit or DEFAULT_TIME
    arch = arch or default_arch(level)
    few = tokens is not None and tokens < FEW_TOKENS
    many = None if tokens is None else many_epochs(tokens, n_train)
    settings = (
        _char(arch, n_train, budget, few, many) if level == "char" else _word(arch, n_train, budget)
    )
    return {"arch": arch, "warmup": WARMUP, "min_lr_ratio": MIN_LR_RATIO, **OPTIMISER, **settings}


def speed_matters(level: str, arch: str | None, n_train: int, time_limit: float | None) -> bool:
    """Whether the rule for this run would take the larger char GRU, which a slow machine would
    read too few tokens of in the budget (FEW_TOKENS): then `train` measures its speed first."""
    budget = time_limit or DEFAULT_TIME
    gru = (arch or default_arch(level)) == "gru"
    return level == "char" and gru and n_train >= LARGE_CHAR_CORPUS and budget >= SHORT_BUDGET


def many_epochs(tokens: float, n_train: int) -> bool:
    """Whether the GRU the rule takes reads the training text MANY_EPOCHS times or more, where the
    1x512 reads `tokens` in the budget (the short GRU, taken under FEW_TOKENS, SHORT_READS times
    as many)."""
    reads = tokens * (SHORT_READS if tokens < FEW_TOKENS else 1.0)
    return reads >= MANY_EPOCHS * max(n_train, 1)


def default_arch(level: str) -> str:
    """GRU for characters and BPE subwords, LSTM for words (README, "Choosing the defaults").
    Characters: on tiny Shakespeare with the same sizes and budgets the GRU reached 1.55
    nats/char in 71 s and 1.43 in 5 min, where the LSTM reached 1.71 and 1.54. On an AVX2 CPU,
    where oneDNN's fused LSTM trains the 1x512 at 1.4x the GRU 1x512's tokens/s, the LSTM 1x512
    still reached 1.571 in 5 min against the GRU 1x384's 1.499 (2026-12-04). BPE: on
    WikiText-2 in 5 minutes, at the word level's sizes (2x400, tied), the GRU reached 2.075 bits
    per character of held-out text, the LSTM 2.167 (and a 2x256 LSTM 2.119). Words: tied, on
    WikiText-2 in 16 minutes, the LSTM reached perplexity 132.5 and the GRU 130.9, one run each,
    too close to call, so the LSTM stays."""
    return "lstm" if level == "word" else "gru"


def _char(
    arch: str, n_train: int, budget: float, few_tokens: bool, many_epochs: bool | None
) -> dict[str, Any]:
    if n_train < LARGE_CHAR_CORPUS or budget < SHORT_BUDGET:
        hidden, dropout = 256, 0.1 if n_train < LARGE_CHAR_CORPUS else 0.0
    elif budget < LONG_BUDGET:
        hidden, dropout = 512, 0.1
    else:
        hidden, dropout = 768, 0.25
    if arch == "window":
        return {
            "hidden": 512,
            "embed": 32,
            "window": 16,
            "layers": 1,
            "dropout": 0.1,
            "seq_len": 128,
            "batch_size": 64,
            "lr": 2e-3,
            "tie": False,
        }
    settings = {
        "hidden": hidden,
        "embed": 64,
        "layers": 2,
        "dropout": dropout,
        "tie": False,
        "seq_len": 128,
        "batch_size": 32,
        "lr": 3e-3 if hidden <= 256 else 2e-3,
        "window": 8,
    }
    if arch == "gru" and budget < SHORT_BUDGET:
        settings |= SHORT_BUDGET_GRU
    elif arch == "gru" and n_train >= LARGE_CHAR_CORPUS:
        long = budget >= LONG_BUDGET if many_epochs is None else many_epochs
        settings |= LONG_BUDGET_GRU if long else MID_BUDGET_GRU
        if few_tokens:
            settings |= SHORT_GEOMETRY
    return settings


def _word(arch: str, n_train: int, budget: float) -> dict[str, Any]:
    size = 256 if n_train < 300_000 or budget < 300 else 400
    if arch == "window":
        return {
            "hidden": size,
            "embed": 128,
            "window": 6,
            "layers": 1,
            "dropout": 0.3,
            "seq_len": 64,
            "batch_size": 32,
            "lr": 1e-3,
            "tie": False,
        }
    return {
        "hidden": size,
        "embed": size,
        "layers": 2,
        "dropout": 0.3,
        "tie": True,
        "seq_len": 64,
        "batch_size": 32,
        "lr": 2e-3,
        "window": 8,
    }


def fit_to_corpus(settings: dict[str, Any], n_train: int, n_val: int) -> dict[str, Any]:
    """Shrink batch and span so that a small corpus still gives at least a few steps per epoch."""
    s = dict(settings)
    while s["batch_size"] > 1 and n_train < s["batch_size"] * (s["seq_len"] * 4 + 1):
        s["batch_size"] //= 2
    while s["seq_len"] > 8 and n_train < s["batch_size"] * (s["seq_len"] * 4 + 1):
        s["seq_len"] //= 2
    return s


def cutoffs(vocab_size: int, softmax: str = "auto") -> tuple[int, ...]:
    """Frequency classes: the ~2k most frequent tokens, the next ~8k, then the rest."""
    if softmax == "full" or (softmax == "auto" and vocab_size <= 8000):
        return ()
    bounds = tuple(c for c in (2000, 10000) if c < vocab_size - 1)
    return bounds or (max(1, vocab_size // 2),)
