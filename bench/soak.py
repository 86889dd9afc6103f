"""Soak test of the REPL (issue 6; not part of CI): thousands of random keystrokes and commands.

Drives the real REPL application (prompt-toolkit pipe input, DummyOutput, the bundled model on
its worker thread, int8 steps as `rnnrepl` runs them) with a random mix of typing, backspaces,
cursor moves, Tab / Right / Alt-F (ghost text), Enter (a short streamed continuation), Ctrl-C
(during a stream and on the prompt), history, pastes and slash commands (/set, /undo, /reset,
/show, /score, /help, /save). It fails on any exception (UI thread, worker, or the app ending),
on a panel error, or on memory that keeps growing; it prints a table and writes
bench/results/soak.json.

    python bench/soak.py [--keys 10000] [--seed 0] [--model shakespeare-char]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ESC, CTRL_C, TAB, RIGHT, LEFT, UP, DOWN = (
    "\x1b",
    "\x03",
    "\t",
    "\x1b[C",
    "\x1b[D",
    "\x1b[A",
    "\x1b[B",
)
BACKSPACE, ALT_F, HOME, END = "\x7f", "\x1bf", "\x1b[H", "\x1b[F"
WORDS = "the king my lord ROMEO: JULIET: thou art what say you to this? Enter".split()
COMMANDS = [
    "/set k 5", "/set k 12", "/set temperature 0.5", "/set temperature 1.2", "/set top_k 20",
    "/set top_p 0.9", "/set max_tokens 15", "/set seed 3", "/set seed off", "/undo", "/reset",
    "/show", "/help", "/score to be or not", "/set nonsense 1", "/undo", "/bogus",
]  # fmt: skip


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def wait(condition, timeout: float, what) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.002)
    raise AssertionError(f"soak: timed out waiting for {what() if callable(what) else what}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="shakespeare-char")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "soak.json"))
    args = ap.parse_args(argv)

    import torch
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from rnnrepl.config import SampleConfig
    from rnnrepl.repl.app import ReplApp
    from rnnrepl.repl.state import Settings
    from rnnrepl.store.modelfile import load_model
    from tests.repl_support import to_plain

    errors: list[str] = []
    threading.excepthook = lambda a: errors.append(f"{a.thread.name}: {a.exc_type.__name__}")
    rng = random.Random(args.seed)
    loaded = load_model(args.model)
    settings = Settings(SampleConfig(temperature=0.8, max_tokens=20, seed=1), 10)
    counts = {"keys": 0, "commands": 0, "streams": 0, "stopped streams": 0, "pastes": 0}
    samples: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp, create_pipe_input() as pipe:
        rendered = {"chars": 0}

        def emit(renderable) -> None:  # render what the app prints above itself, keep nothing
            rendered["chars"] += len(to_plain(renderable, width=100))

        repl = ReplApp(
            lambda: loaded,
            settings,
            history=InMemoryHistory(),
            int8=True,
            input=pipe,
            output=DummyOutput(),
            emit=emit,
        )
        session, ui = repl.session, repl.ui
        predicted = lambda: session.prediction_text(ui.buffer.document)  # noqa: E731
        result: list = []

        def run() -> None:
            try:
                result.append(repl.run(handle_sigint=False))
            except BaseException as exc:  # reported below: the soak's purpose
                errors.append(f"app: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        wait(lambda: session.info is not None, 60, "the model to load")
        start = time.monotonic()
        while counts["keys"] < args.keys and not errors and thread.is_alive():
            r, stop_it = rng.random(), False
            if r < 0.62:
                keys = rng.choice([rng.choice(WORDS) + " ", rng.choice("etaoinshrdlu ,.?!\n'")])
            elif r < 0.74:
                keys = BACKSPACE * rng.randint(1, 4)
            elif r < 0.80:
                keys = rng.choice([LEFT, RIGHT, HOME, END, UP, DOWN, TAB, ALT_F])
            elif r < 0.83:
                keys = "\x1b[200~" + "ROMEO: " * rng.randint(50, 3000) + "\x1b[201~"
                counts["pastes"] += 1
            elif r < 0.89:
                keys = CTRL_C + rng.choice(COMMANDS) + "\r"  # Ctrl-C first: a clean line
                if rng.random() < 0.1:
                    keys = CTRL_C + f"/save {tmp}/transcript.txt\r"
                counts["commands"] += 1
            elif r < 0.95:
                keys = "\r"
                counts["streams"] += 1
            else:
                keys, stop_it = "\r", True
                counts["streams"] += 1
                counts["stopped streams"] += 1
            if keys == "\r":  # Enter is ignored while a stream runs (a typed "\n" starts one)
                wait(lambda: session.streaming is None, 30, "an earlier stream")
            pipe.send_text(keys)
            counts["keys"] += 1
            if keys == "\r":
                if stop_it:  # Ctrl-C somewhere inside the stream
                    time.sleep(rng.uniform(0.0, 0.01))
                    pipe.send_text(CTRL_C)
                time.sleep(0.005)  # let the app take the key; then the stream must end
                wait(lambda: session.streaming is None, 30, "a stream to end")
            if counts["keys"] % 25 == 0:  # let the panel catch up now and then
                wait(
                    lambda: session.view is not None and session.view.text == predicted(),
                    30,
                    lambda: (
                        f"the panel (view for {session.view and session.view.text[-40:]!r}, "
                        f"text {predicted()[-40:]!r}, buffer {ui.buffer.text[:40]!r}, "
                        f"streaming {session.streaming is not None}, search {ui.application.layout.is_searching})"
                    ),
                )
                if session.view.error:
                    errors.append(f"panel: {session.view.error}")
            if counts["keys"] % 500 == 0:
                samples.append((counts["keys"], rss_mb()))
        elapsed = time.monotonic() - start
        if thread.is_alive():
            ui.application.loop.call_soon_threadsafe(lambda: ui.application.exit(result=0))
            thread.join(10)
    # Memory: after a warm-up (first 20%), the last sample may exceed the warm one by
    # at most 64 MB (the prefix cache is bounded; history and transcript grow by kilobytes).
    warm = next((mb for k, mb in samples if k >= args.keys // 5), samples[0][1] if samples else 0)
    end_mb = samples[-1][1] if samples else float("nan")
    grew = end_mb - warm
    ok = not errors and grew < 64 and counts["keys"] >= args.keys
    report = {
        "ok": ok,
        "errors": errors[:20],
        "counts": counts,
        "seconds": round(elapsed, 1),
        "rss_mb": {
            "warm": round(warm, 1),
            "end": round(end_mb, 1),
            "max": round(max(m for _, m in samples), 1),
        },
        "rss_samples": samples,
        "model": args.model,
        "seed": args.seed,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"soak {'PASSED' if ok else 'FAILED'}: {counts['keys']:,} actions in {elapsed:.0f} s")
    for k, v in counts.items():
        print(f"  {k:16} {v:,}")
    print(f"  RSS after warm-up {warm:.0f} MB, at the end {end_mb:.0f} MB (grew {grew:+.1f} MB)")
    for e in errors[:20]:
        print(f"  error: {e}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PROMPT_TOOLKIT_NO_CPR", "1")
    sys.exit(main())
