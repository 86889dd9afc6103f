"""What a time budget buys on this machine: a few timed training steps of a candidate model."""

from __future__ import annotations

import time

import torch

from rnnrepl.config import ModelConfig, TrainConfig
from rnnrepl.model.lm import build_model
from rnnrepl.train.schedule import descend, forward, make_optimizer

UNTIMED, TIMED = 1, 3  # steps: the first sets up the kernels; the next few are timed


def tokens_per_second(model_cfg: ModelConfig, train_cfg: TrainConfig, device: str) -> float:
    """Tokens a second the training step of this model and batch reads here: what the loop does
    per step (autocast, loss, backward, clip, optimiser) on random tokens. The caller's random
    state is left as it was, so the run that follows is the one its seed names."""
    with torch.random.fork_rng(devices=[]):
        model = build_model(model_cfg).to(device)
        model.train()
        opt = make_optimizer(model, train_cfg)
        gen = torch.Generator().manual_seed(0)
        shape = (train_cfg.batch_size, train_cfg.seq_len)
        x, y = (torch.randint(model_cfg.vocab_size, shape, generator=gen).to(device) for _ in "xy")
        state = None
        for i in range(UNTIMED + TIMED):
            if i == UNTIMED:
                start = time.perf_counter()
            loss, state = forward(model.loss, x, y, state, train_cfg.precision)
            descend(loss, opt, model, train_cfg.clip)
            state = model.detach_state(state)
        return TIMED * x.numel() / (time.perf_counter() - start)
