"""The cost of /switch between two branches that share a prefix: model steps and time.

Two ways, on one Predictor: "cache only" (the shared prefix cache moves to the branch entered
and re-reads from its nearest state before the divergence) and "kept" (``BranchStates``, what
the REPL does: the cache of the branch left is kept aside, the one entered brought back). A
fork at SHARED characters of tinyshakespeare, then TAIL more characters on each branch; the
switches go main, b1, main (the first one reads main's TAIL for the first time).

    python bench/bench_branches.py [MODEL] [--sizes 300:100,1000:300,5000:1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import SHAKESPEARE  # noqa: E402


def switches(p, base: str, a: str, b: str, kept: bool) -> list[tuple[int, float]]:
    """(model steps, ms) of the switches main, b1, main after a fork at `base`."""
    p.reset()
    p.branches.saved.clear()
    p.predict(base)
    p.branches.keep("main", base)  # /fork at `base`, then b1 is typed
    p.predict(a)
    out = []
    for going, text, left in (("main", b, a), ("b1", a, b), ("main", b, a)):
        fed, t0 = p.tokens_fed, time.perf_counter()
        if kept:
            p.branches.switch("b1" if going == "main" else "main", left, going)
        p.predict(text)
        out.append((p.tokens_fed - fed, 1000 * (time.perf_counter() - t0)))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="shakespeare-char")
    ap.add_argument("--sizes", default="300:100,1000:300,5000:1000")
    args = ap.parse_args(argv)

    import torch

    from rnnrepl.infer.loading import load_for_inference
    from rnnrepl.infer.predictor import Predictor

    torch.set_num_threads(1)
    p = Predictor(load_for_inference(args.model, "cpu"))
    corpus = SHAKESPEARE.read_text(encoding="utf-8")
    for size in args.sizes.split(","):
        shared, tail = (int(x) for x in size.split(":"))
        base = corpus[:shared]
        a, b = base + corpus[20000 : 20000 + tail], base + corpus[40000 : 40000 + tail]
        for kept in (False, True):
            figures = ", ".join(f"{n} steps {ms:.1f} ms" for n, ms in switches(p, base, a, b, kept))
            print(
                f"fork at {shared}, {tail} after: {'kept' if kept else 'cache only':10} {figures}"
            )


if __name__ == "__main__":
    main()
