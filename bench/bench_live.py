"""Keystroke -> panel latency of the REPL while a live training runs (`/train`), against the
same REPL with that training stopped.

The REPL (pipe input, DummyOutput, as bench_keystroke.py drives it) starts a live training in
its child process exactly as `/train` does (niced, one thread), waits for the first checkpoint,
then alternates: N keystrokes while the training runs and swaps in a checkpoint every few
seconds; `/train stop`; N keystrokes on the last checkpoint with the CPU to itself; the
training resumed (`--resume`); and so on for --rounds. Each figure is the median over rounds.

    python bench/bench_live.py [--corpus FILE] [--train-args "--time 5m"] [--keystrokes 400]
        [--rounds 2] [--words 3] [--out bench/results/live.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_keystroke import PanelClock, _type_into, context_text, percentile  # noqa: E402

CORPUS = "/work/shared/data/tinyshakespeare/input.txt"


def wait(condition, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def measure(corpus: str, train_args: list[str], n: int, rounds: int, words: int) -> dict:
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from rnnrepl.repl.app import ReplApp
    from rnnrepl.repl.state import Settings

    out = Path(tempfile.mkdtemp(prefix="bench-live-")) / "live"
    times: dict[str, list[list[float]]] = {"training": [], "idle": []}
    swaps = []
    with create_pipe_input() as pipe:
        repl = ReplApp(None, Settings(words=words), history=InMemoryHistory(), input=pipe,
                       output=DummyOutput(), emit=id)  # fmt: skip
        clock = PanelClock(repl)
        thread = threading.Thread(target=repl.run, kwargs={"handle_sigint": False}, daemon=True)
        thread.start()
        live, post = repl.training, repl._post  # onto the UI thread
        for r in range(rounds):
            again = ["--resume"] if r else ["--force"]
            post(lambda a=again: live.start([corpus, "-o", str(out), *train_args, *a]))
            wait(lambda: live.state == "running" and repl.session.view is not None, 300, "a model")
            before = live.figures.step
            times["training"].append(_keys(repl, pipe, clock, n))
            swaps.append(live.figures.step - before)
            post(live.stop)
            wait(lambda: live.state == "stopped", 120, "the stop")
            times["idle"].append(_keys(repl, pipe, clock, n))
        post(lambda: repl.ui.application.exit(result=0))
        thread.join(30)
    return {"times": times, "steps_during_typing": swaps, "model": repl.session.info.arch}


def _keys(repl, pipe, clock, n: int) -> list[float]:
    return [whole for _, whole in _type_into(repl, pipe, clock, context_text(1000), n)]


def summary(times: dict[str, list[list[float]]]) -> dict:
    rows = {}
    for name, runs in times.items():
        rows[name] = {
            f"p{q}_ms": statistics.median(1e3 * percentile(run, q / 100) for run in runs)
            for q in (50, 95, 99)
        }
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=CORPUS)
    ap.add_argument("--train-args", default="--time 5m")
    ap.add_argument("--keystrokes", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--words", type=int, default=3)
    ap.add_argument("--out", default="bench/results/live.json")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0]
    result = measure(
        args.corpus, shlex.split(args.train_args), args.keystrokes, args.rounds, args.words
    )
    rows = summary(result.pop("times"))
    report = {**vars(args), **result, "load_before": load, "load_after": os.getloadavg()[0]}
    report["rows"] = rows
    ratio = rows["training"]["p99_ms"] / rows["idle"]["p99_ms"]
    for name, row in rows.items():
        print(f"{name:9} keystroke->panel p50 / p95 / p99: "
              + " / ".join(f"{row[f'p{q}_ms']:.1f}" for q in (50, 95, 99)) + " ms")  # fmt: skip
    print(f"p99 while training / idle: {ratio:.2f}x; model {report['model']}; "
          f"load {load:.1f} -> {report['load_after']:.1f}")  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
