"""NaN/Inf recovery: skip a non-finite step; if it persists, roll back to the last good weights
and optimizer state at half the learning rate; give up once it is below a sixteenth."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from rnnrepl.errors import NumericalError
from rnnrepl.model.lm import LanguageModel
from rnnrepl.store import resume
from rnnrepl.train.progress import Progress

SKIPS_BEFORE_ROLLBACK = 3
MIN_LR_SCALE = 1 / 16  # below this, rolling back again is not worth it


class Recovery:
    def __init__(self, model: LanguageModel, opt: torch.optim.Optimizer) -> None:
        self.model, self.opt = model, opt
        self.good: tuple[dict, tuple[dict, dict]] | None = None  # weights, optimizer
        self.streak = 0  # non-finite steps in a row

    def remember(self) -> None:
        """Keep the current weights and optimizer state as the last good ones."""
        self.good = (
            {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            resume.optimizer_to_tensors(self.opt),
        )

    def finite(self) -> None:
        self.streak = 0

    def non_finite(self, p: Progress, say: Callable[[str], None]) -> None:
        """A step's loss was NaN/Inf: skip it; the third in a row rolls back (lowers p.lr_scale)."""
        self.opt.zero_grad(set_to_none=True)
        self.streak += 1
        say(f"non-finite loss at step {p.step}; step skipped")
        if self.streak < SKIPS_BEFORE_ROLLBACK:
            return
        if self.good is None or p.lr_scale < MIN_LR_SCALE:
            raise NumericalError(
                f"loss stayed NaN/Inf after {self.streak} skipped steps and "
                f"{int(-math.log2(p.lr_scale))} rollbacks",
                hint="lower --lr (e.g. half), or a smaller --clip",
            )
        weights, (opt_t, opt_m) = self.good
        self.model.load_state_dict(weights)
        resume.optimizer_from_tensors(self.opt, opt_t, opt_m)
        p.lr_scale /= 2
        say(f"rolled back to the best weights; learning rate x{p.lr_scale:g}")
        self.streak = 0
