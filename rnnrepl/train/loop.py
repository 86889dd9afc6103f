"""The training loop: truncated BPTT over contiguous streams, clipping, warmup + cosine schedule,
periodic validation, best-by-validation checkpoint, early stopping, exact resume, NaN recovery.

It prints nothing: it reports through one callback that receives ``Event``s.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rnnrepl.config import ModelConfig, TrainConfig
from rnnrepl.errors import CheckpointError, ResourceError, is_out_of_memory, out_of_memory
from rnnrepl.model.lm import LanguageModel, State, build_model, parameter_count
from rnnrepl.store import modelfile, resume
from rnnrepl.store.home import MODEL_SUFFIX
from rnnrepl.store.resume import bad_field, check_meta, load_hidden, load_weights
from rnnrepl.train import distributed as dd
from rnnrepl.train import history as hist
from rnnrepl.train.data import batchify, epoch_offset, fingerprint, span, spans_per_epoch
from rnnrepl.train.progress import Clock, Event, Progress, TrainResult
from rnnrepl.train.recovery import Recovery
from rnnrepl.train.schedule import (
    Budget,
    descend,
    forward,
    lr_at,
    make_optimizer,
    set_lr,
    set_weight_decay,
)
from rnnrepl.train.validation import held_out_loss, sample_text, start_token

FIRST_GAP = 0.5  # seconds to the first validation of --eval-seconds; then 1, 2, 4, ...


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
        world: dd.World = dd.SINGLE,
    ) -> None:
        self.model, self.tokenizer, self.cfg, self.world = model, tokenizer, cfg, world
        self.out = model_file(out)
        self.train_ids, self.val_ids = train_ids, val_ids
        self.summary, self.on_event, self.should_stop = summary, on_event, should_stop
        self.streams = batchify(train_ids, cfg.batch_size)[world.rows(cfg.batch_size)]
        self.net = dd.wrap(model, world)  # the loss, under DistributedDataParallel with >1 rank
        dd.own_random_stream(world)
        self.opt = make_optimizer(model, cfg)
        self.data_gen = torch.Generator().manual_seed((cfg.seed + 1) % 2**64)  # 64 bits
        self.progress = Progress()
        self.state: State | None = None
        self.state_path = resume.state_path_for(self.out)
        self.fp = fingerprint(train_ids, tokenizer, model.cfg)
        self.history: list[hist.Point] = []  # one point per validation, bounded
        self.budget = Budget(cfg, spans_per_epoch(self.streams, cfg.seq_len))
        self.recovery = Recovery(model, self.opt)
        self._best_step: int | None = None  # the step of the model this run saved last
        self._timed = (0.0, 0)  # --eval-seconds: (elapsed at the last validation, validations)
        self.half = False  # store the best model in fp16

    # ---- budget -----------------------------------------------------------------------------
    def total_steps(self) -> int | None:
        return self.budget.total_steps()

    def fraction_done(self) -> float:
        return self.budget.fraction_done(self.progress.step, self.progress.elapsed)

    def finished(self) -> bool:
        return self.budget.finished(self.progress.step, self.progress.elapsed)

    # ---- resume -----------------------------------------------------------------------------
    def save_state(self) -> None:
        tensors = {
            f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()
        }
        opt_tensors, opt_meta = resume.optimizer_to_tensors(self.opt)
        tensors.update(opt_tensors)
        if self.state is not None:  # every rank's rows, joined: the state of the whole batch
            joined = dd.whole_state(self.world, self.model, self.state)
            tensors.update({f"hidden.{i}": s.contiguous() for i, s in enumerate(joined)})
        for r, rng in enumerate(dd.gather(self.world, torch.get_rng_state())):
            tensors["rng.torch" + (f".{r}" if r else "")] = rng
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
            "world_size": self.world.size,
        }
        if self.world.main:
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
            torch.set_rng_state(self._saved_rng(tensors))
            self.data_gen.set_state(tensors["rng.data"])
        except KeyError as exc:
            raise CheckpointError(f"resume state lacks tensor {exc}", path=str(path)) from None
        except CheckpointError as exc:
            raise CheckpointError(exc.message, hint=exc.hint, path=str(path)) from None
        except (TypeError, ValueError, RuntimeError) as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise CheckpointError(f"unusable RNG state: {first}", path=str(path)) from None
        saved = (meta["train_config"]["batch_size"], meta["train_config"]["seq_len"])
        was, decay = set_weight_decay(self.opt, self.cfg.weight_decay), self.cfg.weight_decay
        notices = [] if was == [decay] else [f"weight decay {decay:g} (was {was[0]:g})"]
        if saved != (self.cfg.batch_size, self.cfg.seq_len):
            notices.append(
                f"batch {self.cfg.batch_size} x {self.cfg.seq_len} (was {saved[0]} x {saved[1]}): "
                "continuing with a fresh carried state"
            )
        else:
            if meta["hidden"]:
                state = load_hidden(self.model, self.cfg.batch_size, tensors, path)
                self.state = dd.my_rows(self.world, self.model, state, self.cfg.batch_size)
            if same_data:
                self._check_position(prog, path)
        self.progress = Progress(**prog)
        self.history = hist.from_resume(meta["history"])
        return notices

    def _saved_rng(self, tensors: dict) -> torch.Tensor:
        """This rank's torch RNG state; a rank the interrupted run did not have starts its own."""
        r = self.world.rank
        key = "rng.torch" + (f".{r}" if r else "")
        if key in tensors or not r:
            return tensors[key]
        return torch.Generator().manual_seed(self.cfg.seed * 7919 + r).get_state()

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
        """Train until the budget is spent, early stopping triggers or should_stop() says so."""
        first_step = self.progress.step
        self.model.train()
        clock = Clock(self.progress.elapsed)
        self._timed = (self.progress.elapsed, 0)
        ended = self._loop(clock)
        self._close(interrupted=ended == "interrupted", clock=clock)
        self._record_total(resumed=first_step > 0)
        return self._result(ended)

    def _loop(self, clock: Clock) -> str | None:
        """The steps; returns why they ended early ("interrupted", "early stop") or None."""
        p, cfg = self.progress, self.cfg
        device = self.model.embed.weight.device
        while True:
            stop, p.elapsed = dd.agree(self.world, self.should_stop(), clock.elapsed())
            if self.finished():
                return None
            if stop:
                return "interrupted"
            self._next_epoch_if_due()
            x, y = span(self.streams, p.offset + p.pos * cfg.seq_len, cfg.seq_len, device)
            lr = lr_at(cfg, p.step, self.fraction_done()) * p.lr_scale
            set_lr(self.opt, lr)
            value, state = self._guarded_step(x, y)
            if state is None:
                self.state = None
                self.recovery.non_finite(p, lambda text: self._emit("nan", text=text))
                p.pos += 1
                continue
            self.recovery.finite()
            self._advance(value, state, y.numel(), clock)
            self._emit("step", loss=value, lr=lr, tokens_per_s=clock.rate())
            if p.step % cfg.eval_every == 0 or self.finished() or self._eval_due():
                if self._evaluate_and_save():
                    return "early stop"
                clock.new_window()

    def _eval_due(self) -> bool:
        """--eval-seconds: so long since the last validation (the first gaps shorter, so that
        a watcher gets a model early). p.elapsed is alike on every rank: one decision."""
        last, count = self._timed
        gap = min(self.cfg.eval_seconds, FIRST_GAP * 2 ** min(count, 20))
        return self.cfg.eval_seconds > 0 and self.progress.elapsed - last >= gap

    def _next_epoch_if_due(self) -> None:
        """At the first step and after the last span: a new epoch at a new random offset, cold."""
        p, seq = self.progress, self.cfg.seq_len
        if p.pos < spans_per_epoch(self.streams, seq, p.offset) and (p.pos or p.step):
            return
        if p.step > 0:
            p.epoch += 1
        p.pos, self.state = 0, None
        p.offset = epoch_offset(self.streams, seq, self.data_gen)

    def _advance(self, loss: float, state: State, tokens: int, clock: Clock) -> None:
        """After a finite step: carry the detached state (fp32) and count the step."""
        self.state = tuple(
            s.float() if s.is_floating_point() else s for s in self.model.detach_state(state)
        )
        p, tokens = self.progress, tokens * self.world.size
        p.step += 1
        p.pos += 1
        p.tokens_seen += tokens
        p.last_loss = loss
        clock.tokens += tokens

    def _close(self, interrupted: bool, clock: Clock) -> None:
        """Interrupted: save the resume state only (the best model is on disk). Otherwise
        validate the last step unless that has just been done."""
        p = self.progress
        p.elapsed = clock.elapsed()
        evaluated_now = bool(self.history) and self.history[-1][0] == p.step
        if interrupted and dd.main_says(self.world, self.out.exists()):  # rank 0's disk
            self.save_state()
        elif p.step > 0 and not evaluated_now:
            self._evaluate_and_save()

    def _result(self, ended: str | None) -> TrainResult:
        p = self.progress
        return TrainResult(
            steps=p.step,
            epochs=p.epoch + p.pos / max(1, self.budget.per_epoch),
            elapsed=p.elapsed,
            best_val=p.best_val,
            last_loss=p.last_loss,
            model_path=self.out,
            state_path=self.state_path,
            interrupted=ended == "interrupted",
            stopped_early=ended == "early stop",
            tokens_seen=p.tokens_seen,
            history=self.history,
        )

    def _record_total(self, resumed: bool) -> None:
        """Note in the model file how many steps the run made in all, and its whole history, when
        it went on past the best model (a model file left by another run is not this run's to
        annotate)."""
        mine = self.world.main and (self._best_step is not None or resumed)
        if mine and self._best_step != self.progress.step and self.out.exists():
            updates = {"total_steps": self.progress.step, "history": hist.to_summary(self.history)}
            modelfile.update_training(self.out, updates)

    def _guarded_step(self, x: Tensor, y: Tensor) -> tuple[float, State | None]:
        """_step, with running out of memory turned into a ResourceError that says what to lower."""
        try:
            return self._step(x, y)
        except (RuntimeError, MemoryError) as exc:
            if not is_out_of_memory(exc):
                raise
            cfg = self.cfg
            raise out_of_memory(
                exc,
                f"training {self.model.num_parameters():,} parameters at batch "
                f"{cfg.batch_size} x {cfg.seq_len} tokens",
                hint="lower --batch-size, --seq-len or --hidden"
                + (" (or --max-vocab)" if self.tokenizer.level == "word" else ""),
            ) from None

    def _step(self, x: Tensor, y: Tensor) -> tuple[float, State | None]:
        """One optimisation step; (loss, new state), or (nan, None) when the loss is not finite."""
        loss, state = forward(self.net, x, y, self.state, self.cfg.precision)
        value = dd.mean(self.world, loss)  # every rank: the loss of the whole batch
        if not math.isfinite(value):
            return value, None
        descend(loss, self.opt, self.model, self.cfg.clip)
        return value, state

    def _evaluate_and_save(self) -> bool:
        """Validate, keep the best model, save resume state. True when early stopping triggers."""
        p, cfg = self.progress, self.cfg
        val_ids = self.val_ids[: cfg.eval_tokens] if cfg.eval_tokens else self.val_ids
        val, scored = held_out_loss(self.model, val_ids, start_token(self.tokenizer))
        val = dd.mean(
            self.world, torch.tensor(val, dtype=torch.float64)
        )  # alike on every rank: one decision
        point = hist.Point(p.step, p.tokens_seen, round(p.elapsed, 2), p.last_loss, val)
        self.history = hist.add(self.history, point)
        self._timed = (p.elapsed, self._timed[1] + 1)
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
                "history": hist.to_summary(self.history),
            }
            if self.world.main:
                modelfile.save_model(self.out, self.model, self.tokenizer, summary, half=self.half)
            self._best_step = p.step
            self.recovery.remember()
        else:
            p.bad_evals += 1
        self.save_state()
        self._emit("eval", val_loss=val, loss=p.last_loss)
        if cfg.sample_every >= 0 and self.world.main:
            text = sample_text(
                self.model, self.tokenizer, 120 if self.tokenizer.level == "char" else 30, p.step
            )
            self._emit("sample", text=text)
        return bool(cfg.patience and p.bad_evals >= cfg.patience)

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
                tokens=p.tokens_seen,
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
    return out if out.name.endswith(MODEL_SUFFIX) else out.with_name(out.name + MODEL_SUFFIX)


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
