"""A/B timing in one process: plain wasmtime and woven variants run in turn.

pyperf times each benchmark in its own worker process, where placement alone
(where the allocator puts the module's memory) moves a run by up to ±30% on
call-heavy programs. For a change that should move a program by a few
percent, this interleaves the variants instead: every round runs plain and
each variant once, and the minimum over the rounds is compared.

    python benchmarks/interleaved.py --rounds 5 --programs bytecode,recursive \\
        icount icount@count_tree=0

A variant is a monitor name (or ``none``), optionally with `CompileOptions`
fields after ``@`` (``key=value`` pairs separated by ``,``; ints and 0/1 bools).
Times are the guest thread's CPU time, as in bench_monitors.py. With
``--backend native`` the variants run on the native backend (plain is still
wasmtime).

With ``--layouts K``, each program is measured in K code layouts
(layouts.py): per layout, plain and every variant are built from the same
shifted program and timed in turn for ``--rounds`` rounds; a program's ratio
is the geometric mean over layouts of the per-layout ratios of minima.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_monitors as bm  # noqa: E402


def _variant(name: str, spec: str, wasm: bytes | None = None, backend: str = "wasm") -> Any:
    from probes.backends.base import CompileOptions
    from probes.ir import decode
    from probes.monitors import create
    from probes.probeset import ProbeSet

    monitor, _, opts = spec.partition("@")
    options = CompileOptions(cache=False)
    types = {f.name: f.type for f in fields(CompileOptions)}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"unknown CompileOptions field {key!r}")
        options = replace(options, **{key: bool(int(value)) if types[key] in (bool, "bool")
                                      else int(value)})
    module = decode(wasm if wasm is not None else bm.program_bytes(name))
    ps = ProbeSet(module)
    if monitor != "none":
        mon = create(monitor)
        mon.attach(module, ps)
        options = replace(options, **(mon.compile_options() or {}))
    return bm.WovenProgram(name, spec, module, ps, options, backend)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variants", nargs="+", help="MONITOR[@field=value,...] or none")
    p.add_argument("--programs", default=",".join(bm.PROGRAMS))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--backend", default="wasm", choices=("wasm", "native"),
                   help="backend that runs the variants (plain is always wasmtime)")
    p.add_argument("--layouts", type=int, default=1,
                   help="code layouts per program (layouts.py; default 1: as built)")
    args = p.parse_args()
    if args.layouts < 1 or args.rounds < 1:
        p.error("--layouts and --rounds must be at least 1")
    programs = bm.csv_list(args.programs)
    ratios: dict[str, list[float]] = {v: [] for v in args.variants}
    width = max(len(v) for v in args.variants)
    for name in programs:
        per_layout: dict[str, list[float]] = {v: [] for v in args.variants}
        for k in range(args.layouts):
            wasm = bm.program_bytes(name, k)
            runs = {"plain": bm.PlainProgram(name, wasm)}
            runs.update((v, _variant(name, v, wasm, args.backend)) for v in args.variants)
            best = {key: math.inf for key in runs}
            for _ in range(args.rounds):
                for key, prog in runs.items():
                    best[key] = min(best[key], prog.run())
            line = f"{name}: plain {best['plain']:.3f} s"
            if args.layouts > 1:
                line = f"{name} layout {k}: plain {best['plain']:.3f} s"
            print(line, flush=True)
            for v in args.variants:
                per_layout[v].append(best[v] / best["plain"])
                print(f"  {v:<{width}}  {per_layout[v][-1]:.3f}x", flush=True)
        if args.layouts > 1:
            print(f"{name}: geomean over {args.layouts} layouts", flush=True)
        for v in args.variants:
            ratios[v].append(_geomean(per_layout[v]))
            if args.layouts > 1:
                print(f"  {v:<{width}}  {ratios[v][-1]:.3f}x", flush=True)
    print("geomean")
    for v in args.variants:
        print(f"  {v:<{width}}  {_geomean(ratios[v]):.3f}x")


def _geomean(values: list[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


if __name__ == "__main__":
    main()
