"""Every GPU check and GPU benchmark in one run of under 8 minutes, for a machine with CUDA.

1. the CUDA tests (tests/test_cuda.py: train on the GPU and load on the CPU, a CPU model on the
   GPU, two GPUs over nccl when there are two) and the CPU data-parallel invariant;
2. training tokens/s through `rnnrepl train`, GPU against CPU (every core), for the 2x512 LSTM
   (batch 64 x 128) and the char defaults of a 5-minute run, bf16 autocast where the GPU has it;
   with two GPUs, `--nproc 2` against one GPU;
3. the WikiText-2 word recipe (`--time 16m` on the README's CPU) given 16 minutes divided by the
   GPU's speed-up measured in 2., capped at 2 minutes: its validation perplexity;
4. generation, `rnnrepl generate` of the bundled char model, `--device cuda` against the CPU.

Prints markdown rows for bench/RESULTS.md. Without CUDA it says so and measures nothing.

    python bench/bench_gpu.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from rnnrepl.store import modelfile, resume  # noqa: E402

DATA = REPO.parent / "shared" / "data"
LSTM = ["--arch", "lstm", "--layers", "2", "--hidden", "512", "--embed", "64",
        "--batch-size", "64", "--seq-len", "128"]  # fmt: skip
ENV = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}


def rnnrepl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "rnnrepl", *args], capture_output=True, text=True, env=ENV,
        timeout=timeout,
    )  # fmt: skip
    if done.returncode:
        print(f"FAILED ({done.returncode}): rnnrepl {' '.join(args)}\n{done.stderr[-1500:]}")
    return done


def tokens_per_s(tmp: Path, device: str, recipe: list[str], steps: int, *extra: str) -> float:
    out = tmp / f"m-{device}-{len(extra)}"
    corpus = DATA / "tinyshakespeare" / "input.txt"
    rnnrepl("train", str(corpus), "-o", str(out), "--force", "--steps", str(steps),
            "--eval-every", str(steps), "--eval-tokens", "4096", "--device", device,
            *recipe, *extra)  # fmt: skip
    _, meta = resume.load_state(out.with_name(out.name + ".state.safetensors"))
    return meta["progress"]["tokens_seen"] / meta["progress"]["elapsed"]


def generation(device: str) -> float:
    began = time.monotonic()
    rnnrepl(
        "generate", "shakespeare-char", "ROMEO:", "-n", "2000", "--seed", "1", "--device", device
    )
    return 2000 / (time.monotonic() - began)


def main() -> None:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (the GPU rows stay 'not yet measured')")
        return
    gpus = torch.cuda.device_count()
    name = torch.cuda.get_device_name(0)
    print(f"GPU: {gpus} x {name}; CPU cores: {os.cpu_count()}; torch {torch.__version__}")
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py",
         "tests/test_distributed.py", "-k", "cuda or gpu or two_ranks"],
        cwd=REPO, env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    print("CUDA tests:", (tests.stdout.strip().splitlines() or ["?"])[-1])
    rows, speedups = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, recipe, steps in (
            ("2x512 LSTM, batch 64x128", LSTM, 60),
            ("char defaults (5m)", ["--time", "5m"], 60),
        ):
            cpu = tokens_per_s(tmp, "cpu", recipe, max(5, steps // 6))
            gpu = tokens_per_s(tmp, "cuda", recipe, steps)
            speedups.append(gpu / cpu)
            rows.append(
                f"| training tokens/s, {label} | {gpu:,.0f} on {name} | {cpu:,.0f} on CPU | {gpu / cpu:.1f}x |"
            )
            if gpus >= 2:
                two = tokens_per_s(tmp, "cuda", recipe, steps, "--nproc", "2")
                rows.append(
                    f"| the same, `--nproc 2` on 2 GPUs | {two:,.0f} | {gpu:,.0f} on 1 GPU | {two / gpu:.2f}x |"
                )
        budget = max(30, min(120, int(16 * 60 / max(speedups[0], 1))))
        wiki = DATA / "wikitext-2"
        out = tmp / "wiki"
        rnnrepl("train", str(wiki / "train.txt"), "--val", str(wiki / "valid.txt"), "--level",
                "word", "-o", str(out), "--time", f"{budget}s", "--device", "cuda", timeout=budget + 240)  # fmt: skip
        info = modelfile.load_model(out.with_name("wiki.safetensors"), "cpu").training
        rows.append(
            f"| WikiText-2 word defaults, `--time {budget}s` on the GPU | val loss {info['val_loss']:.3f} nats/token, {info['tokens_seen']:,} tokens | | |"
        )
        g, c = generation("cuda"), generation("cpu")
        rows.append(
            f"| `rnnrepl generate` (batch-1 steps), end to end | {g:,.0f} tokens/s --device cuda | {c:,.0f} tokens/s on CPU | {g / c:.2f}x |"
        )
    print("| figure | GPU | CPU | ratio |\n| --- | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
