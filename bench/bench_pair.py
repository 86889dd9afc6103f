"""Keystroke -> panel latency with two models (`chat A B`) against A alone, in the same process.

Drives the real REPL application (pipe input, DummyOutput, the models on the worker thread) over
the same keystrokes as bench_keystroke.py (typing, a backspace one time in five), with model A
alone and with A and B (B's panel and both models' figures computed in the job of A's panel),
alternated --repeat times so that a slow minute of a shared machine hits both; each figure is
the median over the repeats, and the ratio two/one is the figure to read (#17: at most 2).
Also the resident memory (VmRSS) after loading A, and after loading B as well.

    python bench/bench_pair.py [A] [B] [--keystrokes 300] [--contexts 10,1000] [--repeat 2]
        [--words 3] [--out bench/results/pair.json]

A and B default to the bundled shakespeare-char and wikitext-word.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_keystroke import PanelClock, _type_into, percentile  # noqa: E402

QUANTILES = (50, 95, 99)
SETUPS = ("one", "two")


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_ui(a, b, contexts: list[int], n: int, words: int) -> dict[int, list[float]]:
    """Per context: keystroke -> whole panel latencies (s), with model B beside A if given."""
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from rnnrepl.repl.app import ReplApp
    from rnnrepl.repl.state import Settings

    second = None if b is None else (lambda: b)
    with create_pipe_input() as pipe:
        repl = ReplApp(
            lambda: a,
            Settings(words=words),
            history=InMemoryHistory(),
            input=pipe,
            output=DummyOutput(),  # 80 columns: the two panels side by side
            emit=id,
            int8=True,  # chat's default
            second=second,
        )
        clock = PanelClock(repl)
        thread = threading.Thread(target=repl.run, kwargs={"handle_sigint": False}, daemon=True)
        thread.start()
        while repl.session.view is None or (b is not None and repl.pair.info is None):
            time.sleep(0.01)
        results = {
            c: [w for _, w in _type_into(repl, pipe, clock, _context(c), n)] for c in contexts
        }
        repl.ui.application.loop.call_soon_threadsafe(lambda: repl.ui.application.exit(result=0))
        thread.join(10)
    return results


def _context(chars: int) -> str:
    from bench_keystroke import context_text

    return context_text(chars)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", nargs="?", default="shakespeare-char")
    ap.add_argument("b", nargs="?", default="wikitext-word")
    ap.add_argument("--keystrokes", type=int, default=300)
    ap.add_argument("--contexts", default="10,1000")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--words", type=int, default=3)
    ap.add_argument("--out", default="bench/results/pair.json")
    args = ap.parse_args(argv)
    contexts = [int(c) for c in args.contexts.split(",")]

    import torch

    from rnnrepl.repl.worker import use_threads
    from rnnrepl.store.modelfile import load_model

    base = rss_mb()
    a = load_model(args.a)
    with_a = rss_mb()
    b = load_model(args.b)  # a second copy when A and B name the same model
    with_b = rss_mb()
    use_threads(a.model.num_parameters())
    runs: dict[str, list[dict]] = {setup: [] for setup in SETUPS}
    for _ in range(args.repeat):
        for setup, done in runs.items():  # alternated: a slow minute hits both
            done.append(
                run_ui(a, b if setup == "two" else None, contexts, args.keystrokes, args.words)
            )
    report = {
        "a": args.a,
        "b": args.b,
        "keystrokes": args.keystrokes,
        "repeat": args.repeat,
        "words": args.words,
        "threads": torch.get_num_threads(),
        "rss_mb": {"before": base, "a_loaded": with_a, "a_and_b_loaded": with_b, "end": rss_mb()},
        "ms": {setup: _medians(done, contexts) for setup, done in runs.items()},
        "compute_ms": compute_only(a, b, contexts, args.keystrokes, args.words),
    }
    table = markdown(report, contexts)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


def compute_only(a, b, contexts: list[int], n: int, words: int) -> dict:
    """Without the UI, the same keystrokes: p50/p99 (ms) of the model thread's work (A's view
    with its words, then with B's view and both models' figures, as Worker does) and of
    rendering the panel to ANSI at 80 columns (one panel; the two side by side)."""
    from bench_keystroke import context_text, keystrokes

    from rnnrepl.infer.predictor import Predictor
    from rnnrepl.repl.pair import Pair
    from rnnrepl.repl.pair_panel import pair_panel
    from rnnrepl.repl.panel import panel, to_ansi
    from rnnrepl.repl.state import Session, Settings, compute_view, model_info

    pa, pb = Predictor(a, int8=True), Predictor(b, int8=True)
    pair, session = Pair(None), Session(Settings(words=words))
    pair.predictor, pair.info, session.info = pb, model_info(b), model_info(a)
    shown: list = []
    out = {}
    for c in contexts:
        context, typed = context_text(c), ""
        times: dict[str, list[float]] = {k: [] for k in ("one", "two", "render1", "render2")}
        for key in keystrokes(n):
            typed = typed[:-1] if key == "\x7f" else typed + key
            text = context + typed
            t0 = time.perf_counter()
            session.view = compute_view(pa, text, 10, lambda: False, words, True)
            t1 = time.perf_counter()
            pair.compute(pa, text, 10, lambda: False, shown.append)
            t2 = time.perf_counter()
            to_ansi(panel(session.view, session.settings, 80), 80)
            t3 = time.perf_counter()
            shown.pop()()  # the UI's side: pair.view = the result
            to_ansi(pair_panel(session, pair, 80), 80)
            t4 = time.perf_counter()
            for name, dt in zip(times, (t1 - t0, t2 - t0, t3 - t2, t4 - t3), strict=True):
                times[name].append(dt)
        out[str(c)] = {
            f"{name}_p{q}": 1e3 * percentile(values, q / 100)
            for name, values in times.items()
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
    rss = report["rss_mb"]
    lines = [
        f"A {report['a']}, B {report['b']}; {report['keystrokes']} keystrokes per context, words "
        f"{report['words']}, {report['threads']} thread(s), median of {report['repeat']} "
        "alternated run(s)",
        "",
        "| context (chars) | A alone p50 / p95 / p99 ms | A and B p50 / p95 / p99 ms "
        "| ratio two/one |",
        "|---:|---|---|---|",
    ]
    for c in contexts:
        one, two = (report["ms"][setup][str(c)] for setup in SETUPS)
        cells = [" / ".join(f"{fig[f'p{q}']:.2f}" for q in QUANTILES) for fig in (one, two)]
        ratio = " / ".join(f"{two[f'p{q}'] / one[f'p{q}']:.2f}" for q in QUANTILES)
        lines.append(f"| {c:,} | {cells[0]} | {cells[1]} | {ratio} |")
    lines += [
        "",
        "without the UI: model thread (A's view and words; + B and both figures) and rendering "
        "the panel at 80 columns (one; two side by side), p50 / p99 ms:",
        "",
        "| context (chars) | model A | model A + B | ratio | render one | render two | ratio |",
        "|---:|---|---|---|---|---|---|",
    ]
    for c, f in report["compute_ms"].items():
        cells = []
        for x, y in (("one", "two"), ("render1", "render2")):
            cells += [f"{f[f'{x}_p50']:.2f} / {f[f'{x}_p99']:.2f}"]
            cells += [f"{f[f'{y}_p50']:.2f} / {f[f'{y}_p99']:.2f}"]
            cells += [f"{f[f'{y}_p50'] / f[f'{x}_p50']:.2f} / {f[f'{y}_p99'] / f[f'{x}_p99']:.2f}"]
        lines.append(f"| {int(c):,} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"RSS: {rss['before']:.0f} MB before loading, {rss['a_loaded']:.0f} MB with A, "
        f"{rss['a_and_b_loaded']:.0f} MB with A and B loaded, {rss['end']:.0f} MB at the end",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
