"""Shared helpers for the benchmark sections: paths, statistics, timed subprocesses, figures.

Nothing here imports torch at module level: the start-up section must be able to measure a
process that has not loaded it.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
# The corpora live beside the repository and are never copied into it.
DATA = Path(os.environ.get("RNNREPL_BENCH_DATA", REPO.parent / "shared" / "data"))
SHAKESPEARE = DATA / "tinyshakespeare" / "input.txt"
WIKI = DATA / "wikitext-2"
VAL_FRACTION = 0.1  # rnnrepl's default --val-fraction: the last 10% by position

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def rnnrepl_argv() -> list[str]:
    """How to launch rnnrepl: the installed entry point if there is one, else `python -m`."""
    exe = shutil.which("rnnrepl")
    return [exe] if exe else [sys.executable, "-m", "rnnrepl"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(values: list[float]) -> dict:
    """median / p99 / min / max / n of a list of measurements."""
    return {
        "median": statistics.median(values),
        "p99": percentile(values, 0.99),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def alternate(sides: list, round_index: int) -> list:
    """The sides in a rotated order, so no side is always first (warm caches, thermal drift)."""
    k = round_index % len(sides)
    return sides[k:] + sides[:k]


def char_split(path: Path = SHAKESPEARE) -> tuple[str, str]:
    """A corpus file (tiny Shakespeare unless given): (first 90%, last 10%) by character
    position, as `rnnrepl train` splits."""
    text = path.read_text(encoding="utf-8")
    k = int(len(text) * (1 - VAL_FRACTION))
    return text[:k], text[k:]


# ---- subprocesses ----------------------------------------------------------------------------
@dataclass
class Proc:
    argv: list[str]
    rc: int
    seconds: float
    maxrss_mb: float  # peak resident set of the process itself (see wait_for)
    stdout: str
    stderr: str

    def check(self) -> Proc:
        if self.rc != 0:
            lines = (self.stderr or self.stdout).strip().splitlines() or [""]
            raise RuntimeError(f"{shlex.join(self.argv[1:6])} ... exited {self.rc}: {lines[-1]}")
        return self


def run_timed(
    argv: list[str], timeout: float = 3600, env: dict | None = None, cwd: Path = REPO
) -> Proc:
    """Run argv to completion; wall seconds from spawn to exit and the child's own peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)
        status, peak_mb = wait_for(proc, timeout)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Proc(
            argv,
            status,
            seconds,
            peak_mb,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """The peak resident set of a process's current address space (VmHWM), in MB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def wait_for(proc: subprocess.Popen, timeout: float, drain=None) -> tuple[int, float]:
    """(exit status, peak RSS in MB) of proc; kill it (by its own pid) after `timeout` s.

    The peak is VmHWM polled every few ms until exit. Not wait4's ru_maxrss: Linux carries a
    parent's high-water mark into a child across fork + exec, so a child of a process that
    has loaded torch would report at least the parent's size. `drain` is called while waiting
    (a pty's output must be read or the child blocks)."""
    deadline = time.monotonic() + timeout
    peak = 0.0
    while True:
        peak = max(peak, vm_hwm_mb(proc.pid) or 0.0)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, peak or usage.ru_maxrss / 1024
        if time.monotonic() > deadline:
            proc.send_signal(signal.SIGTERM if time.monotonic() < deadline + 5 else signal.SIGKILL)
        if drain is not None:
            drain()
        time.sleep(0.005)


def python_json(code: str, timeout: float = 3600) -> tuple[dict, Proc]:
    """Run Python code in a fresh interpreter (in bench/, so `import common` works); its last
    stdout line is a JSON object."""
    proc = run_timed([sys.executable, "-c", code], timeout=timeout, cwd=BENCH).check()
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc


# ---- the machine -----------------------------------------------------------------------------
def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_field(name: str) -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine() -> dict:
    import torch

    return {
        "cpu": cpu_field("model name") or platform.processor(),
        "cpu_family": cpu_field("cpu family"),
        "cpu_mhz": cpu_field("cpu MHz"),
        "cores": os.cpu_count(),
        "avx512f": "avx512f" in cpu_flags(),
        "avx512_bf16": "avx512_bf16" in cpu_flags(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg": os.getloadavg(),
    }


# ---- figures ---------------------------------------------------------------------------------
def row(
    section: str,
    figure: str,
    value: float | None,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_label: str = "",
    target: str = "",
    met: bool | None = None,
    note: str = "",
) -> dict:
    """One line of the results table. met: True/False, or None where there is no target."""
    return {
        "section": section,
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_label": baseline_label,
        "target": target,
        "met": met,
        "note": note,
    }
