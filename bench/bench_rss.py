"""Issue 16: peak RSS of `rnnrepl train` against corpus size (100 MB, 1 GB, 2 GB by default).

Each corpus is generated in a temp dir (text repeated from tiny Shakespeare when ../shared/data has
it, else a synthetic text; never committed, deleted at the end), then trained on through the CLI
at char level (or --level) for a few steps with a fixed small model, twice: the first run encodes the corpus
into the token cache (in the temp dir's XDG_DATA_HOME), the second reuses it. Peak RSS is the
child's own (os.wait4's ru_maxrss: the largest of `train` and the encoding workers it started,
not their sum); the encode time is the one `train` reports in its note.

    OMP_NUM_THREADS=1 nice python bench/bench_rss.py [--sizes 100M,1G,2G] [--level char]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
TRAIN = ["--arch", "gru", "--layers", "1", "--hidden", "128", "--embed", "32"]
TRAIN += ["--batch-size", "32", "--seq-len", "64", "--steps", "5", "--eval-every", "5"]
TRAIN += ["--eval-tokens", "2000", "--device", "cpu", "--precision", "fp32", "--force"]


def size_bytes(spec: str) -> int:
    units = {"K": 10**3, "M": 10**6, "G": 10**9}
    return int(float(spec[:-1]) * units[spec[-1].upper()]) if spec[-1].isalpha() else int(spec)


def make_corpus(path: Path, size: int) -> None:
    """`size` bytes of text: tiny Shakespeare (or a synthetic text) repeated, numbered so that no
    two blocks are the same."""
    base = SHAKESPEARE.read_text() if SHAKESPEARE.is_file() else _synthetic()
    with open(path, "w") as f:
        written, n = 0, 0
        while written < size:
            block = f"== {n} ==\n{base}"[: size - written]
            f.write(block)
            written += len(block.encode())
            n += 1


def _synthetic() -> str:
    words = "the of and to in a is that for it as was with be by on not he this are".split()
    return "\n".join(
        " ".join(words[(i * 7 + j) % len(words)] for j in range(12)) for i in range(20000)
    )


def run_train(corpus: Path, home: Path, out: Path, level: str) -> tuple[float, float, str]:
    """(peak RSS in MB, wall seconds, stderr) of one `rnnrepl train`."""
    env = {**os.environ, "XDG_DATA_HOME": str(home), "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rnnrepl", "train", str(corpus), "-o", str(out), "--level", level]
            + TRAIN,
            env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=str(REPO),
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        err.seek(0)
        text = err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"train failed on {corpus}:\n{text}")
    return usage.ru_maxrss / 1024, wall, text


def measure(spec: str, tmp: Path, level: str) -> str:
    corpus = tmp / f"corpus-{spec}.txt"
    make_corpus(corpus, size_bytes(spec))
    home = tmp / "data"
    try:
        rss1, wall1, err1 = run_train(corpus, home, tmp / "m", level)
        rss2, wall2, err2 = run_train(corpus, home, tmp / "m", level)
    finally:
        corpus.unlink()
        shutil.rmtree(home, ignore_errors=True)
    encoded = re.search(r"encoded ([\d,]+) tokens in ([\d.]+)s", err1)
    assert encoded and "reused from the cache" in err2, (err1, err2)
    tokens, enc_s = encoded.group(1), float(encoded.group(2))
    mb = size_bytes(spec) / 1e6
    notes = [line for line in err1.splitlines() if "processes" in line or "sample of" in line]
    return (
        f"| {spec} {level} | {tokens} | {rss1:,.0f} MB | {enc_s:.1f} s ({mb / enc_s:.0f} MB/s) | "
        f"{wall1:.1f} s | {rss2:,.0f} MB | {wall2:.1f} s |" + "".join(f"\n  {n}" for n in notes)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100M,1G,2G")
    parser.add_argument("--level", default="char", choices=["char", "word", "bpe"])
    args = parser.parse_args()
    print(
        "| corpus | tokens | peak RSS, first run | encode | wall | peak RSS, cache reused | wall |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="rnnrepl-rss-") as tmp:
        for spec in args.sizes.split(","):
            print(measure(spec, Path(tmp), args.level), flush=True)


if __name__ == "__main__":
    main()
