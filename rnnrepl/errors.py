"""Expected failures, each carrying the exit code of the contract in RELIABILITY.md.

The core raises these; only the CLI turns them into one stderr line and an exit status.
"""

from __future__ import annotations

import re


class RnnreplError(Exception):
    """An expected failure: a message for the user, a hint, and an exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "", path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = path

    def __str__(self) -> str:
        text = self.message
        if self.path:
            text += f" ({self.path})"
        if self.hint:
            text += f" — {self.hint}"
        return text


class UsageError(RnnreplError):
    exit_code = 2


class InputDataError(RnnreplError):
    exit_code = 3


class CheckpointError(RnnreplError):
    exit_code = 4


class ResourceError(RnnreplError):
    exit_code = 5


class NumericalError(RnnreplError):
    exit_code = 6


# What torch and Python say when an allocation fails: MemoryError (Python, numpy),
# torch.OutOfMemoryError (CUDA, MPS), and a plain RuntimeError from the CPU allocator.
_OOM_TEXT = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate")
_ASKED = re.compile(r"allocate ([\d.]+) ?(bytes|[KMGT]i?B)", re.IGNORECASE)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for every way an allocation failure surfaces from Python, numpy and torch."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and any(t in str(exc).lower() for t in _OOM_TEXT)


def out_of_memory(exc: BaseException, doing: str, hint: str) -> ResourceError:
    """The exit-5 error for an allocation failure: what failed, how much was asked, the fix."""
    asked = _ASKED.search(str(exc))
    size = ""
    if asked:
        number, unit = asked.groups()
        amount = human_bytes(float(number)) if unit.lower() == "bytes" else f"{number} {unit}"
        size = f" (could not allocate {amount})"
    return ResourceError(f"out of memory {doing}{size}", hint=hint)


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    suffix = "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            break
        n, suffix = n / 1024, bigger
    return f"{n:.0f} bytes" if suffix == "bytes" else f"{n:.1f} {suffix}"
