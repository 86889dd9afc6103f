"""Section 9: seconds per training epoch for 1, 10 and 100 MB corpora; panel latency against
context length (bench_panel).

An epoch of 100 MB takes hours, so each size is measured, not run to the end: rnnrepl's own
set-up for `rnnrepl train CORPUS -o X --epochs 1` (options parsed by its CLI, data read and
encoded by its code, model and batch geometry from its autosize), then a fixed number of
training steps and one validation pass over a sample of the validation split, both timed. The
epoch is extrapolated from those: steps/epoch x seconds/step, plus the validations rnnrepl runs
in an epoch (one every eval_every steps and one at the end, each over the first eval_tokens of
the validation split, rnnrepl's cap per pass) x seconds per validation token. Data preparation is measured, not extrapolated.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from bench_panel import panel_scaling
from bench_system import big_corpus
from common import row

LINEAR_RATIO = 1.25  # "linear": seconds per epoch per MB within 1.25x from smallest to largest


def measure_size(path: Path, tmp: Path, steps: int, eval_sample: int) -> dict:
    from rich.console import Console

    from rnnrepl.cli.main import train as train_command
    from rnnrepl.cli.train_config import make_configs
    from rnnrepl.cli.train_data import prepare_data
    from rnnrepl.model.devices import resolve_precision
    from rnnrepl.train.loop import Trainer, new_model, spans_per_epoch
    from rnnrepl.train.validation import held_out_loss, start_token

    out = tmp / path.stem
    opts = dict(
        train_command.make_context("train", [str(path), "-o", str(out), "--epochs", "1"]).params
    )
    opts["precision_resolved"] = resolve_precision(opts["precision"], "cpu")
    start = time.perf_counter()
    # the token cache goes to the temp dir, not the user's data dir (and is encoded afresh)
    with mock.patch.dict(os.environ, {"XDG_DATA_HOME": str(tmp / "data")}):
        tok, train_ids, val_ids, summary = prepare_data(opts, Console(stderr=True))
    mcfg, tcfg = make_configs(opts, tok, len(train_ids), len(val_ids))
    times: list[float] = []

    def on_event(ev) -> None:
        if ev.kind == "step":
            times.append(time.perf_counter())

    model = new_model(mcfg, tcfg.seed, "cpu")
    trainer = Trainer(model, tok, train_ids, val_ids, tcfg, out, summary,
                      on_event=on_event, should_stop=lambda: len(times) > steps)  # fmt: skip
    prep = time.perf_counter() - start
    trainer.run()
    step_s = statistics.median(b - a for a, b in zip(times, times[1:], strict=False))
    sample = val_ids[:eval_sample]
    begin = time.perf_counter()
    _, scored = held_out_loss(model, sample, start_token(tok))
    per_val_token = (time.perf_counter() - begin) / max(1, scored)
    per_epoch = spans_per_epoch(trainer.streams, tcfg.seq_len)
    evals = per_epoch // tcfg.eval_every + 1
    per_pass = min(len(val_ids), tcfg.eval_tokens or len(val_ids))
    train_s, eval_s = per_epoch * step_s, evals * per_pass * per_val_token
    return {
        "bytes": path.stat().st_size,
        "train_tokens": len(train_ids),
        "val_tokens": per_pass,
        "val_split_tokens": len(val_ids),
        "model": f"{mcfg.arch} {mcfg.layers}x{mcfg.hidden} embed {mcfg.embed}",
        "batch": f"{tcfg.batch_size}x{tcfg.seq_len} {tcfg.precision}",
        "prep_s": prep,
        "steps_measured": len(times) - 1,
        "step_s": step_s,
        "steps_per_epoch": per_epoch,
        "evals_per_epoch": evals,
        "val_tokens_timed": scored,
        "eval_s_per_val_token": per_val_token,
        "train_s_per_epoch": train_s,
        "eval_s_per_epoch": eval_s,
        "epoch_s": train_s + eval_s,
    }


def scaling(quick: bool, **_) -> dict:
    sizes, steps, sample = ([1, 10], 4, 20_000) if quick else ([1, 10, 100], 30, 100_000)
    measured = {}
    with tempfile.TemporaryDirectory(prefix="rnnrepl-bench-") as tmp:
        tmp = Path(tmp)
        for mb in sizes:
            print(f"  corpus {mb} MB", flush=True)
            path = big_corpus(tmp, mb)
            measured[mb] = measure_size(path, tmp, steps, sample)
            path.unlink()
    rows = []
    for m in measured.values():
        rows.append(
            row("9 scaling", f"seconds per epoch, {m['bytes'] / 1e6:.0f} MB corpus (extrapolated)",
                m["epoch_s"], "s", note=f"train {m['train_s_per_epoch']:,.0f} s ({m['steps_per_epoch']:,} "
                f"steps x {m['step_s'] * 1e3:.0f} ms, {m['steps_measured']} measured) + validation "
                f"{m['eval_s_per_epoch']:,.0f} s ({m['evals_per_epoch']} passes x {m['val_tokens']:,} "
                f"tokens); data prep {m['prep_s']:.1f} s measured; {m['model']}, {m['batch']}")
        )  # fmt: skip
    per_mb = {mb: m["epoch_s"] / (m["bytes"] / 1e6) for mb, m in measured.items()}
    lo, hi = min(sizes), max(sizes)
    ratio = per_mb[hi] / per_mb[lo]

    def part(key: str) -> float:  # per-MB growth of one part of the epoch
        return (measured[hi][key] / measured[hi]["bytes"]) / (
            measured[lo][key] / measured[lo]["bytes"]
        )

    rows.append(
        row("9 scaling", f"seconds per epoch per MB, {hi} MB vs {lo} MB", ratio, "x",
            target=f"linear: ≤ {LINEAR_RATIO:g}x", met=ratio <= LINEAR_RATIO,
            note=f"per MB, training steps alone: {part('train_s_per_epoch'):.2f}x; "
            f"validation passes alone: {part('eval_s_per_epoch'):.2f}x")
    )  # fmt: skip
    panel_rows, panel = panel_scaling(quick)
    return {"rows": rows + panel_rows, "details": {"epochs": measured, "panel": panel}}
