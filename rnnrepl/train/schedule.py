"""The optimizer, its learning rate (linear warmup, then cosine decay) and the run's budget."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rnnrepl.config import TrainConfig
from rnnrepl.model.lm import LanguageModel


def lr_at(cfg: TrainConfig, step: int, progress_frac: float) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio * lr over the run's budget."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = min(1.0, max(0.0, progress_frac))
    return cfg.lr * (
        cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac))
    )


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def make_optimizer(model: LanguageModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def forward(net, x: torch.Tensor, y: torch.Tensor, state, precision: str):
    """`net(x, y, state)` -> (loss, state), under bf16 autocast when the run trains in bf16."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        return net(x, y, state)


def descend(loss: torch.Tensor, opt: torch.optim.Optimizer, model, clip: float) -> None:
    """The update after a forward pass: gradients of `loss`, their norm clipped to `clip`
    (0: not clipped), one optimiser step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()


def set_weight_decay(opt: torch.optim.Optimizer, decay: float) -> list[float]:
    """Give every param group `decay` (a resumed optimizer keeps its saved groups' otherwise);
    returns the decays the groups had."""
    before = sorted({group["weight_decay"] for group in opt.param_groups})
    for group in opt.param_groups:
        group["weight_decay"] = decay
    return before


@dataclass(frozen=True)
class Budget:
    """When a run ends: after --steps, --epochs (of `per_epoch` spans) or --time, the first."""

    cfg: TrainConfig
    per_epoch: int

    def total_steps(self) -> int | None:
        limits = []
        if self.cfg.steps:
            limits.append(self.cfg.steps)
        if self.cfg.epochs:
            limits.append(max(1, int(self.cfg.epochs * self.per_epoch)))
        return min(limits) if limits else None

    def fraction_done(self, step: int, elapsed: float) -> float:
        total = self.total_steps()
        fracs = [step / total] if total else []
        if self.cfg.time_limit:
            fracs.append(elapsed / self.cfg.time_limit)
        return max(fracs) if fracs else 0.0

    def finished(self, step: int, elapsed: float) -> bool:
        total = self.total_steps()
        if total is not None and step >= total:
            return True
        return bool(self.cfg.time_limit and elapsed >= self.cfg.time_limit)
