"""bench/results.json -> bench/RESULTS.md: one markdown table, every figure beside its target."""

from __future__ import annotations

import math

ORDER = ["char", "word", "throughput", "step", "generation", "keystroke", "startup", "memory",
         "scaling"]  # fmt: skip


def number(value) -> str:
    if value is None:
        return "—"
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return str(value)
    a = abs(value)
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 0.01 or a == 0:
        return f"{value:.3f}"
    return f"{value:.2e}"


def verdict(r: dict, quick: bool) -> str:
    if r.get("error"):
        return "error"
    if not r["target"]:
        return "—"
    if r["met"] is None:
        return "n/a (quick)" if quick else "—"
    return "met" if r["met"] else "missed"


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def header(results: dict) -> list[str]:
    m = results["machine"]
    sections = results["sections"]
    quick = [n for n in ORDER if n in sections and sections[n].get("quick")]
    lines = ["# rnnrepl benchmark results", ""]
    if quick:
        lines += [
            f"**QUICK RUN** for {', '.join(quick)}: `--quick` shrinks every budget (seconds of "
            "training instead of minutes, fewer repetitions) to check that the suite works. "
            "Those figures are not comparable with the targets; quality rows say n/a.",
            "",
        ]
    flags = ", ".join(f for f in ("avx512f", "avx512_bf16") if m.get(f))
    lines += [
        f"- machine: {m['cpu']} (cpu family {m['cpu_family']}), {m['cores']} cores, "
        f"{m['cpu_mhz']} MHz nominal, {flags}; {m['platform']}",
        f"- torch {m['torch']}, {m['torch_threads']} threads by default (rows run with "
        "OMP_NUM_THREADS set, or that set a count themselves, say so), oneDNN "
        f"{'available' if m['mkldnn'] else 'absent'}; "
        f"Python {m['python']}",
        f"- run: `{results['command']}`, {m['date']}",
        "- load average (1 min) before -> after each section, to show a shared machine: "
        + "; ".join(
            f"{n} {s['loadavg_before']:.1f} -> {s['loadavg_after']:.1f}"
            for n in ORDER
            if (s := sections.get(n))
        ),
        "",
    ]
    return lines


def table(results: dict) -> list[str]:
    lines = [
        "| § | figure | rnnrepl | baseline | target | result | notes |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for name in ORDER:
        section = results["sections"].get(name)
        if section is None:
            continue
        quick = section.get("quick", False)
        for r in section["rows"]:
            baseline = ""
            if r.get("baseline") is not None:
                baseline = f"{number(r['baseline'])} ({r['baseline_label']})"
            when = f"{section['date']}{' quick' if quick else ''}"
            if section.get("omp_num_threads"):
                when += f", OMP_NUM_THREADS={section['omp_num_threads']}"
            lines.append(
                f"| {r['section'].split()[0]} | {cell(r['figure'])} | "
                f"{number(r['value'])} {r['unit']} | {cell(baseline)} | {r['target']} | "
                f"{verdict(r, quick)} | {cell(r['note'])} ({when}) |"
            )
    return lines


def render(results: dict) -> str:
    extra = [
        f"- {note}" for name in ORDER for note in results["sections"].get(name, {}).get("notes", [])
    ]
    notes = [
        "",
        *(["## Notes", "", *extra, ""] if extra else []),
        "How each figure is measured: see the docstring of the bench module named in "
        "bench/run.py's SECTIONS, and bench/results.json for every run behind each median.",
        "",
    ]
    return "\n".join(header(results) + table(results) + notes)
