"""Section 3: training throughput at one model size, rnnrepl vs the reference, alternating.

Model: 2-layer LSTM, hidden 512, embedding 64, batch 64 x 128 tokens, tiny Shakespeare. rnnrepl
runs its own training loop (rnnrepl.train.loop.Trainer, with the precision `--precision auto` picks
here, and again in fp32); the reference runs bench/reference.py's loop. Each side trains in
blocks of steps, the sides taking turns; tokens/s is the median over blocks.

Dropout is each side's own default at this size (rnnrepl 0.1, reference 0.2); it does not
change which LSTM kernel runs. FLOPs counted: the matrix products only, 2*4*H*(E_in + H) per LSTM layer and 2*H*V for the
output layer per token forward, times 3 for forward + backward.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path

from common import alternate, char_split, cpu_field, cpu_flags, row

H, LAYERS, E, BATCH, SPAN = 512, 2, 64, 64, 128


def flops_per_token(vocab: int, hidden: int = H, embed: int = E, layers: int = LAYERS) -> int:
    fwd = sum(2 * 4 * hidden * ((embed if i == 0 else hidden) + hidden) for i in range(layers))
    return 3 * (fwd + 2 * hidden * vocab)


def fp32_flops_per_cycle() -> tuple[int, str]:
    """Per core: FMA pipes x fp32 lanes x 2. AMD family 26 (Zen 5) runs AVX-512 on full-width
    pipes; Zen 4 (family 25) splits each 512-bit op in two; Intel server cores with AVX-512
    have two 512-bit FMA units."""
    amd = "AMD" in cpu_field("vendor_id") or "AMD" in cpu_field("model name")
    if "avx512f" in cpu_flags() and (not amd or cpu_field("cpu family") == "26"):
        return 64, "2 x 512-bit FMA pipes x 16 fp32 lanes x 2"
    return 32, "2 x 256-bit FMA pipes x 8 fp32 lanes x 2"


CLOCK_C = r"""
#include <stdio.h>
#include <time.h>
int main(void) {  /* 8 dependent 1-cycle adds per iteration: 8 x iterations / CPU s = Hz */
    long n = 50000000, x = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    for (long i = n; i > 0; i--)
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    printf("%.4f\n", 8.0 * n / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9) / 1e9);
    return x == 0;
}
"""


def measured_ghz(cores: int) -> float | None:
    """The clock every core runs at while all are busy: a chain of dependent adds, one per
    cycle, on each core at once, timed in CPU time (time-sharing with other processes does
    not count); the best of 3 rounds."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or platform.machine() not in ("x86_64", "AMD64"):
        return None
    with tempfile.TemporaryDirectory(prefix="rnnrepl-bench-") as tmp:
        src, exe = Path(tmp) / "clock.c", Path(tmp) / "clock"
        src.write_text(CLOCK_C, encoding="ascii")
        if subprocess.run([cc, "-O1", "-o", str(exe), str(src)]).returncode != 0:
            return None
        best = 0.0
        for _ in range(3):
            procs = [subprocess.Popen([exe], stdout=subprocess.PIPE) for _ in range(cores)]
            ghz = [float(p.communicate()[0]) for p in procs]
            best = max(best, statistics.median(ghz))
    return best


def peak() -> dict:
    """Theoretical peak of this machine, and how it was derived."""
    import os

    cores = os.cpu_count() or 1
    nominal = float(cpu_field("cpu MHz") or 0) / 1000
    ghz = measured_ghz(cores)
    clock = (
        f"{ghz:.2f} GHz (measured: dependent adds on all cores at once; /proc/cpuinfo says "
        f"{nominal:.2f})"
        if ghz
        else f"{nominal:.2f} GHz (/proc/cpuinfo's nominal clock; no C compiler to measure it)"
    )
    ghz = ghz or nominal
    per_cycle, why = fp32_flops_per_cycle()
    gflops = cores * ghz * per_cycle
    return {
        "fp32_gflops": gflops,
        "bf16_gflops": 2 * gflops if "avx512_bf16" in cpu_flags() else None,
        "ghz": ghz,
        "how": f"{cores} cores x {clock} x {per_cycle} fp32 FLOP/cycle ({why}); bf16 dot "
        "products (VDPBF16PS) do twice the FLOPs per instruction",
    }


def gemm_gflops(n: int = 2048, repeats: int = 5) -> dict:
    """fp32 GEMM as torch.matmul runs it (MKL) and through oneDNN, and bf16 (oneDNN): what
    the libraries reach here, next to the theoretical peak."""
    import torch
    from torch.utils import mkldnn

    x, linear = torch.randn(n, n), torch.nn.Linear(n, n, bias=False).eval()
    onednn, xm = mkldnn.to_mkldnn(linear), x.to_mkldnn()
    xb = x.bfloat16()
    cases = {"fp32 matmul (MKL)": lambda: x @ x, "fp32 oneDNN": lambda: onednn(xm),
             "bf16 matmul": lambda: xb @ xb}  # fmt: skip
    out = {}
    with torch.no_grad():
        for name, fn in cases.items():
            fn()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            out[name] = 2 * n**3 / min(times) / 1e9
    return out


class RnnreplSide:
    """rnnrepl's Trainer, run for `steps` steps at a time (should_stop ends each block)."""

    def __init__(self, precision: str, tmp: Path) -> None:
        import numpy as np

        from rnnrepl.config import ModelConfig, TrainConfig
        from rnnrepl.text.tokenizers import build_tokenizer
        from rnnrepl.text.tokens import count_symbols, encode_corpus
        from rnnrepl.train.loop import Trainer, new_model

        train_text, val_text = char_split()
        tok = build_tokenizer("char", count_symbols(train_text, "char", False), False, 1, 0)
        ids = encode_corpus(train_text, tok)
        val = np.asarray(encode_corpus(val_text[:2000], tok))
        self.vocab = tok.size
        mcfg = ModelConfig(vocab_size=tok.size, embed=E, hidden=H, layers=LAYERS, dropout=0.1)
        tcfg = TrainConfig(seq_len=SPAN, batch_size=BATCH, lr=2e-3, precision=precision,
                           eval_every=10**9, sample_every=-1)  # fmt: skip
        self.times: list[float] = []
        self.budget = 0
        self.trainer = Trainer(
            new_model(mcfg, 1337, "cpu"), tok, ids, val, tcfg, tmp / f"tp-{precision}", {},
            on_event=self._on_event, should_stop=lambda: len(self.times) >= self.budget,
        )  # fmt: skip

    def _on_event(self, ev) -> None:
        if ev.kind == "step":
            self.times.append(time.perf_counter())

    def block(self, steps: int) -> float:
        """Seconds for `steps` steps (timed after one untimed step)."""
        self.times, self.budget = [], steps + 1
        self.trainer.run()
        return self.times[-1] - self.times[0]


class ReferenceSide:
    def __init__(self) -> None:
        import torch
        from reference import TBPTT, THROUGHPUT, RNNModel, char_data

        torch.manual_seed(1337)
        data = char_data()
        self.vocab = len(data.vocab)
        self.loop = TBPTT(RNNModel(self.vocab, THROUGHPUT), data.train, THROUGHPUT)

    def block(self, steps: int) -> float:
        self.loop.step()
        start = time.perf_counter()
        for _ in range(steps):
            self.loop.step()
        return time.perf_counter() - start


def throughput(quick: bool, **_) -> dict:
    from rnnrepl.model.devices import resolve_precision

    rounds, steps = (2, 3) if quick else (5, 20)
    auto = resolve_precision("auto", "cpu")
    with tempfile.TemporaryDirectory(prefix="rnnrepl-bench-") as tmp:
        sides = {
            f"rnnrepl {auto} (auto)": RnnreplSide(auto, Path(tmp)),
            "reference fp32": ReferenceSide(),
        }
        if auto != "fp32":
            sides["rnnrepl fp32"] = RnnreplSide("fp32", Path(tmp))
        rates: dict[str, list[float]] = {name: [] for name in sides}
        for r in range(rounds):
            for name in alternate(list(sides), r):
                seconds = sides[name].block(steps)
                rates[name].append(steps * BATCH * SPAN / seconds)
                print(
                    f"  round {r + 1}/{rounds} {name}: {rates[name][-1]:,.0f} tokens/s", flush=True
                )
    pk = peak()
    gemm = gemm_gflops()
    result = {}
    for name, side in sides.items():
        tps = statistics.median(rates[name])
        gflops = tps * flops_per_token(side.vocab) / 1e9
        result[name] = {"tokens_per_s": tps, "gflops": gflops, "blocks": rates[name],
                        "blocks_n": len(rates[name])}  # fmt: skip
    ref = result["reference fp32"]["tokens_per_s"]
    rows = []
    for name, res in result.items():
        is_ref = name.startswith("reference")
        bf16 = "bf16" in name and pk["bf16_gflops"]
        top, kind = (pk["bf16_gflops"], "bf16") if bf16 else (pk["fp32_gflops"], "fp32")
        rows.append(
            row(
                "3 throughput",
                f"train tokens/s, 2x512 LSTM, batch 64x128: {name}",
                res["tokens_per_s"],
                "tokens/s",
                baseline=None if is_ref else ref,
                baseline_label="" if is_ref else "reference fp32",
                target="" if is_ref else "≥ reference",
                met=None if is_ref else res["tokens_per_s"] >= ref,
                note=f"{res['gflops']:.1f} GFLOP/s = {100 * res['gflops'] / top:.1f}% of the "
                f"{kind} peak {top:.0f}; {res['blocks_n']} blocks of {steps} steps",
            )
        )
    details = {"sides": result, "peak": pk, "gemm_2048_gflops": gemm,
               "flops_per_token": {n: flops_per_token(s.vocab) for n, s in sides.items()},
               "rounds": rounds, "steps_per_block": steps}  # fmt: skip
    notes = [
        f"Peak: {pk['how']}: {pk['fp32_gflops']:.0f} GFLOP/s fp32"
        + (f", {pk['bf16_gflops']:.0f} bf16" if pk["bf16_gflops"] else "")
        + f". FLOPs/token (fwd+bwd matmuls): {flops_per_token(66) / 1e6:.1f} M. GEMM 2048² "
        "here: " + ", ".join(f"{k} {v:.0f}" for k, v in gemm.items()) + " GFLOP/s.",
    ]
    return {"rows": rows, "details": details, "notes": notes}
