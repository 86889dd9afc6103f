"""rnnrepl's benchmark suite (issue 5): runs the sections, writes results.json and RESULTS.md.

    python bench/run.py                      # everything: about 75 minutes on 2 cores
    python bench/run.py --quick              # every budget shrunk: a few minutes, to check it works
    python bench/run.py --only char,startup  # some sections (names or numbers); others are kept
    python bench/run.py --threads 1          # OMP_NUM_THREADS=1 everywhere (a shared machine)

Sections: 1 char, 2 word, 3 throughput, 4 step, 5 generation, 6 keystroke, 7 startup,
8 memory, 9 scaling. Each runs in its own Python process, so torch's thread setting, peak
memory and a crash stay inside it. Results of sections not run this time are kept from the
previous bench/results.json (each row says when and whether quick) unless --fresh.
Data: ../shared/data beside the repository (or $RNNREPL_BENCH_DATA); never copied in.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from common import BENCH, REPO, machine, row
from report import ORDER, render, table

SECTIONS = {  # name -> (number, module, function)
    "char": ("1", "bench_quality", "char_quality"),
    "word": ("2", "bench_quality", "word_quality"),
    "throughput": ("3", "bench_throughput", "throughput"),
    "step": ("4", "bench_step", "step_latency"),
    "generation": ("5", "bench_step", "generation"),
    "keystroke": ("6", "bench_panel", "keystroke"),
    "startup": ("7", "bench_system", "startup"),
    "memory": ("8", "bench_system", "memory"),
    "scaling": ("9", "bench_scaling", "scaling"),
}
RESULTS_JSON, RESULTS_MD = BENCH / "results.json", BENCH / "RESULTS.md"
# RESULTS.md below this line is written by hand or by other bench scripts (bench_ksr.py,
# ksr_baselines.py): rewriting the table keeps it.
KEPT = (
    "<!-- Sections below are kept as they are by bench/run.py (it rewrites only what is above). -->"
)


def selected(only: str | None) -> list[str]:
    if not only:
        return list(ORDER)
    by_number = {number: name for name, (number, _, _) in SECTIONS.items()}
    names = []
    for part in only.split(","):
        name = by_number.get(part.strip(), part.strip())
        if name not in SECTIONS:
            raise SystemExit(f"unknown section {part!r}; choose from {', '.join(SECTIONS)}")
        names.append(name)
    return [n for n in ORDER if n in names]


def worker(args: argparse.Namespace) -> None:
    """Run one section in this process and write its JSON to --worker-out."""
    warnings.filterwarnings("ignore", message=".*TF32.*")
    _, module, function = SECTIONS[args.worker]
    fn = getattr(importlib.import_module(module), function)
    try:
        result = fn(quick=args.quick, word_untied=args.word_untied)
    except Exception as exc:  # reported in the table; the traceback is on the console
        Path(args.worker_out).write_text(json.dumps({"error": str(exc)}), encoding="utf-8")
        raise
    Path(args.worker_out).write_text(json.dumps(result, default=str), encoding="utf-8")


def run_section(name: str, args: argparse.Namespace) -> dict:
    number = SECTIONS[name][0]
    print(f"\n=== {number} {name}{' (quick)' if args.quick else ''} ===", flush=True)
    before, start = os.getloadavg()[0], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rnnrepl-bench-") as tmp:
        out = Path(tmp) / "section.json"
        argv = [sys.executable, __file__, "--worker", name, "--worker-out", str(out)]
        argv += ["--quick"] * args.quick + ["--word-untied"] * args.word_untied
        rc = subprocess.run(argv, cwd=REPO).returncode
        data = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
        if rc != 0 or "rows" not in data:
            why = data.get("error", "see the console")
            failed = row(f"{number} {name}", f"section failed (exit {rc})", None, "", note=why)
            data = {"rows": [failed | {"error": True}], "details": {}}
    return data | {
        "quick": args.quick,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "date": time.strftime("%Y-%m-%d"),
        "seconds": time.perf_counter() - start,
        "loadavg_before": before,
        "loadavg_after": os.getloadavg()[0],
    }


def kept_sections() -> str:
    """What RESULTS.md holds from the KEPT line on ('' without one)."""
    old = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else ""
    return "\n" + old[old.index(KEPT) :] if KEPT in old else ""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shrink every budget (a smoke test)")
    ap.add_argument("--only", help="comma-separated section names or numbers")
    ap.add_argument("--fresh", action="store_true", help="drop results of sections not run")
    ap.add_argument("--word-untied", action="store_true", help="also an untied word reference")
    ap.add_argument("--threads", type=int, help="set OMP_NUM_THREADS for every process")
    ap.add_argument("--worker", choices=list(SECTIONS), help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return
    names = selected(args.only)
    results = {"sections": {}}
    if RESULTS_JSON.exists() and not args.fresh:
        results = json.loads(RESULTS_JSON.read_text(encoding="utf-8"))
    results["machine"] = machine()  # torch's own default thread count, before --threads
    if args.threads:  # every section's process inherits it
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    results["command"] = shlex.join(["python", "bench/run.py", *(argv or sys.argv[1:])])
    for name in names:
        results["sections"][name] = run_section(name, args)
        RESULTS_JSON.write_text(json.dumps(results, indent=1, default=str) + "\n", "utf-8")
        RESULTS_MD.write_text(render(results) + kept_sections(), encoding="utf-8")
    print("\n" + "\n".join(table(results)))
    print(f"\nwrote {RESULTS_JSON.relative_to(REPO)} and {RESULTS_MD.relative_to(REPO)}")


if __name__ == "__main__":
    main()
