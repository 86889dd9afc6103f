"""Tune the plain-LSTM reference the way a competent user would in an afternoon: a coordinate
sweep, one setting at a time, keeping the best so far (issue 19).

Starting from bench/reference.py's CHAR (2x512, embedding 128, sequence 100, batch 64, Adam 2e-3,
clip 5), each axis in turn is tried at its other values with the best settings found so far;
the value with the lowest validation loss is kept. Each run is reference.py in its own process
for the same training seconds, scored over the first --val-tokens characters of the split (the
whole split for the final figures in bench_quality). Every run is appended to
bench/results/reference-sweep-CORPUS-SECONDS.json as it ends, and the winner is printed as the
line to put in reference.py's TUNED table.

    python bench/tune_reference.py --time 71 [--corpus code] \\
        [--axis nhid=256,512 --axis lr=1e-3,2e-3,4e-3 --axis batch_size=32,64,128 \\
         --axis bptt=50,100,200] [--val-tokens 30000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import BENCH, run_timed
from reference import CHAR

DEFAULT_AXES = ["nhid=256,512", "lr=1e-3,2e-3,4e-3", "batch_size=32,64,128", "bptt=50,100,200"]


def parse_axis(text: str) -> tuple[str, list[str]]:
    key, _, values = text.partition("=")
    return key, values.split(",")


def run_one(settings: dict[str, str], args, tmp: Path) -> dict:
    out = tmp / f"run{len(list(tmp.iterdir()))}.json"
    argv = [sys.executable, str(BENCH / "reference.py"), "char", "--time", f"{args.time:g}"]
    argv += ["--corpus", args.corpus, "--val-tokens", str(args.val_tokens), "--out", str(out)]
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    proc = run_timed(argv, timeout=args.time * 4 + 1800).check()
    return json.loads(out.read_text()) | {"settings": dict(settings), "wall": proc.seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", type=float, required=True)
    ap.add_argument("--corpus", default="shakespeare")
    ap.add_argument("--axis", action="append", help="KEY=V1,V2,... (repeat; in order)")
    ap.add_argument("--start", action="append", default=[], help="KEY=VALUE to start from")
    ap.add_argument("--val-tokens", type=int, default=30000)
    args = ap.parse_args()
    axes = [parse_axis(a) for a in (args.axis or DEFAULT_AXES)]
    log = BENCH / "results" / f"reference-sweep-{args.corpus}-{args.time:g}.json"
    runs: list[dict] = []
    best = dict(s.split("=", 1) for s in args.start)
    seen: dict[tuple, float] = {}

    def loss_of(settings: dict[str, str], tmp: Path) -> float:
        settings = {k: v for k, v in settings.items() if float(v) != getattr(CHAR, k)}
        key = tuple(sorted(settings.items()))
        if key not in seen:
            res = run_one(settings, args, tmp)
            runs.append(res)
            seen[key] = res["val_loss"]
            log.write_text(json.dumps({"time": args.time, "corpus": args.corpus, "runs": runs}))
            print(f"  {settings}  {res['val_loss']:.4f}  ({res['tokens_seen']:,} tokens)",
                  flush=True)  # fmt: skip
        return seen[key]

    with tempfile.TemporaryDirectory(prefix="rnnrepl-tune-") as tmp:
        tmp = Path(tmp)
        best_loss = loss_of(best, tmp)
        for key, values in axes:
            for value in values:
                trial = {k: v for k, v in (best | {key: value}).items()
                         if float(v) != getattr(CHAR, k)}  # fmt: skip
                loss = loss_of(trial, tmp)
                if loss < best_loss:
                    best, best_loss = trial, loss
    print(f"best {best_loss:.4f}: TUNED[({args.corpus!r}, {args.time:g})] = {best}")


if __name__ == "__main__":
    main()
