"""Markdown tables from bench_monitors.py / bench_callbacks.py results.

    python benchmarks/report.py monitors.json [callbacks.json ...] [--stat min|median|mean]

Prints, in Markdown (to paste into benchmarks/README.md):

* monitor overhead: program x variant, each the ratio of the variant's run
  time to ``plain`` (the original module on wasmtime) from the *same* result
  file, with a geometric-mean row, the targets and whether they are met;
* callbacks: per program, firings per run, run times and µs per firing =
  (callback - plain) / fires.

``--stat`` picks the per-benchmark statistic (default ``min``: on a shared
machine background load only ever adds time, so the fastest of the values is
the best estimate of the cost itself; ``median`` and ``mean`` are available).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pyperf

TARGETS = {
    "none": 1.02, "coverage": 1.05, "icount": 1.10, "hotness": 1.10, "branches": 1.3,
    "calls": 1.3,
}
"""Overhead targets (ratio to plain wasmtime), from the benchmark issue."""
CALLBACK_TARGET_US = 2.0
"""A Python callback at every function entry: at most this many µs per firing."""
PROGRAM_ORDER = ("nbody", "sieve", "sha", "matmul", "bytecode", "recursive", "micro")
VARIANT_ORDER = ("plain", "none", "coverage", "icount", "hotness", "branches", "calls", "loops",
                 "memory", "opcodes")
MIN_FIRES = 10_000
"""Below this many firings per run, µs per fire is lost in run-to-run noise."""


@dataclass
class Result:
    program: str
    variant: str
    seconds: float
    values: list[float]
    fires: int | None
    source: str


def load(paths: list[str], stat: str) -> tuple[list[Result], set[str]]:
    picks: dict[str, Callable[[list[float]], float]] = {
        "min": min, "median": statistics.median, "mean": statistics.fmean}
    pick = picks[stat]
    out: list[Result] = []
    clocks: set[str] = set()
    for path in paths:
        suite = pyperf.BenchmarkSuite.load(path)
        for bench in suite.get_benchmarks():
            clocks.add(str(bench.get_metadata().get("clock", "wall")))
            name = bench.get_name()
            meta = bench.get_metadata()
            program, _, variant = name.partition("/")
            program = str(meta.get("program", program))
            variant = str(meta.get("variant", variant))
            values = list(bench.get_values())
            fires = meta.get("fires")
            out.append(Result(program, variant, pick(values), values,
                              int(fires) if fires is not None else None, path))
    return out, clocks


def _order(items: set[str], order: tuple[str, ...]) -> list[str]:
    return sorted(items, key=lambda x: (order.index(x) if x in order else len(order), x))


def gmean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def monitor_table(results: list[Result]) -> str:
    plain = {(r.source, r.program): r for r in results if r.variant == "plain"}
    ratios: dict[tuple[str, str], float] = {}
    bases: dict[str, Result] = {}
    for r in results:
        if r.variant in ("plain", "callback-entry", "host-noop") or r.program == "micro":
            continue
        base = plain.get((r.source, r.program))
        if base is not None:
            ratios[(r.program, r.variant)] = r.seconds / base.seconds
            bases.setdefault(r.program, base)
    if not ratios:
        return ""
    programs = _order({p for p, _ in ratios}, PROGRAM_ORDER)
    variants = _order({v for _, v in ratios}, VARIANT_ORDER)
    head = ["program", "plain (s)"] + variants
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for p in programs:
        cells = [p, f"{bases[p].seconds:.3f}"]
        for v in variants:
            x = ratios.get((p, v))
            cells.append(f"{x:.2f}×" if x is not None else "—")
        lines.append("| " + " | ".join(cells) + " |")
    gm: dict[str, float] = {}
    for v in variants:
        xs = [ratios[(p, v)] for p in programs if (p, v) in ratios]
        gm[v] = gmean(xs)
    lines.append("| **geomean** | | " + " | ".join(f"**{gm[v]:.2f}×**" for v in variants)
                 + " |")
    lines.append("| target | | " + " | ".join(
        f"≤ {TARGETS[v]:.2f}×" if v in TARGETS else "—" for v in variants) + " |")

    def verdict(v: str) -> str:
        if v not in TARGETS:
            return "—"
        worst = max(ratios[(p, v)] for p in programs if (p, v) in ratios)
        if worst <= TARGETS[v]:
            return "met"
        if gm[v] <= TARGETS[v]:
            return f"geomean met (worst {worst:.2f}×)"
        return "**not met**"

    lines.append("| met? | | " + " | ".join(verdict(v) for v in variants) + " |")
    return "\n".join(lines)


def callback_table(results: list[Result]) -> str:
    plain = {(r.source, r.program): r for r in results if r.variant == "plain"}
    rows = [r for r in results if r.fires is not None]
    if not rows:
        return ""
    rows.sort(key=lambda r: (PROGRAM_ORDER.index(r.program) if r.program in PROGRAM_ORDER
                             else 99, r.variant))
    lines = ["| program | variant | fires / run | plain (s) | with callbacks (s) | ratio "
             "| µs / fire |",
             "|---|---|---:|---:|---:|---:|---:|"]
    best: list[float] = []
    for r in rows:
        base = plain.get((r.source, r.program))
        if base is None or not r.fires:
            continue
        us = (r.seconds - base.seconds) / r.fires * 1e6
        if r.fires < MIN_FIRES:
            per_fire = "— (too few fires)"
        else:
            per_fire = f"{us:.2f}"
            if r.variant == "callback-entry":
                best.append(us)
        ratio = f"{r.seconds / base.seconds:.2f}×" if base.seconds > 0.05 else "—"
        lines.append(f"| {r.program} | {r.variant} | {r.fires:,} | {base.seconds:.3f} | "
                     f"{r.seconds:.3f} | {ratio} | {per_fire} |")
    if best:
        worst = max(best)
        status = "met" if worst <= CALLBACK_TARGET_US else "**not met**"
        lines.append(f"\nTarget: a Python callback at every function entry ≤ "
                     f"{CALLBACK_TARGET_US:g} µs per fire: {status} (measured "
                     f"{min(best):.2f}–{worst:.2f} µs where fires ≥ {MIN_FIRES:,}).")
    return "\n".join(lines)


def noise_note(results: list[Result]) -> str:
    spreads = [(max(r.values) - min(r.values)) / min(r.values) for r in results
               if len(r.values) > 1 and min(r.values) > 0]
    if not spreads:
        return ""
    return (f"Spread of the values within a benchmark, (max - min) / min: median "
            f"{100 * statistics.median(spreads):.1f}%, max {100 * max(spreads):.1f}% "
            f"over {len(spreads)} benchmarks.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", help="pyperf JSON result files")
    ap.add_argument("--stat", choices=("min", "median", "mean"), default="min",
                    help="per-benchmark statistic (default: min)")
    args = ap.parse_args(argv)
    results, clocks = load(args.files, args.stat)
    clock = {"cpu": "thread CPU time", "wall": "wall-clock time"}
    what = f"{args.stat} of the values per benchmark, " + " and ".join(
        clock.get(c, c) for c in sorted(clocks))
    out = []
    mt = monitor_table(results)
    if mt:
        out.append(f"Run time of `_start` relative to plain wasmtime ({what}):\n\n{mt}")
    ct = callback_table(results)
    if ct:
        out.append(f"Python callback (`CallbackProbe`) at every function entry "
                   f"({what}):\n\n{ct}")
    note = noise_note(results)
    if note:
        out.append(note)
    if not out:
        print("no bench_monitors.py / bench_callbacks.py results in "
              + ", ".join(args.files), file=sys.stderr)
        return 1
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
