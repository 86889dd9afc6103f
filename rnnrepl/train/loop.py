"""The training loop: truncated BPTT over contiguous streams, clipping, warmup + cosine schedule,
periodic validation, best-by-validation checkpoint, early stopping, exact resume, NaN recovery.

It prints nothing: it reports through one callback that receives ``Event``s.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rnnrepl.config import ModelConfig, TrainConfig
from rnnrepl.errors import (
    CheckpointError,
    NumericalError,
    ResourceError,
    is_out_of_memory,
    out_of_memory,
)
from rnnrepl.model.lm import LanguageModel, State, build_model, parameter_count
from rnnrepl.store import modelfile, resume
from rnnrepl.store.home import MODEL_SUFFIX
from rnnrepl.store.resume import bad_field, check_meta, load_hidden, load_weights
from rnnrepl.train.validation import evaluate, sample_text


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
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (step, loss, val)


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


def batchify(ids: np.ndarray, batch: int) -> Tensor:
    """Cut the token stream into `batch` contiguous streams, one per row.

    ┌ a g m s ┐  each row is read left to right in spans of seq_len; the state carried from one
    │ b h n t │  span to the next is exactly the context the model would have seen, which is
    └ c i o u ┘  what truncated BPTT approximates.
    """
    n = len(ids) // batch
    data = torch.from_numpy(np.ascontiguousarray(ids[: n * batch]).astype(np.int32, copy=False))
    return data.view(batch, n)  # (batch, n), int32 to keep large corpora compact


def spans_per_epoch(streams: Tensor, seq_len: int, offset: int = 0) -> int:
    return max(0, (streams.shape[1] - 1 - offset) // seq_len)


def fingerprint(ids: np.ndarray, tokenizer, cfg: ModelConfig) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ids).tobytes())
    h.update(repr(sorted(tokenizer.to_dict().items())).encode())
    h.update(repr(sorted(cfg.to_dict().items())).encode())
    return h.hexdigest()


def lr_at(cfg: TrainConfig, step: int, progress_frac: float) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio * lr over the run's budget."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = min(1.0, max(0.0, progress_frac))
    return cfg.lr * (
        cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac))
    )


def make_optimizer(model: LanguageModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay or 0.01)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class Trainer:
    """One training run. `should_stop()` is polled after every step (Ctrl-C, SIGTERM)."""

    def __init__(
        self,
        model: LanguageModel,
        tokenizer,
        train_ids: np.ndarray,
        val_ids: np.ndarray,
        cfg: TrainConfig,
        out: Path,
        summary: dict,
        on_event: Callable[[Event], None] = lambda e: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self.out = model_file(out)
        self.train_ids, self.val_ids = train_ids, val_ids
        self.summary, self.on_event, self.should_stop = summary, on_event, should_stop
        self.streams = batchify(train_ids, cfg.batch_size)
        self.opt = make_optimizer(model, cfg)
        self.data_gen = torch.Generator().manual_seed((cfg.seed + 1) % 2**64)  # 64 bits
        self.progress = Progress()
        self.state: State | None = None
        self.state_path = resume.state_path_for(self.out)
        self.fp = fingerprint(train_ids, tokenizer, model.cfg)
        self.history: list[tuple[int, float, float]] = []
        self._good: tuple[dict, dict] | None = None
        self._best_step: int | None = None  # the step of the model this run saved last
        self.half = False  # store the best model in fp16

    # ---- budget -----------------------------------------------------------------------------
    def total_steps(self) -> int | None:
        per_epoch = spans_per_epoch(self.streams, self.cfg.seq_len)
        limits = []
        if self.cfg.steps:
            limits.append(self.cfg.steps)
        if self.cfg.epochs:
            limits.append(max(1, int(self.cfg.epochs * per_epoch)))
        return min(limits) if limits else None

    def fraction_done(self) -> float:
        p, total = self.progress, self.total_steps()
        fracs = [p.step / total] if total else []
        if self.cfg.time_limit:
            fracs.append(p.elapsed / self.cfg.time_limit)
        return max(fracs) if fracs else 0.0

    def finished(self) -> bool:
        total = self.total_steps()
        if total is not None and self.progress.step >= total:
            return True
        return bool(self.cfg.time_limit and self.progress.elapsed >= self.cfg.time_limit)

    # ---- resume -----------------------------------------------------------------------------
    def save_state(self) -> None:
        tensors = {
            f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()
        }
        opt_tensors, opt_meta = resume.optimizer_to_tensors(self.opt)
        tensors.update(opt_tensors)
        if self.state is not None:
            tensors.update(
                {f"hidden.{i}": s.detach().cpu().contiguous() for i, s in enumerate(self.state)}
            )
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.data"] = self.data_gen.get_state()
        meta = {
            "progress": self.progress.__dict__
            | {"best_val": _finite_or_none(self.progress.best_val)},
            "optimizer": opt_meta,
            "fingerprint": self.fp,
            "model_config": self.model.cfg.to_dict(),
            "train_config": self.cfg.to_dict(),
            "hidden": self.state is not None,
            "history": self.history,
        }
        resume.save_state(self.state_path, tensors, meta)

    def load_state(self, allow_different: bool = False) -> list[str]:
        """Restore an interrupted run, every field checked first. Returns notices for the user."""
        tensors, meta = resume.load_state(self.state_path)
        path = self.state_path
        prog = check_meta(meta, [f.name for f in fields(Progress)], path)
        same_data = meta["fingerprint"] == self.fp
        if not same_data and not allow_different:
            raise CheckpointError(
                "cannot resume: the data, tokenizer or model differ from the interrupted run",
                path=str(path),
                hint="train with the same files and options, or without --resume to start anew",
            )
        load_weights(self.model, tensors, path)
        try:
            resume.optimizer_from_tensors(self.opt, tensors, meta["optimizer"])
            torch.set_rng_state(tensors["rng.torch"])
            self.data_gen.set_state(tensors["rng.data"])
        except KeyError as exc:
            raise CheckpointError(f"resume state lacks tensor {exc}", path=str(path)) from None
        except CheckpointError as exc:
            raise CheckpointError(exc.message, hint=exc.hint, path=str(path)) from None
        except (TypeError, ValueError, RuntimeError) as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise CheckpointError(f"unusable RNG state: {first}", path=str(path)) from None
        saved = (meta["train_config"]["batch_size"], meta["train_config"]["seq_len"])
        notices = []
        if saved != (self.cfg.batch_size, self.cfg.seq_len):
            notices.append(
                f"batch {self.cfg.batch_size} x {self.cfg.seq_len} (was {saved[0]} x {saved[1]}): "
                "continuing with a fresh carried state"
            )
        else:
            if meta["hidden"]:
                self.state = load_hidden(self.model, self.cfg.batch_size, tensors, path)
            if same_data:
                self._check_position(prog, path)
        self.progress = Progress(**prog)
        self.history = [tuple(h) for h in meta["history"]]
        return notices

    def _check_position(self, prog: dict, path: Path) -> None:
        """The data position of the same data and layout must lie inside it."""
        seq = self.cfg.seq_len
        if prog["offset"] >= seq:
            raise bad_field("progress.offset", prog["offset"], f"expected 0..{seq - 1}", path)
        spans = spans_per_epoch(self.streams, seq, prog["offset"])
        if prog["pos"] > spans:
            raise bad_field("progress.pos", prog["pos"], f"outside the data ({spans} spans)", path)

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, p, model = self.cfg, self.progress, self.model
        first_step = p.step
        model.train()
        device = model.embed.weight.device
        started = time.monotonic() - p.elapsed
        window_tokens, window_start = 0, time.monotonic()
        interrupted = stopped_early = False
        nan_streak = 0
        while not self.finished():
            if self.should_stop():
                interrupted = True
                break
            if (
                p.pos >= spans_per_epoch(self.streams, cfg.seq_len, p.offset)
                or p.pos == 0
                and p.step == 0
            ):
                if p.step > 0:
                    p.epoch += 1
                p.pos, self.state = 0, None
                p.offset = int(torch.randint(0, cfg.seq_len, (1,), generator=self.data_gen))
                if spans_per_epoch(self.streams, cfg.seq_len, p.offset) == 0:
                    p.offset = 0
            i = p.offset + p.pos * cfg.seq_len
            x = self.streams[:, i : i + cfg.seq_len].to(device, torch.long)
            y = self.streams[:, i + 1 : i + 1 + cfg.seq_len].to(device, torch.long)
            lr = lr_at(cfg, p.step, self.fraction_done()) * p.lr_scale
            for g in self.opt.param_groups:
                g["lr"] = lr
            try:
                value, state = self._step(x, y)
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc):
                    raise
                raise out_of_memory(
                    exc,
                    f"training {model.num_parameters():,} parameters at batch "
                    f"{cfg.batch_size} x {cfg.seq_len} tokens",
                    hint="lower --batch-size, --seq-len or --hidden"
                    + (" (or --max-vocab)" if self.tokenizer.level == "word" else ""),
                ) from None
            if state is None:
                nan_streak = self._recover_nan(nan_streak, p)
                p.pos += 1
                continue
            nan_streak = 0
            self.state = tuple(
                s.float() if s.is_floating_point() else s for s in model.detach_state(state)
            )
            p.step += 1
            p.pos += 1
            p.tokens_seen += y.numel()
            p.last_loss = value
            window_tokens += y.numel()
            p.elapsed = time.monotonic() - started
            rate = window_tokens / max(1e-9, time.monotonic() - window_start)
            self._emit("step", loss=value, lr=lr, tokens_per_s=rate)
            if p.step % cfg.eval_every == 0 or self.finished():
                if self._evaluate_and_save():
                    stopped_early = True
                    break
                window_tokens, window_start = 0, time.monotonic()
        p.elapsed = time.monotonic() - started
        evaluated_now = bool(self.history) and self.history[-1][0] == p.step
        if interrupted and self.out.exists():
            self.save_state()  # be quick: the best model is already on disk
        elif p.step > 0 and not evaluated_now:
            self._evaluate_and_save()
        self._record_total(resumed=first_step > 0)
        return TrainResult(
            steps=p.step,
            epochs=p.epoch + p.pos / max(1, spans_per_epoch(self.streams, cfg.seq_len)),
            elapsed=p.elapsed,
            best_val=p.best_val,
            last_loss=p.last_loss,
            model_path=self.out,
            state_path=self.state_path,
            interrupted=interrupted,
            stopped_early=stopped_early,
            tokens_seen=p.tokens_seen,
            history=self.history,
        )

    def _record_total(self, resumed: bool) -> None:
        """Note in the model file how many steps the run made in all, when it went on past the
        best model (a model file left by another run is not this run's to annotate)."""
        mine = self._best_step is not None or resumed
        if mine and self._best_step != self.progress.step and self.out.exists():
            modelfile.update_training(self.out, {"total_steps": self.progress.step})

    def _step(self, x: Tensor, y: Tensor) -> tuple[float, State | None]:
        """One optimisation step; (loss, new state), or (nan, None) when the loss is not finite."""
        device_type = x.device.type
        with torch.autocast(
            device_type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16"
        ):
            loss, state = self.model.loss(x, y, self.state)
        value = loss.item()
        if not math.isfinite(value):
            return value, None
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        self.opt.step()
        return value, state

    def _evaluate_and_save(self) -> bool:
        """Validate, keep the best model, save resume state. True when early stopping triggers."""
        p, cfg = self.progress, self.cfg
        val_ids = self.val_ids[: cfg.eval_tokens] if cfg.eval_tokens else self.val_ids
        val, scored = evaluate(self.model, val_ids, seq_len=max(cfg.seq_len, 64))
        self.history.append((p.step, p.last_loss, val))
        improved = math.isfinite(val) and val < p.best_val
        if improved:
            p.best_val, p.bad_evals = val, 0
            summary = self.summary | {
                "steps": p.step,
                "total_steps": p.step,  # raised at the end of the run if it went on
                "val_loss": val,
                "val_tokens": scored,
                "train_loss": p.last_loss,
                "elapsed": round(p.elapsed, 1),
                "tokens_seen": p.tokens_seen,
            }
            modelfile.save_model(self.out, self.model, self.tokenizer, summary, half=self.half)
            self._best_step = p.step
            self._good = self._snapshot()
        else:
            p.bad_evals += 1
        self.save_state()
        self._emit("eval", val_loss=val)
        if cfg.sample_every >= 0:
            text = sample_text(
                self.model, self.tokenizer, 120 if self.tokenizer.level == "char" else 30, p.step
            )
            self._emit("sample", text=text)
        return bool(cfg.patience and p.bad_evals >= cfg.patience)

    def _snapshot(self) -> tuple[dict, dict]:
        return (
            {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            resume.optimizer_to_tensors(self.opt),
        )

    def _recover_nan(self, streak: int, p: Progress) -> int:
        """Skip a non-finite step; if it persists, roll back to the last good weights at half lr."""
        self.opt.zero_grad(set_to_none=True)
        self.state = None
        streak += 1
        self._emit("nan", text=f"non-finite loss at step {p.step}; step skipped")
        if streak < 3:
            return streak
        if self._good is None or p.lr_scale < 1 / 16:
            raise NumericalError(
                f"loss stayed NaN/Inf after {streak} skipped steps and {int(-math.log2(p.lr_scale))} rollbacks",
                hint="lower --lr (e.g. half), or a smaller --clip",
            )
        weights, (opt_t, opt_m) = self._good
        self.model.load_state_dict(weights)
        resume.optimizer_from_tensors(self.opt, opt_t, opt_m)
        p.lr_scale /= 2
        self._emit("nan", text=f"rolled back to the best weights; learning rate x{p.lr_scale:g}")
        return 0

    def _emit(self, kind: str, **kw) -> None:
        p = self.progress
        eta = None
        frac = self.fraction_done()
        if frac > 0:
            eta = max(0.0, p.elapsed * (1 - frac) / frac)
        self.on_event(
            Event(
                kind,
                p.step,
                self.total_steps(),
                p.epoch,
                p.elapsed,
                best_val=p.best_val,
                eta=eta,
                **kw,
            )
        )


def model_file(out: Path | str) -> Path:
    """Where a model named by -o lives: DIR/DIR.safetensors for a directory (an existing one, or
    any path ending in a slash, which the output lock creates), else NAME.safetensors."""
    text = str(out)
    out = Path(out)
    if out.is_dir() or text.endswith(("/", os.sep)):
        name = out.name if out.name not in ("", "..") else out.resolve().name
        return out / f"{name}{MODEL_SUFFIX}"
    return (
        out if out.name.endswith(MODEL_SUFFIX) else out.with_name(out.name + MODEL_SUFFIX)
    )


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def new_model(cfg: ModelConfig, seed: int, device: str) -> LanguageModel:
    torch.manual_seed(seed)
    try:
        return build_model(cfg).to(device)
    except (RuntimeError, MemoryError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        if is_out_of_memory(exc):
            raise out_of_memory(
                exc,
                f"allocating {parameter_count(cfg):,} parameters on {device}",
                hint="lower --hidden, --layers or --embed (words: --max-vocab)",
            ) from None
        raise ResourceError(
            f"cannot allocate the model on {device}: {exc}".splitlines()[0]
        ) from None
