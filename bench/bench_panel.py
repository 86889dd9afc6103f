"""Section 6 and the panel half of section 9: keystroke -> updated panel, through the REPL.

A thin wrapper over bench/bench_keystroke.py (run_ui drives the real prompt-toolkit
application through a pipe; run_direct does the same work without the UI).
"""

from __future__ import annotations

from common import row, spread

P99_TARGET_MS = 16.0
FLAT_RATIO = 1.5  # "flat": the longest context within 1.5x of the shortest, median and p99


def measure(contexts: list[int], keystrokes: int) -> tuple[str, dict, dict]:
    from bench_keystroke import load_model, run_direct, run_ui

    from rnnrepl.repl.worker import use_threads

    loaded, described = load_model(None)
    use_threads(loaded.model.num_parameters())  # what the REPL does once the model is loaded
    ui = run_ui(loaded, contexts, keystrokes)
    direct = run_direct(loaded, contexts, keystrokes)
    ms = lambda values: {k: v * 1e3 for k, v in spread(values).items() if k != "n"}  # noqa: E731
    return (
        described,
        {c: ms(ui[c]) for c in contexts},
        {c: ms(direct[c]) for c in contexts},
    )


def keystroke(quick: bool, **_) -> dict:
    contexts, n = [10, 1000, 10000], (100 if quick else 2000)
    described, ui, direct = measure(contexts, n)
    rows = [
        row(
            "6 keystroke",
            f"keystroke -> panel, context {c:,} chars",
            ui[c]["p99"],
            "ms p99",
            target=f"p99 < {P99_TARGET_MS:g} ms",
            met=ui[c]["p99"] < P99_TARGET_MS,
            note=f"median {ui[c]['median']:.2f} ms; model work alone median "
            f"{direct[c]['median']:.2f} / p99 {direct[c]['p99']:.2f} ms; {n} keys",
        )
        for c in contexts
    ]
    return {"rows": rows, "details": {"model": described, "keystrokes": n, "ui_ms": ui,
                                      "compute_ms": direct}}  # fmt: skip


def panel_scaling(quick: bool) -> tuple[list[dict], dict]:
    contexts = [10, 1000, 10000] if quick else [10, 100, 1000, 10000, 100000]
    n = 60 if quick else 500
    described, ui, direct = measure(contexts, n)
    lo, hi = ui[contexts[0]], ui[contexts[-1]]
    ratio = max(hi["median"] / lo["median"], hi["p99"] / lo["p99"])
    curve = ", ".join(f"{c:,}: {ui[c]['median']:.2f}/{ui[c]['p99']:.2f}" for c in contexts)
    rows = [
        row(
            "9 scaling",
            f"panel latency at {contexts[-1]:,} vs {contexts[0]} chars of context",
            ratio,
            "x (worse of median, p99)",
            target=f"flat: ≤ {FLAT_RATIO:g}x",
            met=ratio <= FLAT_RATIO,
            note=f"median/p99 ms by context: {curve}; {n} keys each",
        )
    ]
    return rows, {"model": described, "keystrokes": n, "ui_ms": ui, "compute_ms": direct}
