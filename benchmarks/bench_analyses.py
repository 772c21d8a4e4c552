"""Analyses on a large module: static call graph, every CFG, every dominator tree.

    python benchmarks/bench_analyses.py [-o analyses.json] [--fast] [pyperf options]

Program: ``benchmarks/programs/large.wasm`` (2246 functions, 1.7 MB of code,
~825,000 instructions; a table of 2204 functions behind 617 ``call_indirect``
sites, so the static call graph has ~980,000 edges). Benchmarks:

* ``decode``: decode the module and every function body;
* ``callgraph``: `probes.analyses.callgraph` (direct calls and the
  ``call_indirect`` candidates, SCCs marked), bodies already decoded;
* ``cfgs+dominators``: `probes.analyses.cfg` and `dominators` of every
  defined function, bodies already decoded;
* ``loops+post-dominators``: `loops` and `post_dominators` of every function
  (on CFGs built beforehand);
* ``total``: decode + callgraph + cfgs+dominators from the bytes, the figure
  of merit, printed after the run.

Defaults: ``--processes 1 --values 3 --warmups 1 --loops 1`` (each value is
seconds long); ``--fast``: one value, no warmup.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # The source checkout first: an installed copy of probes may be older.
    sys.path.insert(0, str(ROOT))

import pyperf  # noqa: E402

from probes import analyses, ir  # noqa: E402

LARGE = ROOT / "benchmarks" / "programs" / "large.wasm"


def decode_all(data: bytes) -> ir.Module:
    m = ir.decode(data)
    for f in m.functions:
        f.instrs  # noqa: B018  (decode the body)
    return m


def cfgs_and_dominators(m: ir.Module) -> int:
    n = 0
    for f in m.functions:
        g = analyses.cfg(m, f.index)
        n += len(analyses.dominators(g))
    return n


def loops_and_post_dominators(graphs: list) -> int:  # type: ignore[type-arg]
    n = 0
    for g in graphs:
        n += len(analyses.loops(g)) + len(analyses.post_dominators(g))
    return n


def total(data: bytes) -> None:
    m = decode_all(data)
    analyses.callgraph(m)
    cfgs_and_dominators(m)


def once() -> None:
    """Time each step once and print (what --fast reports, without pyperf)."""
    data = LARGE.read_bytes()
    t0 = time.perf_counter()
    m = decode_all(data)
    t1 = time.perf_counter()
    g = analyses.callgraph(m)
    t2 = time.perf_counter()
    cfgs_and_dominators(m)
    t3 = time.perf_counter()
    print(f"{LARGE.name}: {len(m.functions)} functions, {m.code_size} bytes of code")
    print(f"  decode bodies      {t1 - t0:6.2f} s")
    print(f"  static call graph  {t2 - t1:6.2f} s  ({g.number_of_nodes()} nodes, "
          f"{g.number_of_edges()} edges)")
    print(f"  CFGs + dominators  {t3 - t2:6.2f} s")
    print(f"  total              {t3 - t0:6.2f} s")


def main() -> None:
    if "--once" in sys.argv:
        once()
        return
    runner = pyperf.Runner(processes=1, values=3, warmups=1, loops=1)
    runner.metadata["description"] = __doc__.splitlines()[0]
    args = runner.parse_args()
    if args.fast and not args.worker:
        args.processes, args.values, args.warmups = 1, 1, 0
    data = LARGE.read_bytes()
    m = decode_all(data)
    graphs = [analyses.cfg(m, f.index) for f in m.functions]
    runner.metadata["code_bytes"] = str(m.code_size)
    runner.metadata["functions"] = str(len(m.functions))
    runner.bench_func("large.wasm: decode", decode_all, data)
    runner.bench_func("large.wasm: callgraph", analyses.callgraph, m)
    runner.bench_func("large.wasm: cfgs+dominators", cfgs_and_dominators, m)
    runner.bench_func("large.wasm: loops+post-dominators", loops_and_post_dominators, graphs)
    bench = runner.bench_func("large.wasm: total", total, data)
    if bench is not None and not args.worker:
        print(f"\nstatic call graph + all CFGs + dominators of {LARGE.name} "
              f"({len(m.functions)} functions, {m.code_size / 1e6:.2f} MB of code), "
              f"from the bytes: {bench.mean():.2f} s")


if __name__ == "__main__":
    if "--help" in sys.argv or "-h" in sys.argv:
        print(__doc__)
    main()
