"""Which device and precision to compute on: explicit choices checked, "auto" resolved."""

from __future__ import annotations

import functools

from rnnrepl.errors import ResourceError, UsageError


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ResourceError("CUDA is not available on this machine", hint="use --device cpu")
    if device == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ResourceError("MPS is not available on this machine", hint="use --device cpu")
    return device


def resolve_precision(precision: str, device: str) -> str:
    """auto -> bf16 where it is native (AVX-512 BF16 / AMX CPUs, CUDA with bf16), else fp32;
    an explicit bf16 on a CPU whose oneDNN kernels cannot run it is refused."""
    if precision == "bf16" and device == "cpu" and not cpu_runs_bf16():
        raise UsageError(
            "--precision bf16: this CPU has no bf16 kernels (oneDNN needs AVX-512 or AMX)",
            hint="use --precision fp32, or auto",
        )
    if precision != "auto":
        return precision
    import torch

    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device != "cpu":
        return "fp32"
    flags = cpu_flags()
    return "bf16" if "avx512_bf16" in flags or "amx_bf16" in flags else "fp32"


def cpu_runs_bf16() -> bool:
    """Whether torch's CPU kernels (oneDNN's LSTM among them) can compute in bf16 here: natively
    or emulated on AVX-512. On AVX2-only CPUs an LSTM under bf16 autocast fails outright."""
    flags = cpu_flags()
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return True
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags Linux reports (empty where /proc/cpuinfo is unreadable)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read(1 << 20)
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()
