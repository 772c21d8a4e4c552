"""How fast could the native backend be without its exactness costs? A measurement only.

    python benchmarks/native_ceiling.py [--programs nbody,sha] [--rounds 5] [--clang]
        [--variants shipped,unchecked] [--layouts 4]

Compiles each program with the native backend six times, five of them with parts of
the lowering switched off, and times them interleaved with plain wasmtime in one
process (guest thread CPU time, minimum over the rounds):

* ``shipped``: the backend as it is;
* ``per-access``: a bounds check on every access (no merged checks, guards.py);
* ``no-loops``: merged checks in straight-line runs, but none once per counted loop;
* ``unchecked``: no bounds check on any memory access (what a guard-page scheme would
  remove; unsafe: an out-of-bounds access is a segfault);
* ``no-frames``: no frame record before calls and no call-depth check, only the native
  stack check (backtraces and runaway tail recursion are then wrong);
* ``unsafe``: both.

``--clang`` adds ``clang-x86``: the same C compiled by the ``ziglang`` clang straight to
x86-64 Linux (``-O2``, musl, no Wasm and no sandbox), run as a process (its CPU time:
what LLVM makes of these programs when nothing of Wasm is in the way).

With ``--layouts K``, each program is measured in K code layouts (layouts.py): per
layout, wasmtime and the variants run the same shifted program, and a program's ratio
is the geometric mean of the per-layout ratios (clang-x86, not shifted, is divided by
each layout's wasmtime time).

It prints each variant's run time over wasmtime's, per program and as a geomean. The
variants patch private methods of the lowering for the length of this process and
compile without the object cache; nothing here is reachable from the library.
"""

from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_native  # noqa: E402
from layouts import PROGRAMS_DIR  # noqa: E402

from probes.backends.native import lower  # noqa: E402

FL = lower._FuncLowering
SHIPPED = {name: getattr(FL, name)
           for name in ("address", "record_frame", "prologue", "_guard_runs")}


def _unchecked_address(self: Any, mem: int, addr: Any, offset: int, nbytes: int) -> Any:
    b = self.b
    base, _size = self.mem_base_and_size(mem)
    a = b.zext(addr, lower.I64)
    return b.gep(base, [b.add(a, lower.ir.Constant(lower.I64, offset)) if offset else a])


def _no_record(self: Any) -> Any:
    return self.frame


def _stack_check_only(self: Any) -> None:
    b = self.b
    sp = b.call(self.ml.intrinsic("llvm.stacksave.p0", lower.I8P, []), [])
    limit = self.ctx_field("stack_limit", lower.I64)
    self.trap_if(b.icmp_unsigned("<", b.ptrtoint(sp, lower.I64), limit), "stack")


NO_FRAMES = {"record_frame": _no_record, "prologue": _stack_check_only}
PER_ACCESS = {"_guard_runs": lambda self: ({}, {})}
NO_LOOPS = {"_guard_runs": lambda self: (SHIPPED["_guard_runs"](self)[0], {})}
UNCHECKED = {"address": _unchecked_address, **PER_ACCESS}
VARIANTS: dict[str, dict[str, Callable[..., Any]]] = {
    "shipped": {},
    "per-access": PER_ACCESS,
    "no-loops": NO_LOOPS,
    "unchecked": UNCHECKED,
    "no-frames": NO_FRAMES,
    "unsafe": {**UNCHECKED, **NO_FRAMES},
}


def compile_variant(program: str, variant: str, layout: int = 0) -> Any:
    for name, shipped in SHIPPED.items():
        setattr(FL, name, VARIANTS[variant].get(name, shipped))
    try:
        return bench_native._native_exe(program, "none", tempfile.mkdtemp(), cache=False,
                                        layout=layout)
    finally:
        for name, shipped in SHIPPED.items():
            setattr(FL, name, shipped)


def _thread_time(run: Callable[[], Any]) -> Callable[[], float]:
    def timed() -> float:
        t = time.thread_time()
        run()
        return time.thread_time() - t
    return timed


def clang_x86(program: str, out_dir: str) -> Callable[[], float]:
    """The program compiled for x86-64 Linux; a run returns the child's CPU time."""
    exe = Path(out_dir) / program
    src = PROGRAMS_DIR / f"{program}.c"
    subprocess.run([sys.executable, "-m", "ziglang", "cc", "--target=x86_64-linux-musl",
                    "-O2", str(src), "-o", str(exe)], check=True)

    def run() -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([str(exe)], stdout=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--programs", default=",".join(bench_native.PROGRAMS))
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated, from {','.join(VARIANTS)} (default: all)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--layouts", type=int, default=1,
                   help="code layouts per program (layouts.py; default 1: as built)")
    p.add_argument("--clang", action="store_true",
                   help="also time the C compiled straight to x86-64 (clang-x86)")
    args = p.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        p.error(f"unknown variant(s) {', '.join(unknown)} (choose from {', '.join(VARIANTS)})")
    if args.layouts < 1 or args.rounds < 1:
        p.error("--layouts and --rounds must be at least 1")
    columns = [*variants, *(["clang-x86"] if args.clang else [])]
    ratios: dict[str, list[float]] = {v: [] for v in columns}
    print(f"{'program':<11}{'wasmtime':>9}" + "".join(f"{v:>11}" for v in columns))
    scratch = tempfile.mkdtemp()
    for prog in args.programs.split(","):
        clang = clang_x86(prog, scratch) if args.clang else None
        per_layout: dict[str, list[float]] = {v: [] for v in columns}
        for k in range(args.layouts):
            wasmtime_run, _ = bench_native._wasmtime_runner(bench_native.program_bytes(prog, k))
            runs: dict[str, Callable[[], float]] = {"wasmtime": _thread_time(wasmtime_run)}
            for v in variants:
                exe = compile_variant(prog, v, k)
                runs[v] = _thread_time(lambda exe=exe: bench_native._native_run(exe))
            if clang is not None:
                runs["clang-x86"] = clang
            best = dict.fromkeys(runs, math.inf)
            for _ in range(args.rounds):
                for name, run in runs.items():
                    best[name] = min(best[name], run())
            base = best["wasmtime"]
            for v in columns:
                per_layout[v].append(best[v] / base)
            label = prog if args.layouts == 1 else f"{prog}@{k}"
            print(f"{label:<11}{base:>8.3f}s" + "".join(f"{best[v] / base:>10.3f}x"
                                                       for v in columns), flush=True)
        for v in columns:
            ratios[v].append(_geomean(per_layout[v]))
        if args.layouts > 1:
            print(f"{prog:<11}{'':>9}" + "".join(f"{ratios[v][-1]:>10.3f}x" for v in columns),
                  flush=True)
    print(f"{'geomean':<11}{'':>9}" + "".join(f"{_geomean(ratios[v]):>10.3f}x"
                                              for v in columns))


def _geomean(values: list[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


if __name__ == "__main__":
    main()
