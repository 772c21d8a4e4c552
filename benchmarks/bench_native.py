"""The native backend against plain wasmtime: run time per monitor, compile times.

    python benchmarks/bench_native.py -o native.json [--programs nbody,sha] [--quick]
    python benchmarks/bench_native.py --summary native.json

Benchmarks (pyperf, one run per value):

* ``run/<program>/wasmtime``: the original module on wasmtime (the wasm
  backend's Engine configuration), instantiate + ``_start``;
* ``run/<program>/native-<variant>``: the native backend, ``none`` (no probes)
  and one variant per monitor (coverage, icount, hotness, branches, calls,
  loops, memory, opcodes), instantiate + ``_start``;
* ``compile/<program>/native-cold``: weave + lower + LLVM O2 + link, no cache;
* ``compile/<program>/native-cached``: the same with the object in the cache
  (weave + link only);
* ``compile/<program>/wasmtime``: wasmtime's own compile, for reference.

``--summary FILE`` prints native / wasmtime run-time ratios per program and
variant (the target is ≤ 0.9 uninstrumented) and the compile times.
Defaults: ``--processes 1 --values 3 --warmups 1 --loops 1``; stdout goes to
/dev/null; the timer is the guest thread's CPU time (``--clock wall`` for
wall time).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyperf  # noqa: E402
from layouts import program_bytes  # noqa: E402

PROGRAMS = ("nbody", "sieve", "sha", "matmul", "bytecode", "recursive")
MONITORS = ("coverage", "icount", "hotness", "branches", "calls", "loops", "memory", "opcodes")
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.thread_time, "wall": time.perf_counter}


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _add_args(cmd: Any, args: Any) -> None:
    for name in ("programs", "variants", "clock"):
        value = getattr(args, name)
        if value:
            cmd.extend([f"--{name}", value])
    if args.quick:
        cmd.append("--quick")


def _runner() -> pyperf.Runner:
    runner = pyperf.Runner(add_cmdline_args=_add_args, processes=1, values=3, warmups=1,
                           loops=1)
    p = runner.argparser
    p.add_argument("--programs", default="", help="comma-separated programs (default: all)")
    p.add_argument("--variants", default="", help="native variants (default: none + monitors)")
    p.add_argument("--clock", default="cpu", choices=sorted(CLOCKS))
    p.add_argument("--quick", action="store_true", help="1 value, variants none, icount, coverage")
    p.add_argument("--summary", default="", help="print ratios from a result file and exit")
    return runner


def _wasmtime_runner(wasm: bytes) -> tuple[Callable[[], None], float]:
    import wasmtime

    from probes.backends.wasm.runner import _engine

    engine = _engine()
    t = time.perf_counter()
    module = wasmtime.Module(engine, wasm)
    compile_s = time.perf_counter() - t

    def run() -> None:
        store = wasmtime.Store(engine)
        cfg = wasmtime.WasiConfig()
        cfg.argv = ["program"]
        cfg.stdout_file = "/dev/null"
        store.set_wasi(cfg)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        inst = linker.instantiate(store, module)
        try:
            inst.exports(store)["_start"](store)
        except wasmtime.ExitTrap:
            pass
    return run, compile_s


def _native_exe(program: str, variant: str, cache_dir: str, cache: bool,
                layout: int = 0) -> Any:
    """The program compiled by the native backend (``layout``: layouts.py)."""
    from probes.backends.base import CompileOptions
    from probes.backends.native import NativeBackend
    from probes.ir import decode
    from probes.monitors import create
    from probes.probeset import ProbeSet

    m = decode(program_bytes(program, layout))
    ps = ProbeSet(m)
    if variant != "none":
        create(variant).attach(m, ps)
    return NativeBackend().compile(m, ps, CompileOptions(cache=cache, cache_dir=cache_dir))


def _native_run(exe: Any) -> None:
    from probes.backends.base import WasiOptions

    inst = exe.instantiate(wasi=WasiOptions(argv=["program"], stdout="/dev/null"))
    try:
        inst.run_wasi()
    finally:
        inst.close()


class _Lazy:
    """A value computed on first use."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._value: Any = None

    def get(self) -> Any:
        if self._value is None:
            self._value = self._make()
        return self._value


def _timed(clock: Callable[[], float], fn: Callable[[], Any],
           setup: Callable[[], Any] | None = None) -> Callable[[int], float]:
    def bench(loops: int) -> float:
        if setup is not None:
            setup()  # outside the timed region
        total = 0.0
        for _ in range(loops):
            t = clock()
            fn()
            total += clock() - t
        return total
    return bench


def summary(path: str) -> None:
    suite = pyperf.BenchmarkSuite.load(path)
    values = {b.get_name(): min(b.get_values()) for b in suite.get_benchmarks()}
    programs = sorted({n.split("/")[1] for n in values})
    print(f"{'program':<11}{'variant':<16}{'seconds':>9}{'/ wasmtime':>12}")
    for prog in programs:
        base = values.get(f"run/{prog}/wasmtime")
        for name in sorted(n for n in values if n.startswith(f"run/{prog}/")):
            ratio = f"{values[name] / base:.2f}x" if base else "-"
            print(f"{prog:<11}{name.split('/')[2]:<16}{values[name]:>9.3f}{ratio:>12}")
        for kind in ("native-cold", "native-cached", "wasmtime"):
            v = values.get(f"compile/{prog}/{kind}")
            if v is not None:
                print(f"{prog:<11}{'compile ' + kind:<16}{v:>9.3f}")


def main() -> None:
    if "--summary" in sys.argv:
        summary(sys.argv[sys.argv.index("--summary") + 1])
        return
    runner = _runner()
    args = runner.parse_args()
    if args.quick:
        args.values = 1
    clock = CLOCKS[args.clock]
    programs = _csv(args.programs) or list(PROGRAMS)
    variants = _csv(args.variants) or (["none", "icount", "coverage"] if args.quick
                                       else ["none", *MONITORS])
    cache_dir = tempfile.mkdtemp(prefix="probes-bench-native-")
    for prog in programs:
        wasm = program_bytes(prog)
        run, _ = _wasmtime_runner(wasm)
        runner.bench_time_func(f"run/{prog}/wasmtime", _timed(clock, run))
        for variant in variants:
            # Compiled lazily: a pyperf worker runs one benchmark, so compiling
            # every variant up front made workers outlive pyperf's exit timeout.
            exe = _Lazy(lambda prog=prog, variant=variant:
                        _native_exe(prog, variant, cache_dir, cache=True))
            runner.bench_time_func(f"run/{prog}/native-{variant}",
                                   _timed(clock, lambda exe=exe: _native_run(exe.get()),
                                          setup=exe.get))
        runner.bench_time_func(
            f"compile/{prog}/native-cold",
            _timed(time.perf_counter, lambda prog=prog: _native_exe(prog, "none", cache_dir, False)))
        runner.bench_time_func(
            f"compile/{prog}/native-cached",
            _timed(time.perf_counter, lambda prog=prog: _native_exe(prog, "none", cache_dir, True)))
        runner.bench_time_func(
            f"compile/{prog}/wasmtime",
            _timed(time.perf_counter, lambda wasm=wasm: _wasmtime_runner(wasm)))


if __name__ == "__main__":
    main()
