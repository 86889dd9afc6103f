"""Learning as you type (/learn on): keystroke -> panel latency with learning on against off in
the same process, and the time of one learning step for each bundled model.

The latency half drives the real REPL application (bench_keystroke's pipe input, DummyOutput,
the model on its worker thread) through turns: type a sentence key by key (each key timed
until the panel shows its text, as in bench_keystroke), Enter, wait for the continuation, next
sentence. Keys come --gap seconds after the previous key's panel (a fast typist's pace: a
key every 100 ms; learning runs in those pauses). With /learn on, the round of learning on
each turn runs while the next sentence is typed. Off and on alternate --repeat times; each figure is the median over the repeats, and
the ratio on/off is the figure to read.

The step half times ``infer.adapt.Adapter`` alone on each bundled model: one gradient step
over a full window (its chunks' forward and backward passes, the update and the Predictor's
rebuild), and the longest single slice (the most a keystroke's panel can wait for).

    python bench/bench_learn.py [MODEL] [--turns 8] [--repeat 2] [--gap 0.1] [--out bench/results/learn.json]
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

from bench_keystroke import TEXT, PanelClock, load_model, percentile  # noqa: E402

QUANTILES = (50, 95, 99)
SENTENCES = [s.strip() + "." for s in TEXT.replace("?", ".").split(".") if len(s.strip()) > 8]


def run_turns(loaded, turns: int, learn: bool, gap: float) -> tuple[list[float], int]:
    """Keystroke -> panel latencies (seconds) over `turns` typed sentences, and the rounds of
    learning finished meanwhile."""
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from rnnrepl.config import SampleConfig
    from rnnrepl.repl.app import ReplApp
    from rnnrepl.repl.state import Settings

    printed: list = []
    settings = Settings(SampleConfig(temperature=0.0, max_tokens=20))
    with create_pipe_input() as pipe:
        repl = ReplApp(
            lambda: loaded,
            settings,
            history=InMemoryHistory(),
            input=pipe,
            output=DummyOutput(),
            emit=printed.append,
            int8=True,  # as `chat` runs by default
        )
        clock = PanelClock(repl)
        thread = threading.Thread(target=repl.run, kwargs={"handle_sigint": False}, daemon=True)
        thread.start()
        while repl.session.info is None or repl.session.view is None:
            time.sleep(0.01)
        if learn:
            pipe.send_text("/learn on\r")
            _wait(lambda: repl.learning.on)
        times = []
        for n in range(turns):
            times += _type_turn(repl, pipe, clock, SENTENCES[n % len(SENTENCES)] + " ", gap)
        rounds = sum("learned from" in str(p) for p in printed)
        repl.ui.application.loop.call_soon_threadsafe(lambda: repl.ui.application.exit(result=0))
        thread.join(10)
    return times, rounds


def _type_turn(repl, pipe, clock: PanelClock, sentence: str, gap: float) -> list[float]:
    doc, times = repl.session.doc.text, []
    for i, key in enumerate(sentence):
        time.sleep(gap)
        clock.expect(doc + sentence[: i + 1])
        start = time.perf_counter()
        pipe.send_text(key)
        if not clock.event.wait(60):
            raise RuntimeError(f"no panel for {sentence[: i + 1]!r}")
        times.append(time.perf_counter() - start)
    turns = len(repl.session.doc.turns)
    pipe.send_text("\r")
    _wait(lambda: len(repl.session.doc.turns) > turns and repl.session.streaming is None)
    return times


def _wait(condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise RuntimeError("timed out")
        time.sleep(0.005)


def step_times(spec: str, steps: int = 4) -> dict:
    """One learning step on `spec` (median ms over `steps`) and its longest slice (ms)."""
    from rnnrepl.infer.adapt import Adapter, learning_window
    from rnnrepl.infer.predictor import Predictor
    from rnnrepl.store.modelfile import load_model as load

    loaded = load(spec)
    predictor = Predictor(loaded, int8=True)
    adapter = Adapter(loaded.model)
    text = (TEXT * 20)[-4000:]
    window = learning_window(
        loaded.tokenizer, predictor.start_id, text, [(0, len(text))], adapter.cfg.window
    )
    per_step, slices, begun = [], [], time.perf_counter()
    while len(per_step) < steps:
        adapter.add(window)
        while adapter.busy:
            start = time.perf_counter()
            out = adapter.work()
            if out.changed:
                predictor.weights_changed()
            slices.append(time.perf_counter() - start)
            if out.changed:
                per_step.append(time.perf_counter() - begun)
                begun = time.perf_counter()
            elif out.finished is not None:
                begun = time.perf_counter()  # the round's final loss is not part of a step
    return {
        "window_tokens": len(window.y),
        "step_ms": 1e3 * statistics.median(per_step),
        "slice_max_ms": 1e3 * max(slices),
        "slice_p50_ms": 1e3 * statistics.median(slices),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("--turns", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--gap", type=float, default=0.1)
    ap.add_argument("--out", default="bench/results/learn.json")
    args = ap.parse_args(argv)

    import torch

    from rnnrepl.repl.worker import use_threads
    from rnnrepl.store.home import bundled_names

    loaded, described = load_model(args.model)
    use_threads(loaded.model.num_parameters())
    original = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    runs: dict[str, list] = {"off": [], "on": []}
    rounds = []
    for _ in range(args.repeat):
        for setting, done in runs.items():
            loaded.model.load_state_dict(original)  # each run starts from the file's weights
            times, n = run_turns(loaded, args.turns, setting == "on", args.gap)
            done.append(times)
            rounds += [n] if setting == "on" else []
    ms = {
        s: {f"p{q}": 1e3 * statistics.median(percentile(t, q / 100) for t in done)
            for q in QUANTILES}
        for s, done in runs.items()
    }  # fmt: skip
    report = {
        "model": described,
        "turns": args.turns,
        "keystrokes": len(runs["off"][0]),
        "repeat": args.repeat,
        "gap_s": args.gap,
        "threads": torch.get_num_threads(),
        "ms": ms,
        "ratio": {f"p{q}": ms["on"][f"p{q}"] / ms["off"][f"p{q}"] for q in QUANTILES},
        "rounds_learned_while_typing": rounds,
        "step": {name: step_times(name) for name in bundled_names()},
    }
    print(markdown(report))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


def markdown(report: dict) -> str:
    off, on, ratio = report["ms"]["off"], report["ms"]["on"], report["ratio"]
    cell = lambda fig: " / ".join(f"{fig[f'p{q}']:.2f}" for q in QUANTILES)  # noqa: E731
    lines = [
        f"model: {report['model']}; {report['turns']} turns, {report['keystrokes']} keys per run,"
        f" a key {report['gap_s'] * 1e3:.0f} ms after the last panel,"
        f" median of {report['repeat']} alternated run(s); rounds learned while typing (on): "
        f"{report['rounds_learned_while_typing']}",
        "",
        "| /learn off p50 / p95 / p99 ms | /learn on p50 / p95 / p99 ms | ratio on/off |",
        "|---|---|---|",
        f"| {cell(off)} | {cell(on)} | {cell(ratio)} |",
        "",
        "| model | window tokens | one step ms (median) | slice p50 / max ms |",
        "|---|---:|---:|---|",
    ]
    for name, fig in report["step"].items():
        lines.append(
            f"| {name} | {fig['window_tokens']} | {fig['step_ms']:.0f} "
            f"| {fig['slice_p50_ms']:.0f} / {fig['slice_max_ms']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
