"""Sections 1 and 2: validation loss after a wall-clock training budget, rnnrepl vs reference.

rnnrepl is trained exactly as a user would, through its CLI with defaults only (it sizes the
model for the budget itself); the reference is bench/reference.py in its own process for the
same number of training seconds. Runs alternate sides. Both final models are scored over the
whole validation split by bench/evaluate.py (batch 1, the state carried: what `rnnrepl eval`
computes, checked against it on a prefix).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

from common import BENCH, SHAKESPEARE, WIKI, alternate, char_split, rnnrepl_argv, row, run_timed

LN2 = math.log(2)


def rnnrepl_train(inputs: list[str], extra: list[str], out: Path, tree: str | None = None) -> dict:
    """`rnnrepl train`, installed, or `python -m rnnrepl` from the source tree `tree` (a lever
    tried in a git worktree)."""
    head = [sys.executable, "-m", "rnnrepl"] if tree else rnnrepl_argv()
    argv = [*head, "train", *inputs, "-o", str(out), *extra]
    print("  $", *([f"[{tree}]"] if tree else []), " ".join(argv[len(head) :]), flush=True)
    env = os.environ | {"PYTHONPATH": tree} if tree else None
    # `python -m` puts its working directory first on the path: from the repository's root it
    # would import the repository's rnnrepl, not the tree's, so the tree runs in the tree
    cwd = {"cwd": Path(tree)} if tree else {}
    proc = run_timed(argv, env=env, **cwd).check()
    res = {"argv": argv, "wall_seconds": proc.seconds, "maxrss_mb": proc.maxrss_mb}
    return res | ({"tree": tree} if tree else {})


def score_rnnrepl(model_path: Path, val_text: str, cap: int = 0) -> dict:
    """Load an rnnrepl model file and score `val_text` (its first `cap` tokens if cap)."""
    import torch
    from evaluate import sequence_loss

    from rnnrepl.store.modelfile import load_model
    from rnnrepl.text.tokens import encode_corpus

    loaded = load_model(model_path)
    ids = torch.from_numpy(encode_corpus(val_text, loaded.tokenizer).astype("int64"))
    total = len(ids)
    ids = ids[:cap] if cap else ids
    start = loaded.tokenizer.index.get("\n", 0)
    loss, count = sequence_loss(loaded.model, ids, start, loaded.config.vocab_size)
    c, t = loaded.config, loaded.training
    return {
        "val_loss": loss,
        "val_tokens": count,
        "val_total_tokens": total,
        "model": f"{c.arch} {c.layers}x{c.hidden} embed {c.embed} dropout {c.dropout:g}"
        + (" tied" if c.tie else "")
        + (f" {'class-factored' if c.tie else 'adaptive'} {list(c.cutoffs)}" if c.cutoffs else ""),
        "parameters": loaded.model.num_parameters(),
        "train_config": t.get("train_config"),
        "steps": t.get("steps"),
        "tokens_seen": t.get("tokens_seen"),
        "train_elapsed_at_best": t.get("elapsed"),
        "own_val_loss": t.get("val_loss"),
    }


def train_with_fallback(inputs: list[str], extra: list[str], out: Path) -> dict:
    """The default command; if it fails, say so and retry in fp32 (bf16 autocast is the one
    default that differs between machines)."""
    try:
        return rnnrepl_train(inputs, extra, out)
    except RuntimeError as exc:
        print(f"  default command failed: {exc}\n  retrying with --precision fp32", flush=True)
        return rnnrepl_train(inputs, [*extra, "--precision", "fp32"], out) | {
            "default_failed": str(exc)
        }


def reference(level: str, seconds: float, out: Path, extra: list[str] = ()) -> dict:
    argv = [sys.executable, str(BENCH / "reference.py"), level, "--time", f"{seconds:g}"]
    argv += [*extra, "--out", str(out)]
    print("  $ reference", " ".join(argv[3:]), flush=True)
    proc = run_timed(argv).check()
    return json.loads(out.read_text()) | {"wall_seconds": proc.seconds, "maxrss_mb": proc.maxrss_mb}


def eval_check(model_path: Path, val_text: str, chars: int, tmp: Path) -> dict:
    """`rnnrepl eval` itself beside bench/evaluate.py, on a prefix of the split."""
    prefix = tmp / "val-prefix.txt"
    prefix.write_text(val_text[:chars], encoding="utf-8")
    proc = run_timed([*rnnrepl_argv(), "eval", str(model_path), str(prefix), "--json"]).check()
    exact = json.loads(proc.stdout)["total"]["cross_entropy"]
    batched = score_rnnrepl(model_path, val_text[:chars])["val_loss"]
    return {"chars": chars, "rnnrepl_eval": exact, "bench_evaluator": batched,
            "abs_diff": abs(exact - batched), "rnnrepl_eval_seconds": proc.seconds}  # fmt: skip


def char_quality(quick: bool, **_) -> dict:
    slots = [("71 s", 71.0, 1.60, 3), ("5 min", 300.0, 1.45, 1)]
    if quick:
        slots = [("71 s", 8.0, 1.60, 1), ("5 min", 12.0, 1.45, 1)]
    _, val_text = char_split()
    cap = 20000 if quick else 0  # quick: the first 20,000 validation characters only
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="rnnrepl-bench-") as tmp:
        tmp = Path(tmp)
        for s, (label, seconds, _, repeats) in enumerate(slots):
            for r in range(repeats):
                for side in alternate(["rnnrepl", "reference"], s + r):
                    print(f"[char {label}, run {r + 1}/{repeats}] {side}", flush=True)
                    out = tmp / f"char-{s}-{r}"
                    if side == "rnnrepl":
                        res = rnnrepl_train([str(SHAKESPEARE)], ["--time", f"{seconds:g}s"], out)
                        res |= score_rnnrepl(out.with_suffix(".safetensors"), val_text, cap)
                    else:
                        flags = ["--tuned"] + (["--val-tokens", str(cap)] if cap else [])
                        res = reference("char", seconds, out.with_suffix(".json"), flags)
                    runs.append(res | {"side": side, "slot": label, "seconds": seconds})
        first = next(r for r in runs if r["side"] == "rnnrepl")
        model = Path(first["argv"][first["argv"].index("-o") + 1]).with_suffix(".safetensors")
        check = eval_check(model, val_text, 4000 if quick else 20000, tmp)
    rows = []
    for label, seconds, target, _ in slots:
        mine = [r["val_loss"] for r in runs if r["slot"] == label and r["side"] == "rnnrepl"]
        ref = [r["val_loss"] for r in runs if r["slot"] == label and r["side"] == "reference"]
        v, b = statistics.median(mine), statistics.median(ref)
        chosen = next(r["model"] for r in runs if r["slot"] == label and r["side"] == "rnnrepl")
        name = f"char val loss after `train --time {label}`"
        if quick:
            name = f"char val loss after {seconds:g} s (quick, first {cap:,} chars; slot {label})"
        rows.append(
            row(
                "1 char quality",
                name,
                v,
                "nats/char",
                baseline=b,
                baseline_label="reference plain LSTM, tuned for the budget, same seconds",
                target=f"≤ {target:.2f}",
                met=None if quick else v <= target,
                note=f"{v / LN2:.3f} vs {b / LN2:.3f} bits/char; median of {len(mine)}; "
                f"rnnrepl chose {chosen}",
            )
        )
    rows.append(
        row(
            "1 char quality",
            "evaluator check: `rnnrepl eval` minus bench evaluator",
            check["rnnrepl_eval"] - check["bench_evaluator"],
            "nats/char",
            note=f"first {check['chars']:,} val chars: {check['rnnrepl_eval']:.4f} vs "
            f"{check['bench_evaluator']:.4f}",
        )
    )
    notes = [
        "Char: rnnrepl = `rnnrepl train input.txt -o X --time T` (defaults; it keeps the best "
        "model by its own periodic validation on the same split); reference = bench/reference.py "
        "char --tuned (a plain nn.LSTM, Adam, clip 5, no dropout, with the width, learning rate, "
        "batch and bptt that won bench/tune_reference.py's sweep at the nearest budget; final "
        "weights). Same training seconds, own processes, sides alternating; both scored by "
        "bench/evaluate.py, which equals `rnnrepl eval` (the check row).",
    ]
    return {"rows": rows, "details": {"runs": runs, "eval_check": check}, "notes": notes}


def word_quality(quick: bool, word_untied: bool = False, **_) -> dict:
    seconds, cap = (12.0, 20000) if quick else (960.0, 0)
    sides = ["rnnrepl", "reference tied"] + (["reference untied"] if word_untied else [])
    train, valid = WIKI / "train.txt", WIKI / "valid.txt"
    val_text = valid.read_text(encoding="utf-8")
    runs = []
    with tempfile.TemporaryDirectory(prefix="rnnrepl-bench-") as tmp:
        tmp = Path(tmp)
        if quick:  # rnnrepl's own validation passes would dominate a 12-second run
            valid = tmp / "valid-head.txt"
            valid.write_text("".join(val_text.splitlines(keepends=True)[:200]), "utf-8")
        for side in sides:
            print(f"[word {seconds:g} s] {side}", flush=True)
            if side == "rnnrepl":
                out = tmp / "word"
                extra = ["--level", "word", "--val", str(valid), "--time", f"{seconds:g}s"]
                res = train_with_fallback([str(train)], extra, out)
                res |= score_rnnrepl(out.with_suffix(".safetensors"), val_text, cap)
            else:
                flags = ["--tied"] if side.endswith(" tied") else []
                flags += ["--val-tokens", str(cap)] if cap else []
                res = reference("word", seconds, tmp / f"{side[-4:]}.json", flags)
            runs.append(res | {"side": side, "ppl": math.exp(res["val_loss"])})
    mine = next(r for r in runs if r["side"] == "rnnrepl")
    ref = next(r for r in runs if r["side"] == "reference tied")
    # Same text, different tokenizers: total nats over the example's token count.
    per_ref_token = mine["val_loss"] * mine["val_total_tokens"] / ref["val_total_tokens"]
    ppl = math.exp(per_ref_token)
    rows = [
        row(
            "2 word quality",
            "WikiText-2 val perplexity after `train --level word --time 16m`"
            if not quick
            else f"WikiText-2 val perplexity after {seconds:g} s (quick, first {cap:,} tokens)",
            ppl,
            "ppl",
            baseline=ref["ppl"],
            baseline_label="reference 2x200 LSTM tied, full softmax",
            target="≤ 150",
            met=None if quick else ppl <= 150,
            note=f"per example token ({ref['val_total_tokens']:,}); per rnnrepl token "
            f"({mine['val_total_tokens']:,}): {mine['ppl']:.1f}; rnnrepl chose {mine['model']}",
        )
    ]
    if mine.get("default_failed"):
        rows[0] |= {"figure": rows[0]["figure"] + " — with --precision fp32", "met": None}
        rows.insert(0, row("2 word quality", "`train --level word` with defaults", None, "",
                           target="runs", met=False, note=mine["default_failed"]))  # fmt: skip
    for r in runs:
        if r["side"] == "reference untied":
            rows.append(row("2 word quality", "reference untied perplexity", r["ppl"], "ppl"))
    notes = [
        "Word: rnnrepl = `rnnrepl train train.txt --level word --val valid.txt --time 16m`; "
        "reference = bench/reference.py word (the example's defaults: 2x200, dropout 0.2, batch "
        "20, bptt 35, clip 0.25, full softmax; Adam lr 1e-3; tied unless stated). The two "
        "tokenize valid.txt slightly differently, so rnnrepl's total nats are divided by the "
        "example's token count before exponentiating.",
    ]
    return {"rows": rows, "details": {"runs": runs}, "notes": notes}
