"""What a run carries (Progress, which resume restores), reports (Event) and returns (TrainResult);
its clock."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Event:
    kind: str  # "step" | "eval" | "sample" | "saved" | "nan"
    step: int
    total_steps: int | None
    epoch: int
    elapsed: float
    loss: float = math.nan
    val_loss: float = math.nan
    best_val: float = math.nan
    lr: float = 0.0
    tokens_per_s: float = 0.0
    eta: float | None = None
    text: str = ""
    tokens: int = 0  # tokens trained on so far


@dataclass
class TrainResult:
    steps: int
    epochs: float
    elapsed: float
    best_val: float
    last_loss: float
    model_path: Path
    state_path: Path
    interrupted: bool = False
    stopped_early: bool = False
    tokens_seen: int = 0
    history: list = field(default_factory=list)  # history.Point per validation


@dataclass
class Progress:
    """Everything that makes a resumed run continue exactly where it stopped."""

    step: int = 0
    epoch: int = 0
    pos: int = 0  # span index within the epoch
    offset: int = 0  # this epoch's random start offset into the streams
    best_val: float = math.inf
    bad_evals: int = 0
    elapsed: float = 0.0
    tokens_seen: int = 0
    lr_scale: float = 1.0
    last_loss: float = math.nan


class Clock:
    """Wall time of a run (resumed: continued from its elapsed time) and tokens/s since the
    last validation."""

    def __init__(self, elapsed: float) -> None:
        self.started = time.monotonic() - elapsed
        self.new_window()

    def new_window(self) -> None:
        self.tokens, self.window_start = 0, time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        return self.tokens / max(1e-9, time.monotonic() - self.window_start)
