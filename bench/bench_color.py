"""Keystroke -> panel latency with /color on against off, in the same process.

Drives the real REPL application (bench_keystroke.run_ui_phases: pipe input, DummyOutput, the
model on its worker thread) over the same keystrokes (typing, a backspace one time in five)
with /color off and /color rank, alternated --repeat times so that a slow minute of a shared
machine hits both; each figure is the median over the repeats, and the ratio on/off is the
figure to read.

    python bench/bench_color.py [MODEL] [--keystrokes 300] [--contexts 10,1000] [--repeat 3]
        [--words 3] [--out bench/results/color.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_keystroke import load_model, percentile, run_ui_phases  # noqa: E402

SETTINGS = ("off", "rank")
QUANTILES = (50, 95, 99)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("--keystrokes", type=int, default=300)
    ap.add_argument("--contexts", default="10,1000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--words", type=int, default=3)
    ap.add_argument("--out", default="bench/results/color.json")
    args = ap.parse_args(argv)
    contexts = [int(c) for c in args.contexts.split(",")]

    from rnnrepl.repl.worker import use_threads

    loaded, described = load_model(args.model)
    use_threads(loaded.model.num_parameters())
    runs: dict[str, list[dict]] = {color: [] for color in SETTINGS}
    for _ in range(args.repeat):
        for color, done in runs.items():
            phases = run_ui_phases(loaded, contexts, args.keystrokes, args.words, color)
            done.append({c: [whole for _, whole in phases[c]] for c in contexts})
    report = {
        "model": described,
        "keystrokes": args.keystrokes,
        "repeat": args.repeat,
        "words": args.words,
        "ms": {color: _medians(done, contexts) for color, done in runs.items()},
        "compute_ms": compute_only(loaded, contexts, args.keystrokes),
    }
    table = markdown(report, contexts)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


def compute_only(loaded, contexts: list[int], n: int) -> dict:
    """Without the UI, per context: p50/p99 (ms) of the panel's prediction (compute_view,
    no words) and of the colours added after it (Predictor.colors), the same keystrokes."""
    from bench_keystroke import context_text, keystrokes

    from rnnrepl.infer.predictor import Predictor
    from rnnrepl.repl.state import compute_view

    predictor, out = Predictor(loaded, int8=True), {}
    for c in contexts:
        context, typed, view, colors = context_text(c), "", [], []
        predictor.colors(context, "rank", since=c)  # the document, colored once
        for key in keystrokes(n):
            typed = typed[:-1] if key == "\x7f" else typed + key
            start = time.perf_counter()
            compute_view(predictor, context + typed, 10, lambda: False)
            middle = time.perf_counter()
            predictor.colors(context + typed, "rank", since=c)
            view.append(middle - start)
            colors.append(time.perf_counter() - middle)
        out[str(c)] = {
            f"{name}_p{q}": 1e3 * percentile(values, q / 100)
            for name, values in (("view", view), ("colors", colors))
            for q in (50, 99)
        }
    return out


def _medians(done: list[dict], contexts: list[int]) -> dict:
    """Per context: each percentile (ms), the median over the repeated runs."""
    return {
        str(c): {
            f"p{q}": 1e3 * statistics.median(percentile(run[c], q / 100) for run in done)
            for q in QUANTILES
        }
        for c in contexts
    }


def markdown(report: dict, contexts: list[int]) -> str:
    lines = [
        f"model: {report['model']}; {report['keystrokes']} keystrokes per context, words "
        f"{report['words']}, median of {report['repeat']} alternated run(s)",
        "",
        "| context (chars) | /color off p50 / p95 / p99 ms | /color rank p50 / p95 / p99 ms "
        "| ratio on/off |",
        "|---:|---|---|---|",
    ]
    for c in contexts:
        off, on = (report["ms"][color][str(c)] for color in SETTINGS)
        cells = [" / ".join(f"{fig[f'p{q}']:.2f}" for q in QUANTILES) for fig in (off, on)]
        ratio = " / ".join(f"{on[f'p{q}'] / off[f'p{q}']:.2f}" for q in QUANTILES)
        lines.append(f"| {c:,} | {cells[0]} | {cells[1]} | {ratio} |")
    lines += [
        "",
        "model thread alone (no UI, no words):",
        "",
        "| context (chars) | prediction p50 / p99 ms | + colours p50 / p99 ms |",
        "|---:|---|---|",
    ]
    for c, fig in report["compute_ms"].items():
        lines.append(
            f"| {int(c):,} | {fig['view_p50']:.2f} / {fig['view_p99']:.2f} "
            f"| {fig['colors_p50']:.2f} / {fig['colors_p99']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
