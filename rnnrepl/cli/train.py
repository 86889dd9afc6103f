"""`rnnrepl train`: the run, a rich progress display, signals (options -> configs: train_config.py;
reading the text: train_data.py)."""

from __future__ import annotations

import contextlib
import io
import math
import shlex
import signal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from rnnrepl.cli.train_config import (
    check_sizes,
    make_configs,
    resumed_settings,
    speed_probe,
)
from rnnrepl.cli.train_data import prepare_data
from rnnrepl.cli.train_log import EventLog, log_end
from rnnrepl.config import TrainConfig
from rnnrepl.errors import InputDataError, UsageError
from rnnrepl.ui.textsafe import escape_char, is_unsafe, safe_text


class StopFlag:
    """First SIGINT/SIGTERM: finish the step and save. Second SIGINT: stop at once."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            # stopping now: a third Ctrl-C would only cut the closing line and exit code short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            raise KeyboardInterrupt
        self.signal = signum

    def __call__(self) -> bool:
        return self.signal is not None


def run_train(opts: dict[str, Any], out: Console, err: Console, argv: list[str]) -> int:
    from rnnrepl.train import distributed as dd

    world = dd.from_env()
    if (world.many or opts.get("nproc", 1) > 1) and "-" in opts["inputs"]:
        raise UsageError(
            "several training processes cannot share standard input: each reads the inputs itself",
            hint="save the text to a file and train on that",
        )
    if opts.get("nproc", 1) > 1 and not world.many:
        from rnnrepl.cli.launch import launch

        if opts.get("batch_size"):  # said once here rather than by every process
            dd.check_batch(dd.World(size=opts["nproc"]), opts["batch_size"])
        return launch(opts["nproc"], argv)
    log = EventLog(opts["log"]) if opts.get("log") and world.main else None
    try:
        return _train(opts, out, err, argv, world, log)
    except RuntimeError as exc:
        raise dd.lost_peers(world, exc) from None
    finally:
        dd.stop(world)
        if log is not None:
            log.close()


def _train(opts: dict[str, Any], out: Console, err: Console, argv: list[str], world, log) -> int:
    from rnnrepl.atomic import OutputLock
    from rnnrepl.model.devices import resolve_device, resolve_precision
    from rnnrepl.train import distributed as dd
    from rnnrepl.train import loop as tr

    if sum(1 for k in ("steps", "epochs") if opts[k]) > 1:
        raise UsageError("give at most one of --epochs and --steps (--time may be combined)")
    out_path = output_path(opts)
    world = dd.start(world, resolve_device(opts["device"]))
    device = world.device
    if not world.main:  # rank 0 alone shows what happens; the others print only their errors
        out = err = Console(file=io.StringIO(), width=err.width)
    opts["precision_resolved"] = resolve_precision(opts.get("precision", "auto"), device)
    # What reading, embeddings and resuming found is shown once all of them succeeded, so that
    # a failure (bad data, a damaged resume file, out of memory) is still exactly one line.
    notes = Console(file=io.StringIO(), highlight=False, width=err.width, soft_wrap=True)
    tok, train_ids, val_ids, summary = prepare_data(opts, notes)
    model_path = tr.model_file(out_path)  # --resume keeps the model of the state beside it
    probe = speed_probe(opts, device, world.many, notes, len(train_ids))
    interrupted = resumed_settings(opts, device, world.many, model_path)
    model_cfg, train_cfg = make_configs(opts, tok, len(train_ids), len(val_ids), probe, interrupted)
    check_sizes(train_cfg, len(train_ids), len(val_ids))
    dd.check_batch(world, train_cfg.batch_size)
    summary |= {
        "command": _command_line(argv),
        "train_config": train_cfg.to_dict(),
        "level": tok.level,
    }
    with OutputLock(out_path) if world.main else contextlib.nullcontext():
        model = tr.new_model(model_cfg, train_cfg.seed, device)
        if opts["embeddings"]:
            _init_embeddings(opts, tok, model, notes)
        stop = StopFlag()
        data = (tok, train_ids, val_ids)
        trainer = _trainer(opts, model, data, train_cfg, out_path, summary, stop, world, notes)
        err.file.write(notes.file.getvalue())
        _announce(err, model, tok, train_cfg, summary, device)
        stop.install()
        try:
            result = _run_with_display(trainer, tok.level, err, log)
        except KeyboardInterrupt:  # the second Ctrl-C: StopFlag stops at once
            return _stopped_unsaved(trainer, err)
    if log is not None:
        log_end(log, result)
    return _report(result, tok.level, out, err, stop, argv)


def _trainer(opts, model, data, train_cfg, out_path, summary, stop, world, notes: Console):
    """The Trainer, checked alike on every rank, resumed when asked (what it found: in notes)."""
    from rnnrepl.train import loop as tr

    trainer = tr.Trainer(model, *data, train_cfg, out_path, summary, should_stop=stop, world=world)
    _check_same_everywhere(world, trainer.fp)
    trainer.half = bool(opts.get("half"))
    if opts["resume"]:
        for notice in trainer.load_state(allow_different=opts["warm_start"]):
            notes.print(Text(safe_text(f"note: {notice}")))
        p = trainer.progress
        notes.print(f"resuming from step {p.step:,} (epoch {p.epoch + 1})")
    elif opts.get("force") and world.main:
        trainer.state_path.unlink(missing_ok=True)  # stale: it belongs to the model replaced
    return trainer


def _check_same_everywhere(world, fingerprint: str) -> None:
    from rnnrepl.train import distributed as dd

    if not dd.same_everywhere(world, fingerprint):
        raise InputDataError(
            "the training processes read different data, tokenizers or models",
            hint="give every process the same files and options (on several machines, the same copies)",
        )


def _stopped_unsaved(trainer, err: Console) -> int:
    """One line for a run stopped by a second Ctrl-C: nothing more was saved; what holds what."""
    if trainer.out.exists():
        held = f"{trainer.out} still holds the last good model"
        if trainer.state_path.exists():
            held += f", {trainer.state_path} the last resume point"
    else:
        held = "no model had been saved yet"
    err.print(
        f"stopped by a second Ctrl-C without saving: {safe_text(held, one_line=True)}",
        markup=False,
        soft_wrap=True,
    )
    return 130


def output_path(opts: dict[str, Any]) -> Path:
    """The model file -o names (default: NAME in the model home); refuses to replace a trained
    model unless --resume continues it or --force overwrites it."""
    from rnnrepl.atomic import OutputLock
    from rnnrepl.store.home import default_name, models_home
    from rnnrepl.store.resume import state_path_for
    from rnnrepl.train import loop as tr

    output = opts.get("output") or str(models_home() / default_name(opts["inputs"]))
    path = tr.model_file(output)
    force, resume = opts.get("force"), opts["resume"]
    if force and resume:
        raise UsageError("give --resume or --force, not both")
    state = state_path_for(path)
    if resume and not state.exists():  # before reading any data: the error stays one line
        raise UsageError(
            f"nothing to resume: {state} does not exist", hint="train without --resume"
        )
    if not (resume or force) and (path.exists() or state.exists()):
        with OutputLock(path):  # a training writing it right now is refused as such (exit 5)
            pass
        raise UsageError(
            f"{path} exists; training would replace it",
            hint="pass --resume to continue its training, --force to overwrite it, or another -o",
        )
    return path


def _init_embeddings(opts, tok, model, err: Console) -> None:
    from rnnrepl.text.vectors import load_vectors

    if tok.level != "word":
        raise UsageError("--embeddings needs --level word")
    found = load_vectors(
        opts["embeddings"], tok.index, model.embed.weight.data, lowercase=tok.lowercase
    )
    err.print(
        Text(
            safe_text(
                f"embeddings: {found:,} of {tok.size:,} words initialised from {opts['embeddings']}"
            )
        )
    )


def _announce(err: Console, model, tok, cfg: TrainConfig, summary: dict, device: str) -> None:
    budget = []
    if cfg.steps:
        budget.append(f"{cfg.steps} steps")
    if cfg.epochs:
        budget.append(f"{cfg.epochs:g} epochs")
    if cfg.time_limit:
        budget.append(f"{cfg.time_limit:g}s")
    decay = f", weight decay {cfg.weight_decay:g}" if cfg.weight_decay else ""
    err.print(
        f"{tok.level} level, vocabulary {tok.size:,}, {summary['train_tokens']:,} train / "
        f"{summary['val_tokens']:,} val tokens (unknown {100 * summary['unknown_rate']:.2f}%)\n"
        f"{model.cfg.describe()}: "
        f"{model.num_parameters():,} parameters on {device}; batch {cfg.batch_size} x {cfg.seq_len}, "
        f"{cfg.optimizer} lr {cfg.lr:g}{decay}, {cfg.precision}; budget {' / '.join(budget)}"
    )
    err.print(
        f"validation: {safe_text(summary['validation'], one_line=True)}",
        markup=False,
        soft_wrap=True,
    )


def _run_with_display(trainer, level: str, err: Console, log: EventLog | None = None):
    from rnnrepl.cli.train_display import TrainDisplay

    if log is not None:
        p = trainer.progress
        log.write("start", step=p.step, tokens=p.tokens_seen, level=level, model=str(trainer.out))
    with Live(console=err, auto_refresh=False, transient=True, redirect_stdout=False) as live:
        trainer.on_event = TrainDisplay(level, err, live, log)
        return trainer.run()


def _report(result, level: str, out: Console, err: Console, stop: StopFlag, argv: list[str]) -> int:
    from rnnrepl.ui.render import duration, metrics_line, summary_table

    rows = [
        ("steps", f"{result.steps:,} ({result.epochs:.2f} epochs, {result.tokens_seen:,} tokens)"),
        ("time", duration(result.elapsed)),
        ("last train loss", metrics_line(result.last_loss, level)),
        ("best val loss", metrics_line(result.best_val, level)),
        ("model", str(result.model_path)),
        ("resume state", str(result.state_path)),
    ]
    err.print(summary_table("training summary", rows))
    if result.interrupted:
        cmd = _command_line([a for a in argv if a != "--force"])
        if "--resume" not in cmd:
            cmd += " --resume"
        err.print("interrupted: checkpoint saved. Resume with:")
        err.file.write(f"  {cmd}\n")  # unwrapped and unstyled, so it can be copied as is
        err.file.flush()
        return 143 if stop.signal == signal.SIGTERM else 130
    if not math.isfinite(result.best_val):
        return 6
    out.print(Text(safe_text(f"saved {result.model_path}")))
    return 0


def _command_line(argv: list[str]) -> str:
    args = [a for a in argv[1:]]
    return "rnnrepl " + " ".join(_shell_quote(a) for a in args) if args else "rnnrepl train"


def _shell_quote(arg: str) -> str:
    """shlex.quote, or bash's $'...' when the argument holds characters a terminal would act on
    (a file name with an escape sequence): safe to print, and still right to paste."""
    if safe_text(arg, one_line=True) == arg:
        return shlex.quote(arg)
    return "$'" + "".join(_shell_char(ch) for ch in arg) + "'"


def _shell_char(ch: str) -> str:
    if 0xDC80 <= ord(ch) <= 0xDCFF:  # an undecodable byte of argv (surrogateescape)
        return f"\\x{ord(ch) - 0xDC00:02x}"
    if ch in "\\'":
        return "\\" + ch
    if not is_unsafe(ch):
        return ch
    code = ord(ch)  # bash reads \x9b as the byte 0x9b; U+009B needs \u009b
    if code < 0x80:
        return escape_char(ch)
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


__all__ = ["run_train", "Path"]
