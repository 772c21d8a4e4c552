"""Monitor overhead on wasmtime: run time of `_start` per program and variant.

    python benchmarks/bench_monitors.py -o monitors.json [options] [pyperf options]
    python benchmarks/report.py monitors.json

Programs: ``benchmarks/programs/*.wasm`` except ``large`` (nbody, sieve, sha,
matmul, bytecode, recursive; ~1 s each uninstrumented). Variants:

* ``plain``: the original module on wasmtime, with the same Engine
  configuration as the wasm backend (``backends/wasm/runner.py: _engine``);
* ``none``: woven with an empty ProbeSet (appended state memory and table,
  no probe code): the cost of weaving itself;
* one variant per monitor, alone, with its default options: coverage, icount,
  hotness, branches, calls, loops, memory, opcodes.

The timed region is instantiate + run ``_start`` (stdout to /dev/null); the
module is woven and compiled by wasmtime once per variant, outside the timed
region, and the instance is closed (probe state settled) after the timer
stops. One call of the timed function is one run (pyperf ``--loops 1``).

Options added to pyperf's:

``--programs nbody,sha``    only these programs (default: all six)
``--variants plain,icount`` only these variants (``plain`` is always added,
                            every ratio needs it)
``--fast``                  a quick look: 1 process, 1 value, 1 warmup, and the
                            core variants only (plain, none, coverage, icount,
                            hotness, branches, calls) unless --variants is given
``--clock cpu|wall``        what is timed (default ``cpu``: CPU time of the
                            thread running the guest, ``time.thread_time``, which
                            leaves out the time the process waits for a core on a
                            busy machine; ``wall``: ``time.perf_counter``)
``--layouts K``             measure every benchmark in K code layouts
                            (layouts.py): each builds the program K times,
                            shifted, and its runs take the layouts in turn, so
                            with ``--values K`` (a multiple of K) each layout
                            gives the same number of values; report with
                            ``report.py --stat mean`` (default 1: as built)

Defaults (override with the usual pyperf options): ``--processes 1 --values 3
--warmups 1 --loops 1`` — 4 runs of ~1-3 s per benchmark, so the full suite
(6 programs x 10 variants) takes ~15 minutes. On a shared machine, run it
several times with ``--append FILE`` (each pass adds values to every
benchmark, spread over time) and report the minimum.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # The source checkout first: an installed copy of probes may be older.
    sys.path.insert(0, str(ROOT))

import pyperf  # noqa: E402
from layouts import PROGRAMS_DIR, program_bytes  # noqa: E402

PROGRAMS = ("nbody", "sieve", "sha", "matmul", "bytecode", "recursive")
MONITORS = ("coverage", "icount", "hotness", "branches", "calls", "loops", "memory", "opcodes")
VARIANTS = ("plain", "none") + MONITORS
CORE_VARIANTS = ("plain", "none", "coverage", "icount", "hotness", "branches", "calls")

DEFAULTS = {"processes": 1, "values": 3, "warmups": 1, "loops": 1}
"""pyperf defaults for second-long runs: few values, no loop calibration."""


# -- command line --------------------------------------------------------------------------
def csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.thread_time,
                                          "wall": time.perf_counter}
_clock: Callable[[], float] = time.thread_time
"""The timer of every run (set from --clock)."""


def make_runner(description: str, extra_args: Callable[[argparse.ArgumentParser], None]
                | None = None, forward: tuple[str, ...] = ()) -> pyperf.Runner:
    """A pyperf Runner with our defaults and options; ``forward`` names the options
    (dest) re-passed to worker processes so they register the same benchmarks."""

    def add_cmdline_args(cmd: list[str], args: argparse.Namespace) -> None:
        for dest in ("programs", "variants", "clock", *forward):
            value = getattr(args, dest, None)
            if value is not None and value != "":
                cmd.append(f"--{dest.replace('_', '-')}={value}")

    runner = pyperf.Runner(add_cmdline_args=add_cmdline_args, **DEFAULTS)
    runner.metadata["description"] = description
    p = runner.argparser
    p.add_argument("--programs", default=None,
                   help=f"comma-separated programs (default: {','.join(PROGRAMS)})")
    p.add_argument("--variants", default=None, help="comma-separated variants")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                   help="cpu: thread CPU time of the guest run (default); wall: perf_counter")
    if extra_args is not None:
        extra_args(p)
    return runner


def quick_mode(runner: pyperf.Runner) -> bool:
    """Apply ``--fast`` in the manager process (pyperf's own --fast would *raise*
    the number of processes to 3); workers get explicit --values/--warmups."""
    global _clock
    args = runner.parse_args()
    _clock = CLOCKS[args.clock]
    runner.metadata["clock"] = args.clock
    if args.fast and not args.worker:
        args.processes = 1
        args.values = 1
        args.warmups = 1
        return True
    return False


def selected_programs(args: argparse.Namespace) -> list[str]:
    if not args.programs:
        return list(PROGRAMS)
    names = csv_list(args.programs)
    for n in names:
        if not (PROGRAMS_DIR / f"{n}.wasm").exists():
            raise SystemExit(f"no benchmark program {n!r} (have: {', '.join(PROGRAMS)})")
    return names


# -- running -------------------------------------------------------------------------------


def wasi_options(name: str) -> Any:
    from probes.backends.base import WasiOptions
    return WasiOptions(argv=[f"{name}.wasm"], stdout="/dev/null")


class PlainProgram:
    """The original module, compiled once with the backend's Engine configuration."""

    def __init__(self, name: str, data: bytes | None = None) -> None:
        import wasmtime

        from probes.backends.wasm.runner import _engine

        self.name = name
        self.engine = _engine()
        self.module = wasmtime.Module(self.engine, data if data is not None
                                      else program_bytes(name))

    def run(self) -> float:
        """Seconds for one instantiate + ``_start``."""
        import wasmtime

        t0 = _clock()
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasi_options(self.name).to_wasmtime())
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()
        instance = linker.instantiate(store, self.module)
        code = 0
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            start(store)
        except wasmtime.ExitTrap as e:
            code = e.code
        dt = _clock() - t0
        check_exit(self.name, "plain", code)
        return dt


class WovenProgram:
    """A module woven with a ProbeSet and compiled by a backend (wasm unless
    told), once."""

    def __init__(self, name: str, variant: str, module: Any, probeset: Any,
                 options: Any | None = None, backend: str = "wasm") -> None:
        from probes.backends.base import CompileOptions, get_backend

        self.name = name
        self.variant = variant
        self.exe = get_backend(backend).compile(module, probeset, options or CompileOptions())
        self.wasi = wasi_options(name)

    def run(self) -> float:
        t0 = _clock()
        inst = self.exe.instantiate(wasi=self.wasi)
        code = inst.run_wasi()
        dt = _clock() - t0
        inst.close()  # settle the probes: not part of the program's run time
        check_exit(self.name, self.variant, code)
        return dt


def check_exit(name: str, variant: str, code: int) -> None:
    if code != 0:
        raise RuntimeError(f"{name} ({variant}) exited with status {code}")


def monitor_variant(name: str, variant: str, layout: int = 0) -> WovenProgram:
    """``none`` (empty ProbeSet) or one monitor attached alone."""
    from probes.backends.base import CompileOptions
    from probes.ir import decode
    from probes.monitors import create
    from probes.probeset import ProbeSet

    module = decode(program_bytes(name, layout))
    ps = ProbeSet(module)
    opts = CompileOptions()
    if variant != "none":
        mon = create(variant)
        mon.attach(module, ps)
        extra = mon.compile_options()
        if extra:
            opts = replace(opts, **extra)
    return WovenProgram(name, variant, module, ps, opts)


def timed(make: Callable[..., Any], layouts: int = 1) -> Callable[[int], float]:
    """A pyperf time function: builds the program on first use (untimed), then
    sums the run times of ``loops`` runs. With ``layouts`` > 1, ``make(k)``
    builds layout k, and successive calls take the layouts in turn."""
    progs: list[Any] = []
    calls = [0]

    def time_func(loops: int) -> float:
        if not progs:
            progs.extend([make()] if layouts == 1 else [make(k) for k in range(layouts)])
        prog = progs[calls[0] % len(progs)]
        calls[0] += 1
        return sum(prog.run() for _ in range(loops))

    return time_func


def main() -> None:
    def layouts_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--layouts", type=int, default=1,
                       help="code layouts per benchmark, taken in turn (default 1)")

    runner = make_runner(__doc__.splitlines()[0], layouts_arg, forward=("layouts",))
    fast = quick_mode(runner)
    args = runner.args
    programs = selected_programs(args)
    if args.variants:
        variants = csv_list(args.variants)
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise SystemExit(f"unknown variant(s) {', '.join(unknown)} "
                             f"(choose from {', '.join(VARIANTS)})")
        if "plain" not in variants:
            variants.insert(0, "plain")
    else:
        variants = list(CORE_VARIANTS if fast else VARIANTS)
    if not args.worker:
        # Workers must register exactly the same benchmarks in the same order.
        args.programs = ",".join(programs)
        args.variants = ",".join(variants)
    if args.layouts < 1:
        raise SystemExit("--layouts must be at least 1")
    for name in programs:
        for variant in variants:
            if variant == "plain":
                def make(k: int = 0, name: str = name) -> PlainProgram:
                    return PlainProgram(name, program_bytes(name, k))
            else:
                make = partial(monitor_variant, name, variant)
            runner.bench_time_func(f"{name}/{variant}", timed(make, args.layouts),
                                   metadata={"program": name, "variant": variant,
                                             "layouts": args.layouts})


if __name__ == "__main__":
    main()
