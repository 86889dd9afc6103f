"""Data-parallel training on one machine: `rnnrepl train --nproc 2` (2 ranks x 1 thread, gloo on
127.0.0.1) against one process with 2 threads, the same recipe and batch, through the CLI.

Tokens/s is what the run itself records (tokens seen / training time in its resume state, so the
start-up of torch and of the ranks is left out and shown apart as wall time). The sides alternate,
ROUNDS times each; the figure is the median, the verdict the ratio two ranks / one process.

    python bench/bench_ddp.py [--steps 40] [--rounds 2] [--corpus PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rnnrepl.store import resume  # noqa: E402

SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
RECIPES = {
    "2x512 LSTM, batch 64 x 128": ["--arch", "lstm", "--layers", "2", "--hidden", "512",
                                   "--embed", "64", "--batch-size", "64", "--seq-len", "128"],
    "2x256 GRU, batch 32 x 128": ["--arch", "gru", "--layers", "2", "--hidden", "256",
                                  "--embed", "64", "--batch-size", "32", "--seq-len", "128"],
}  # fmt: skip


def one_run(
    corpus: Path, out: Path, recipe: list[str], steps: int, ranks: int
) -> tuple[float, float]:
    """(tokens/s of training, wall seconds of the command)."""
    threads = "2" if ranks == 1 else "1"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": threads, "NO_COLOR": "1"}
    if ranks > 1:
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    cmd = [sys.executable, "-m", "rnnrepl", "train", str(corpus), "-o", str(out), "--force",
           "--steps", str(steps), "--eval-every", str(steps), "--eval-tokens", "2048",
           "--device", "cpu", "--precision", "fp32", "--dropout", "0", *recipe]  # fmt: skip
    if ranks > 1:
        cmd += ["--nproc", str(ranks)]
    began = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.monotonic() - began
    if done.returncode:
        sys.exit(f"bench_ddp: training failed ({done.returncode}): {done.stderr[-2000:]}")
    _, meta = resume.load_state(out.with_name(out.name + ".state.safetensors"))
    p = meta["progress"]
    return p["tokens_seen"] / p["elapsed"], wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    args = ap.parse_args()
    if not args.corpus.exists():
        sys.exit(f"bench_ddp: no corpus at {args.corpus} (pass --corpus)")
    print(f"cores: {os.cpu_count()}; {args.steps} steps a run, {args.rounds} rounds, alternating")
    with tempfile.TemporaryDirectory() as tmp:
        for name, recipe in RECIPES.items():
            rates: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
            for _ in range(args.rounds):
                for ranks in (1, 2):
                    rates[ranks].append(
                        one_run(args.corpus, Path(tmp) / "m", recipe, args.steps, ranks)
                    )
            one = statistics.median(r for r, _ in rates[1])
            two = statistics.median(r for r, _ in rates[2])
            walls = [statistics.median(w for _, w in rates[k]) for k in (1, 2)]
            print(
                f"{name}: 1 process x 2 threads {one:,.0f} tokens/s, 2 ranks x 1 thread "
                f"{two:,.0f} tokens/s: {two / one:.2f}x (wall {walls[0]:.1f} s vs {walls[1]:.1f} s)"
            )


if __name__ == "__main__":
    main()
