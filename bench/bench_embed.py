"""Contextual string embeddings: `rnnrepl embed FORWARD BACKWARD -f FILE -o out.safetensors` on a
1 MB file, in characters per second (both models read every character), as a ratio to
`rnnrepl eval FORWARD FILE` on the same file in the same run, so the figure does not depend on
how fast (or how busy) the machine is. Both are timed end to end through the CLI (wall clock,
start-up included), the sides alternating, ROUNDS times each; the figure is the median.

The models default to the bundled char model's size: FORWARD is `shakespeare-char` (LSTM
2x512) and BACKWARD a copy of it labelled backward (the weights do not change the time).

    python bench/bench_embed.py [--mb 1] [--rounds 1] [--forward M --backward M] [--corpus PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rnnrepl.store.modelfile import resolve_model_path, update_training  # noqa: E402

SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def timed(*args: str) -> float:
    """Wall seconds of `rnnrepl ARGS`; exits on failure."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "rnnrepl", *args], capture_output=True,
                          text=True, env=env)  # fmt: skip
    if done.returncode:
        sys.exit(
            f"bench_embed: rnnrepl {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return time.monotonic() - began


def sample(corpus: Path, mb: float, folder: Path) -> tuple[Path, int]:
    """The first `mb` MB of the corpus, repeated if it is shorter; (path, characters)."""
    text = corpus.read_text(encoding="utf-8")
    want = int(mb * 1_000_000)
    text = (text * (want // len(text) + 1))[:want]
    path = folder / "sample.txt"
    path.write_text(text, encoding="utf-8")
    return path, len(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--forward", default="shakespeare-char")
    ap.add_argument("--backward", help="default: FORWARD's weights labelled backward")
    ap.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        forward = str(resolve_model_path(args.forward))
        backward = args.backward
        if backward is None:
            backward = str(shutil.copy(forward, folder / "backward.safetensors"))
            update_training(backward, {"direction": "backward"})
        path, chars = sample(args.corpus, args.mb, folder)
        out = str(folder / "out.safetensors")
        embeds, evals = [], []
        for _ in range(args.rounds):
            evals.append(timed("eval", forward, str(path)))
            embeds.append(timed("embed", forward, backward, "-f", str(path), "-o", out))
        size = Path(out).stat().st_size
    embed_rate, eval_rate = chars / statistics.median(embeds), chars / statistics.median(evals)
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
          f"{chars:,} characters, {args.rounds} round(s); load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"embed (both models, -o): {embed_rate:,.0f} characters/s "
          f"({statistics.median(embeds):.1f} s; the file {size / 1e6:.0f} MB)")  # fmt: skip
    print(
        f"eval (forward model):    {eval_rate:,.0f} characters/s ({statistics.median(evals):.1f} s)"
    )
    print(f"ratio embed / eval: {embed_rate / eval_rate:.2f}x")


if __name__ == "__main__":
    main()
