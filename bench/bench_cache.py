"""The word cache's weight and decay (README "The word cache"), chosen on held-out text.

    python bench/bench_cache.py MODEL TEXT [--limit-words N] [--pool 20] [--lambdas ...] [--decays ...]

Builds the table of `eval --ksr` (rnnrepl.infer.ksr_batch) once with the model's `--pool` likeliest
words at every position, then types TEXT (its first N words) with 3 suggestions mixed with a
``WordCache(lambda, decay)`` for every pair, and without the cache. Prints one row per decay, KSR
in %. Use text that the figures you report do not type (the README used WikiText-2's test.txt and
tiny Shakespeare's validation tenth).
"""

from __future__ import annotations

import argparse
import time

import torch

from rnnrepl.infer.ksr import limit_words, replay
from rnnrepl.infer.ksr_batch import SuggestionTable, cached
from rnnrepl.infer.loading import load_for_inference
from rnnrepl.infer.predictor import Predictor
from rnnrepl.infer.word_cache import WordCache


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("--limit-words", type=int, default=3000)
    ap.add_argument("--pool", type=int, default=20, help="model words mixed at each position")
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4])
    ap.add_argument("--decays", type=float, nargs="+", default=[1.0, 0.999, 0.995, 0.99])
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(args.text, encoding="utf-8") as f:
        text = limit_words(f.read(), args.limit_words)
    predictor = Predictor(load_for_inference(args.model, torch.device("cpu")))
    start = time.perf_counter()
    table = SuggestionTable(predictor, args.pool, skip=False).build(text)
    print(f"table of {len(table):,} positions in {time.perf_counter() - start:.0f} s")
    plain = replay(lambda pos: table[pos][:3], text)
    print(f"no cache: {plain.ksr:.2%}")
    print("decay \\ lambda: " + " ".join(f"{lam:g}" for lam in args.lambdas))
    for decay in args.decays:
        row = [
            replay(cached(table, text, 3, WordCache(lam, decay)), text).ksr for lam in args.lambdas
        ]
        print(f"{decay:g}: " + " ".join(f"{k:.2%}" for k in row), flush=True)


if __name__ == "__main__":
    main()
