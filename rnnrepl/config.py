"""Typed, frozen configuration. Built once at the CLI edge; travels inside checkpoints as JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from rnnrepl.errors import CheckpointError

ARCHS = ("lstm", "gru", "rnn", "window")
LEVELS = ("char", "word", "bpe")
OPTIMIZERS = ("adam", "adamw", "sgd")
PRECISIONS = ("fp32", "bf16")

T = TypeVar("T")


def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a dataclass from a dict, refusing unknown keys (a typo must not pass silently)."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CheckpointError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"invalid {cls.__name__}: {exc}") from None


# One-hot inputs are a vocabulary-wide identity: fine for characters (a few hundred), wasteful
# beyond this (a 33k-word input layer of 33k x hidden weights per gate where 128 would do).
ONE_HOT_MAX = 1024


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a language model. vocab_size includes the special tokens of the tokenizer."""

    vocab_size: int
    arch: str = "lstm"
    embed: int = 128
    hidden: int = 512
    layers: int = 2
    dropout: float = 0.0
    tie: bool = False
    window: int = 8  # context length of the fixed-window (Bengio 2003) model
    # Frequency-class boundaries for large vocabularies; () = full softmax. Untied: an adaptive
    # softmax (Grave et al. 2017). Tied: a class-factored softmax over the embedding rows.
    cutoffs: tuple[int, ...] = ()
    # The input at each step is the token's one-hot vector (the notes' toy RNN): the embedding
    # is the identity, vocab_size wide, and never trained.
    one_hot: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {self.arch!r}")
        for name in ("vocab_size", "embed", "hidden", "layers", "window"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout!r}")
        if self.vocab_size > 10_000_000 or self.hidden > 65_536 or self.embed > 65_536:
            raise ValueError("model dimensions are implausibly large")
        if self.layers > 64 or self.window > 4096:
            raise ValueError("layers or window implausibly large")
        object.__setattr__(self, "cutoffs", tuple(self.cutoffs))
        if self.cutoffs:
            bounds = (0, *self.cutoffs, self.vocab_size)
            if any(
                not isinstance(c, int) or a >= c for a, c in zip(bounds, bounds[1:], strict=False)
            ):
                raise ValueError("cutoffs must be increasing integers below vocab_size")
        if not isinstance(self.one_hot, bool) or not isinstance(self.tie, bool):
            raise ValueError("one_hot and tie must be true or false")
        if self.one_hot:
            self._check_one_hot()

    def _check_one_hot(self) -> None:
        if self.vocab_size > ONE_HOT_MAX:
            raise ValueError(
                f"one-hot inputs need a vocabulary of at most {ONE_HOT_MAX:,} tokens, "
                f"not {self.vocab_size:,}"
            )
        if self.embed != self.vocab_size or self.tie or self.cutoffs:
            raise ValueError("a one-hot model's input is vocab_size wide, untied, full softmax")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["cutoffs"] = list(self.cutoffs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, data)

    def describe(self) -> str:
        """The model in one line for people, the same in `info`, the REPL's /show and training's
        summary: "lstm 2x512, embed 64, tied, dropout 0.2". The fixed-window model has no
        layers: "window 8, hidden 512, embed 64, dropout 0"."""
        if self.arch == "window":
            shape = f"window {self.window}, hidden {self.hidden}"
        else:
            shape = f"{self.arch} {self.layers}x{self.hidden}"
        tied = ", tied" if self.tie else ""
        embed = f"one-hot {self.embed}" if self.one_hot else f"embed {self.embed}"
        return f"{shape}, {embed}{tied}, dropout {self.dropout:g}"


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Stopping: steps, epochs and time (seconds) — whichever comes first."""

    seq_len: int = 128
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip: float = 1.0
    steps: int | None = None
    epochs: float | None = None
    time_limit: float | None = None
    warmup: int = 50
    min_lr_ratio: float = 0.1
    val_fraction: float = 0.1
    eval_every: int = 200
    eval_seconds: float = 0.0  # also validate this often in seconds (0 = by steps only)
    eval_tokens: int = 0  # 0 = the whole validation split
    patience: int = 0  # evaluations without improvement before stopping; 0 = never
    seed: int = 1337
    sample_every: int = 0  # 0 = at each evaluation
    threads: int = 0  # 0 = torch's default
    precision: str = "fp32"  # "bf16": bfloat16 autocast for the forward pass (weights stay fp32)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.seq_len < 1 or self.batch_size < 1:
            raise ValueError("seq_len and batch_size must be positive")
        if not self.lr > 0:
            raise ValueError("lr must be positive")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError("val_fraction must be in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class SampleConfig:
    """How to pick the next token. temperature 0 (or greedy) means argmax."""

    temperature: float = 0.8
    top_k: int = 0  # 0 = no limit
    top_p: float = 1.0
    max_tokens: int = 200
    seed: int | None = None
    stop: str | None = None
    allow_unk: bool = False  # may the unknown token (<unk>, or U+FFFD at char level) be sampled

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError("top_p must be in (0, 1]")
        if self.max_tokens < 0:
            raise ValueError("max_tokens must be >= 0")

    def replace(self, **changes: Any) -> SampleConfig:
        return dataclasses.replace(self, **changes)
