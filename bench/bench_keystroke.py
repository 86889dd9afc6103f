"""Keystroke -> updated panel latency of the REPL, and streamed generation speed.

For each context length (characters already in the document) this drives the real REPL
application (prompt-toolkit pipe input, DummyOutput, the model on its worker thread) with
simulated keystrokes — mostly typing, some backspaces — and times each one from the key
entering the input pipe to the application drawing the panel for the new text.
It also times the same work without the UI (distribution + top-k + panel render) and the
streamed generation speed. (The ghost text is computed once typing pauses for 30 ms, so it is
not part of the keystroke figure.)

    python bench/bench_keystroke.py [MODEL] [--keystrokes 2000] [--words 3]
        [--out bench/results/keystroke.json]

--words N: whole-word suggestions in the panel (the REPL's default 3; 0 as with /set words 0).

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
        control = next(
            w.content
            for w in repl.ui.application.layout.find_all_windows()
            if getattr(w.content, "text", None) is repl.ui.panel_control
        )

        def draw_panel():
            fragments = repl.ui.panel_control()
            if repl.session.view is not None and repl.session.view.text == self.target:
                self.event.set()
            return fragments

        control.text = draw_panel

    def expect(self, text: str) -> None:
        self.target = text
        self.event.clear()
        if self.repl.session.view is not None and self.repl.session.view.text == text:
            self.event.set()


def run_ui(loaded, contexts: list[int], n: int, words: int = 3) -> dict[int, list[float]]:
    """Per context length: keystroke -> panel latencies (seconds) through the application."""
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from rnnrepl.repl.app import ReplApp
    from rnnrepl.repl.state import Settings

    results: dict[int, list[float]] = {}
    with create_pipe_input() as pipe:
        repl = ReplApp(
            lambda: loaded,
            Settings(words=words),
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


def _type_into(repl, pipe, clock: PanelClock, context: str, n: int) -> list[float]:
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
        times.append(time.perf_counter() - start)
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
                predictor, context + typed, settings.k, lambda: False, settings.words
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
    ap.add_argument("--words", type=int, default=3, help="whole-word suggestions (0: off)")
    ap.add_argument("--out", default="bench/results/keystroke.json")
    args = ap.parse_args(argv)
    contexts = [int(c) for c in args.contexts.split(",")]

    import torch

    from rnnrepl.repl.worker import use_threads

    loaded, described = load_model(args.model)
    use_threads(loaded.model.num_parameters())
    ui = run_ui(loaded, contexts, args.keystrokes, args.words)
    direct = run_direct(loaded, contexts, args.keystrokes, args.words)
    speed = generation_speed(loaded, args.gen_tokens)
    report = {
        "model": described,
        "keystrokes": args.keystrokes,
        "words": args.words,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
        "contexts": [
            {
                "context_chars": c,
                "ui_median_ms": 1e3 * statistics.median(ui[c]),
                "ui_p99_ms": 1e3 * percentile(ui[c], 0.99),
                "compute_median_ms": 1e3 * statistics.median(direct[c]),
                "compute_p99_ms": 1e3 * percentile(direct[c], 0.99),
            }
            for c in contexts
        ],
        "generation_tokens_per_s": speed,
    }
    table = markdown(report)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    print(f"\nwrote {out} and {out.with_suffix('.md')}")


def markdown(report: dict) -> str:
    """The report as a markdown table (printed and written beside the JSON)."""
    lines = [
        f"model: {report['model']}; {report['keystrokes']} keystrokes per context; "
        f"{report.get('words', 0)} word suggestions; "
        f"torch {report['torch']}, {report['threads']} thread(s), {report['machine']}",
        "",
        "| context (chars) | keystroke->panel median ms | p99 ms | compute only median ms | p99 ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in report["contexts"]:
        lines.append(
            f"| {row['context_chars']:,} | {row['ui_median_ms']:.2f} | {row['ui_p99_ms']:.2f} "
            f"| {row['compute_median_ms']:.2f} | {row['compute_p99_ms']:.2f} |"
        )
    lines += ["", f"streamed generation: {report['generation_tokens_per_s']:,.0f} tokens/s"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
