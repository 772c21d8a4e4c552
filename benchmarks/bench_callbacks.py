"""Cost of a Python callback probe: µs per firing, at every function entry.

    python benchmarks/bench_callbacks.py -o callbacks.json [options] [pyperf options]
    python benchmarks/report.py callbacks.json

For each program in ``benchmarks/programs/`` a `CallbackProbe(lambda loc: None)`
(counting its firings) is inserted at the entry of every defined function.
Benchmarks:

* ``PROGRAM/plain``: the original module (same as bench_monitors.py);
* ``PROGRAM/callback-entry``: the callbacks; metadata ``fires`` is the number
  of firings of one run (the callback counts them, and every run checks the
  count against the manager's entry count). µs per fire = (callback - plain)
  / fires.
* ``micro/plain``, ``micro/callback-entry``, ``micro/host-noop``: a loop
  calling a leaf function 1,000,000 times (``--micro-calls``), with the
  callback at the leaf's entry; ``host-noop`` runs the *same woven module*
  with the callback table slot filled by a bare ``wasmtime.Func`` doing
  nothing, i.e. the floor set by wasmtime-py's host-call trampoline without
  the probes dispatcher. Programs with few function entries (nbody, sieve,
  matmul, bytecode: < 300) cannot resolve µs per fire above noise; ``micro``
  and ``sha`` (3.1 M entries) can.

``--max-fires N`` (default 20,000,000) skips programs with more function
entries per run than N: ``recursive`` has 112 M, ~10 min per run at 5 µs
per fire. ``--max-fires 0`` removes the limit. ``--fast``: 1 process, 1
value, 1 warmup. Default pyperf options as in bench_monitors.py.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_monitors  # noqa: E402
from bench_monitors import (  # noqa: E402
    PlainProgram,
    WovenProgram,
    csv_list,
    make_runner,
    program_bytes,
    quick_mode,
    selected_programs,
    timed,
)

MAX_FIRES = 20_000_000
MICRO_CALLS = 1_000_000

MICRO_WAT = """
(module
  (func $leaf (param $x i32) (result i32)
    local.get $x
    i32.const 1
    i32.add)
  (func (export "run") (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      local.get $n
      i32.eqz
      br_if $done
      (loop $again
        local.get $acc
        call $leaf
        local.set $acc
        local.get $n
        i32.const 1
        i32.sub
        local.tee $n
        br_if $again))
    local.get $acc))
"""
MICRO_LEAF = 0
"""Function index of $leaf in MICRO_WAT."""


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-fires", type=int, default=MAX_FIRES,
                   help="skip programs with more function entries per run (0: no limit)")
    p.add_argument("--micro-calls", type=int, default=MICRO_CALLS,
                   help="leaf calls per run of the micro benchmark")
    p.add_argument("--no-micro", action="store_true", help="skip the micro benchmark")
    p.add_argument("--fires", default=None, help=argparse.SUPPRESS)


# -- callbacks -----------------------------------------------------------------------------
class Counter:
    """A callback that counts its firings (and does nothing else)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, loc: Any) -> None:
        self.n += 1


def entry_callbacks(module: Any, funcs: list[int] | None = None) -> tuple[Any, Counter]:
    from probes.probe import CallbackProbe
    from probes.probeset import ProbeSet

    ps = ProbeSet(module)
    counter = Counter()
    for f in (funcs if funcs is not None else [f.index for f in module.functions]):
        ps.insert_entry(f, CallbackProbe(counter))
    return ps, counter


class CallbackProgram(WovenProgram):
    """The program with a counting callback at every function entry."""

    def __init__(self, name: str, expected: int) -> None:
        from probes.ir import decode

        module = decode(program_bytes(name))
        ps, self.counter = entry_callbacks(module)
        self.expected = expected
        super().__init__(name, "callback-entry", module, ps)

    def run(self) -> float:
        self.counter.n = 0
        dt = super().run()
        if self.counter.n != self.expected:
            raise RuntimeError(f"{self.name}: callback fired {self.counter.n} times, "
                               f"expected {self.expected}")
        return dt


def count_entries(name: str) -> int:
    """Function entries in one run, from inline entry counters (cheap, exact)."""
    from probes.ir import decode
    from probes.probe import CountProbe
    from probes.probeset import ProbeSet

    module = decode(program_bytes(name))
    ps = ProbeSet(module)
    counts = [CountProbe() for _ in module.functions]
    for f, c in zip(module.functions, counts, strict=True):
        ps.insert_entry(f.index, c)
    WovenProgram(name, "entry-count", module, ps).run()
    return sum(c.count for c in counts)


# -- micro benchmark -----------------------------------------------------------------------
def micro_module() -> tuple[bytes, Any]:
    import wasmtime

    from probes.ir import decode

    data = bytes(wasmtime.wat2wasm(MICRO_WAT))
    return data, decode(data)


class MicroPlain:
    def __init__(self, calls: int) -> None:
        import wasmtime

        from probes.backends.wasm.runner import _engine

        self.calls = calls
        self.engine = _engine()
        self.module = wasmtime.Module(self.engine, micro_module()[0])

    def run(self) -> float:
        import wasmtime

        t0 = bench_monitors._clock()
        store = wasmtime.Store(self.engine)
        instance = wasmtime.Instance(store, self.module, [])
        run = instance.exports(store)["run"]
        assert isinstance(run, wasmtime.Func)
        result = run(store, self.calls)
        dt = bench_monitors._clock() - t0
        if result != self.calls:
            raise RuntimeError(f"micro: returned {result}, expected {self.calls}")
        return dt


class MicroCallback:
    """The leaf's entry probe, through the probes runtime."""

    def __init__(self, calls: int) -> None:
        from probes.backends.base import get_backend

        _, module = micro_module()
        self.calls = calls
        ps, self.counter = entry_callbacks(module, [MICRO_LEAF])
        self.exe = get_backend("wasm").compile(module, ps)

    def run(self) -> float:
        self.counter.n = 0
        t0 = bench_monitors._clock()
        inst = self.exe.instantiate()
        inst.call("run", self.calls)
        dt = bench_monitors._clock() - t0
        inst.close()
        if self.counter.n != self.calls:
            raise RuntimeError(f"micro: {self.counter.n} firings, expected {self.calls}")
        return dt


class MicroHostNoop:
    """The same woven module, its callback slot filled with a bare wasmtime.Func."""

    def __init__(self, calls: int) -> None:
        import wasmtime

        from probes.backends.wasm.runner import _engine, _wt
        from probes.backends.wasm.weaver import TABLE_EXPORT, weave

        _, module = micro_module()
        ps, _ = entry_callbacks(module, [MICRO_LEAF])
        woven = weave(module, ps)
        self.calls = calls
        self.engine = _engine()
        self.module = wasmtime.Module(self.engine, woven.wasm)
        self.slots = [wasmtime.FuncType([_wt(t) for t in sig.params], [])
                      for sig in woven.layout.slots]
        self.table_export = TABLE_EXPORT
        self.n = 0

    def run(self) -> float:
        import wasmtime

        def noop(*args: Any) -> None:
            self.n += 1

        self.n = 0
        t0 = bench_monitors._clock()
        store = wasmtime.Store(self.engine)
        instance = wasmtime.Instance(store, self.module, [])
        ex = instance.exports(store)
        table, run = ex[self.table_export], ex["run"]
        assert isinstance(table, wasmtime.Table) and isinstance(run, wasmtime.Func)
        for slot, ft in enumerate(self.slots):
            table.set(store, slot, wasmtime.Func(store, ft, noop))
        run(store, self.calls)
        dt = bench_monitors._clock() - t0
        if self.n != self.calls:
            raise RuntimeError(f"micro host-noop: {self.n} calls, expected {self.calls}")
        return dt


def main() -> None:
    runner = make_runner(__doc__.splitlines()[0], add_args,
                         forward=("max_fires", "micro_calls", "fires"))
    quick_mode(runner)
    args = runner.args
    if args.variants:
        raise SystemExit("bench_callbacks.py has no --variants (see bench_monitors.py)")
    programs = selected_programs(args)
    if args.worker:
        fires = {k: int(v) for k, _, v in (item.partition("=") for item in
                                             csv_list(args.fires or ""))}
    else:
        fires = {}
        for name in programs:
            fires[name] = count_entries(name)
            print(f"{name}: {fires[name]:,} function entries per run", flush=True)
        args.programs = ",".join(programs)
        args.fires = ",".join(f"{k}={v}" for k, v in fires.items())
        if args.no_micro:
            args.micro_calls = 0
    for name in programs:
        n = fires[name]
        if args.max_fires and n > args.max_fires:
            if not args.worker:
                print(f"{name}: skipped, {n:,} entries > --max-fires {args.max_fires:,}",
                      flush=True)
            continue
        runner.bench_time_func(f"{name}/plain", timed(partial(PlainProgram, name)),
                               metadata={"program": name, "variant": "plain"})
        runner.bench_time_func(f"{name}/callback-entry",
                               timed(partial(CallbackProgram, name, n)),
                               metadata={"program": name, "variant": "callback-entry",
                                         "fires": n})
    calls = args.micro_calls
    if calls:
        meta = {"program": "micro"}
        runner.bench_time_func("micro/plain", timed(partial(MicroPlain, calls)),
                               metadata={**meta, "variant": "plain"})
        runner.bench_time_func("micro/callback-entry", timed(partial(MicroCallback, calls)),
                               metadata={**meta, "variant": "callback-entry", "fires": calls})
        runner.bench_time_func("micro/host-noop", timed(partial(MicroHostNoop, calls)),
                               metadata={**meta, "variant": "host-noop", "fires": calls})


if __name__ == "__main__":
    main()
