"""Keystroke -> updated panel latency of the REPL, and streamed generation speed.

For each context length (characters already in the document) this drives the real REPL
application (prompt-toolkit pipe input, DummyOutput, the model on its worker thread) with
simulated keystrokes — mostly typing, some backspaces — and times each one from the key
entering the input pipe to the application drawing the panel for the new text: its bars first
("bars"), then the whole panel with its words ("panel"; the next key is sent after it).
It also times the same work without the UI (distribution + top-k + panel render) and the
streamed generation speed. (The ghost text is computed once typing pauses for 30 ms, so it is
not part of the keystroke figure.)

    python bench/bench_keystroke.py [MODEL] [--keystrokes 2000] [--words 3,0] [--repeat 3]
        [--out bench/results/keystroke.json]

--words N[,N...]: whole-word suggestions in the panel (the REPL's default 3; 0 as with /set
words 0); several values run in turn in the same process, --repeat times over, and each
figure is the median over the repeats: compare settings within one run (a shared machine's
speed varies 2x from day to day).

The words are mixed with the word cache, as the REPL's default (`/set cache on`).

MODEL defaults to the bundled shakespeare-char, else a freshly built 2x512 char LSTM with
random weights (latency does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TEXT = (
    "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. "
    "First Citizen: You are all resolved rather to die than to famish? All: Resolved. "
    "resolved. First Citizen: First, you know Caius Marcius is chief enemy to the people.\n"
)


def load_model(spec: str | None):
    """(LoadedModel, description): the given model, the bundled default, or a random LSTM."""
    from rnnrepl.store import home, modelfile

    if spec is None and "shakespeare-char" in home.bundled_names():
        spec = "shakespeare-char"
    if spec is not None:
        loaded = modelfile.load_model(spec)
        return (
            loaded,
            f"{spec} ({loaded.config.arch} {loaded.config.layers}x{loaded.config.hidden})",
        )
    return random_lstm(), "random 2x512 char LSTM (no bundled model found)"


def random_lstm():
    import string

    import torch

    from rnnrepl.config import ModelConfig
    from rnnrepl.model.lm import build_model
    from rnnrepl.store.modelfile import LoadedModel
    from rnnrepl.text.tokenizers import CharVocab

    tok = CharVocab(["<unk>", *sorted(set(string.printable))])
    cfg = ModelConfig(vocab_size=tok.size, arch="lstm", embed=128, hidden=512, layers=2)
    torch.manual_seed(0)
    return LoadedModel(build_model(cfg).eval(), cfg, tok, {}, Path("random-2x512.safetensors"))


def keystrokes(n: int, seed: int = 0) -> list[str]:
    """n keys: characters of English text, with a backspace about one time in five."""
    rng = random.Random(seed)
    keys, i = [], 0
    for _ in range(n):
        if rng.random() < 0.2:
            keys.append("\x7f")
        else:
            keys.append(TEXT[i % len(TEXT)].replace("\n", " "))  # a typed "\n" is Ctrl-J
            i += 1
    return keys


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def context_text(chars: int) -> str:
    return (TEXT * (chars // len(TEXT) + 1))[:chars]


class PanelClock:
    """Signals when the application has drawn the panel for a given text (on the UI thread)."""

    def __init__(self, repl) -> None:
        self.repl, self.target, self.event = repl, None, threading.Event()
        self.bars_at = 0.0  # when the panel first showed the target text (its words pending)
        control = next(
            w.content
            for w in repl.ui.application.layout.find_all_windows()
            if getattr(w.content, "text", None) is repl.ui.panel_control
        )

        def draw_panel():
            fragments = repl.ui.panel_control()
            view = repl.session.view
            if view is not None and view.text == self.target:
                self.bars_at = self.bars_at or time.perf_counter()
                if getattr(view, "words_pending", None) is None:  # (None: before bars-first)
                    self.event.set()
            return fragments

        control.text = draw_panel

    def expect(self, text: str) -> None:
        self.target, self.bars_at = text, 0.0
        self.event.clear()
        view = self.repl.session.view
        if view is not None and view.text == text and getattr(view, "words_pending", None) is None:
            self.bars_at = time.perf_counter()
            self.event.set()


def run_ui(loaded, contexts: list[int], n: int, words: int = 3) -> dict[int, list[float]]:
    """Per context length: keystroke -> whole panel latencies (seconds) through the application."""
    phases = run_ui_phases(loaded, contexts, n, words)
    return {c: [whole for _, whole in times] for c, times in phases.items()}


def run_ui_phases(
    loaded, contexts: list[int], n: int, words: int = 3, color: str = "off"
) -> dict[int, list[tuple]]:
    """Per context length: keystroke -> (bars, whole panel) latencies (seconds) through the
    application (with /color `color`: bench_color.py)."""
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from rnnrepl.repl.app import ReplApp
    from rnnrepl.repl.state import Settings

    results: dict[int, list[tuple]] = {}
    with create_pipe_input() as pipe:
        repl = ReplApp(
            lambda: loaded,
            Settings(words=words, color=color),
            history=InMemoryHistory(),
            input=pipe,
            output=DummyOutput(),
            emit=id,
        )
        clock = PanelClock(repl)
        thread = threading.Thread(target=repl.run, kwargs={"handle_sigint": False}, daemon=True)
        thread.start()
        while repl.session.info is None or repl.session.view is None:
            time.sleep(0.01)
        for chars in contexts:
            results[chars] = _type_into(repl, pipe, clock, context_text(chars), n)
        repl.ui.application.loop.call_soon_threadsafe(lambda: repl.ui.application.exit(result=0))
        thread.join(10)
    return results


def _type_into(repl, pipe, clock: PanelClock, context: str, n: int) -> list[tuple]:
    def set_context() -> None:
        repl.ui.buffer.reset()
        repl.session.doc.reset()
        repl.session.doc.begin(context)
        repl.refresh(force=True)

    clock.expect(context)
    repl.ui.application.loop.call_soon_threadsafe(set_context)
    clock.event.wait(600)
    typed, times = "", []
    for key in keystrokes(n):
        typed = typed[:-1] if key == "\x7f" else typed + key
        clock.expect(context + typed)
        start = time.perf_counter()
        pipe.send_text(key)
        if not clock.event.wait(30):
            raise RuntimeError(f"no panel for {typed[-20:]!r}")
        end = time.perf_counter()
        times.append((min(clock.bars_at or end, end) - start, end - start))
    return times


def run_direct(loaded, contexts: list[int], n: int, words: int = 3) -> dict[int, list[float]]:
    """The same keystrokes without the UI: distribution + top-k + panel render."""
    from rnnrepl.infer.predictor import Predictor
    from rnnrepl.repl.panel import panel, to_ansi
    from rnnrepl.repl.state import Settings, compute_view

    predictor, settings = Predictor(loaded, int8=True), Settings(words=words)  # as the REPL
    results = {}
    for chars in contexts:
        context = context_text(chars)
        predictor.distribution(context)
        typed, times = "", []
        for key in keystrokes(n):
            typed = typed[:-1] if key == "\x7f" else typed + key
            start = time.perf_counter()
            view = compute_view(
                predictor,
                context + typed,
                settings.k,
                lambda: False,
                settings.words,
                settings.cache,
            )
            to_ansi(panel(view, settings, 100), 100)
            times.append(time.perf_counter() - start)
        results[chars] = times
    return results


def generation_speed(loaded, tokens: int, int8: bool = True) -> float:
    """Tokens/s of Predictor.stream; int8 is `rnnrepl generate`'s default, False is --exact."""
    from rnnrepl.config import SampleConfig
    from rnnrepl.infer.predictor import Predictor

    predictor = Predictor(loaded, int8=int8)
    cfg = SampleConfig(temperature=0.8, max_tokens=tokens, seed=1)
    start = time.perf_counter()
    produced = sum(1 for _ in predictor.stream(TEXT, cfg))
    return produced / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("--keystrokes", type=int, default=2000)
    ap.add_argument("--contexts", default="10,1000,10000")
    ap.add_argument("--gen-tokens", type=int, default=1000)
    ap.add_argument("--words", default="3", help="whole-word suggestions (0: off), e.g. 3,0")
    ap.add_argument("--repeat", type=int, default=1, help="runs of every --words value")
    ap.add_argument("--out", default="bench/results/keystroke.json")
    args = ap.parse_args(argv)
    contexts = [int(c) for c in args.contexts.split(",")]

    import torch

    from rnnrepl.repl.worker import use_threads

    loaded, described = load_model(args.model)
    use_threads(loaded.model.num_parameters())
    runs: dict[int, list[dict]] = {int(w): [] for w in args.words.split(",")}
    for _ in range(args.repeat):
        for words, done in runs.items():  # alternated: a slow minute hits every setting
            done.append(measure(loaded, contexts, args.keystrokes, words))
    report = {
        "model": described,
        "keystrokes": args.keystrokes,
        "repeat": args.repeat,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
        "runs": [{"words": w, "contexts": median_rows(done)} for w, done in runs.items()],
        "generation_tokens_per_s": generation_speed(loaded, args.gen_tokens),
    }
    table = markdown(report)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    print(f"\nwrote {out} and {out.with_suffix('.md')}")


def measure(loaded, contexts: list[int], n: int, words: int) -> list[dict]:
    """One run: per context, the percentiles (ms) of bars, whole panel and compute only."""
    ui = run_ui_phases(loaded, contexts, n, words)
    direct = run_direct(loaded, contexts, n, words)
    rows = []
    for c in contexts:
        row = {"context_chars": c}
        for name, values in (
            ("ui_bars", [bars for bars, _ in ui[c]]),
            ("ui", [whole for _, whole in ui[c]]),
            ("compute", direct[c]),
        ):
            for q in (50, 95, 99):
                row[f"{name}_p{q}_ms"] = 1e3 * percentile(values, q / 100)
        rows.append(row)
    return rows


def median_rows(done: list[list[dict]]) -> list[dict]:
    """Every figure's median over the repeated runs."""
    return [
        {key: statistics.median(run[i][key] for run in done) for key in done[0][i]}
        | {"context_chars": done[0][i]["context_chars"]}
        for i in range(len(done[0]))
    ]


def markdown(report: dict) -> str:
    """The report as a markdown table (printed and written beside the JSON); with a words-0 run,
    each figure also as a ratio to it (same process, same minute)."""
    lines = [
        f"model: {report['model']}; {report['keystrokes']} keystrokes per context, median of "
        f"{report['repeat']} run(s); torch {report['torch']}, {report['threads']} thread(s), "
        f"{report['machine']}",
        "",
        "| words | context (chars) | keystroke->bars p50 / p95 / p99 ms "
        "| keystroke->panel p50 / p95 / p99 ms | compute only p50 / p95 / p99 ms |",
        "|---:|---:|---|---|---|",
    ]
    base = {
        r["context_chars"]: r for run in report["runs"] if not run["words"] for r in run["contexts"]
    }
    for run in report["runs"]:
        for row in run["contexts"]:
            cells = [
                _cell(row, base.get(row["context_chars"]), n) for n in ("ui_bars", "ui", "compute")
            ]
            lines.append(
                f"| {run['words']} | {row['context_chars']:,} | " + " | ".join(cells) + " |"
            )
    lines += ["", f"streamed generation: {report['generation_tokens_per_s']:,.0f} tokens/s"]
    return "\n".join(lines)


def _cell(row: dict, base: dict | None, name: str) -> str:
    figures = " / ".join(f"{row[f'{name}_p{q}_ms']:.2f}" for q in (50, 95, 99))
    if base is None or base is row:
        return figures
    ratios = " / ".join(
        f"{row[f'{name}_p{q}_ms'] / base[f'{name}_p{q}_ms']:.2f}" for q in (50, 95, 99)
    )
    return f"{figures} (x {ratios})"


if __name__ == "__main__":
    main()
