"""Latency of whole-word completions (``Predictor.words``, ``predict --words``) on 1 thread.

For each text the prefix cache already holds the text (as while typing), and the figure is the
best of `--reps` calls; the median and the maximum over the texts are printed, mid-word and
after a space apart (after a space the whole next word must be spelt: more beam steps).

    python bench/bench_words.py [MODEL] [-n 3] [--width W] [--depth D] [--reps 15] [--int8]

--int8 steps the beam with the int8 kernels the REPL uses by default (`predict` is fp32).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnrepl.infer.loading import load_for_inference
from rnnrepl.infer.predictor import Predictor
from rnnrepl.infer.words import DEPTH, WIDTH, Beam

TEXTS = [
    "ROMEO:\nWhat is th",
    "To be or not to b",
    "First Citizen:\nWe are all res",
    "KING RICHARD III:\nNow is the winter of our disc",
    "my lord, I",
    "O, she doth teach the torches to burn bri",
    "What light through yonder window br",
    "the cat sat on the ",
    "And ",
    "I will ",
]


def best_ms(predictor: Predictor, text: str, n: int, beam: Beam, reps: int) -> float:
    predictor.words(text, n, beam)  # the cache reads the text once, as the REPL did already
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        predictor.words(text, n, beam)
        best = min(best, time.perf_counter() - t0)
    return 1000 * best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", default="shakespeare-char")
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--width", type=int, default=WIDTH)
    ap.add_argument("--depth", type=int, default=DEPTH)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--int8", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    predictor = Predictor(load_for_inference(args.model), int8=args.int8)
    beam = Beam(args.width, args.depth)
    times = {t: best_ms(predictor, t, args.n, beam, args.reps) for t in TEXTS}
    for label, keep in (("mid-word", False), ("after a space", True)):
        ms = [v for t, v in times.items() if t.endswith(" ") == keep]
        print(f"{label}: median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms")
    kind = "int8" if predictor.int8 else "fp32"
    print(f"width {beam.width}, depth {beam.depth}, n {args.n}, {kind}, model {args.model}")


if __name__ == "__main__":
    main()
