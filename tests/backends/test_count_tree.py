"""Spanning-tree counter placement (backends/wasm/count_tree.py) gives exactly the
counts of one counter per block: after normal runs, traps, probe traps, budget
stops at loop headers and calls, and when counts are read from inside a probe
while frames are live. Each comparison runs the same program twice on one
backend, ``count_tree`` on and off."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from probes.api import run
from probes.backends.base import CompileOptions, get_backend
from probes.ir import Location, Module, Trap, decode
from probes.ir.loader import wat_to_wasm
from probes.monitors import create
from probes.probe import Action, CallbackProbe, CountProbe, FrameReads
from probes.probeset import ProbeSet

from .conftest import c_examples
from .test_generated import GENERATED

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROGRAMS = Path(__file__).resolve().parents[2] / "benchmarks" / "programs"


def _both(options: CompileOptions) -> list[CompileOptions]:
    return [replace(options, count_tree=True), replace(options, count_tree=False)]


def test_the_tree_counts_every_example_exactly(backend: Any,
                                              compile_options: CompileOptions) -> None:
    for program in c_examples(EXAMPLES):
        profiles = [run(program, ["icount", "branches", "loops"], backend=backend.name,
                        stdout=os.devnull, options=o).profile for o in _both(compile_options)]
        assert profiles[0].counts == profiles[1].counts, program.name
        assert profiles[0].branches == profiles[1].branches, program.name
        assert profiles[0].loops == profiles[1].loops, program.name
        assert sum(profiles[0].counts.values()) > 0


def test_the_tree_needs_about_half_the_counters() -> None:
    """On an interpreter loop and on call-heavy code, under two thirds of the
    counters remain (the point of the scheme)."""
    for name in ("bytecode", "recursive"):
        m = decode((PROGRAMS / f"{name}.wasm").read_bytes())
        sizes = []
        for options in _both(CompileOptions(cache=False)):
            ps = ProbeSet(m)
            create("icount").attach(m, ps)
            exe = get_backend("wasm").compile(m, ps, options)
            sizes.append(len(exe.woven.layout.block_counters))
        assert sizes[0] < 0.65 * sizes[1], (name, sizes)


class _StopAt(CallbackProbe):
    """A Python probe that traps at its n-th firing and reads every count while
    its frame is live (the readings are logged, to compare)."""

    def __init__(self, n: int, watch: list[CountProbe], log: list[Any]) -> None:
        super().__init__(self._fire, FrameReads())
        self.n, self.watch, self.log = n, watch, log

    def _fire(self, loc: Any) -> Action | None:
        self.log.append((loc.func, loc.pc, [p.count for p in self.watch]))
        self.n -= 1
        return Action.trap("stop") if self.n == 0 else None


def _program_run(m: Module, backend: Any, options: CompileOptions, plan: list[tuple[int, int]],
                 fuel: int, seeds: list[int]) -> tuple[list[Any], dict[Location, int]]:
    ps = ProbeSet(m)
    create("icount").attach(m, ps)
    locs = [Location(f.index, ins.pc) for f in m.functions for ins in f.instrs]
    log: list[Any] = []
    watched = [p for loc in locs for p in ps.at(loc) if isinstance(p, CountProbe)]
    for where, n in plan:
        ps.insert(locs[where % len(locs)], _StopAt(n, watched, log))
    exe = backend.compile(m, ps, replace(options, fuel=fuel))
    outcome: list[Any] = []
    try:
        inst = exe.instantiate()
    except Trap as t:
        return [("start", t.kind)], {}
    for e in m.exports:
        params = m.func_type(e.index).params if e.kind == "func" else None
        if params is None or any(p.name not in ("i32", "i64") for p in params):
            continue
        for seed in seeds:
            try:
                inst.call(e.name, *[(seed >> (5 * i)) & 0x7FFFFFFF for i in range(len(params))])
                outcome.append((e.name, "ok"))
            except Trap as t:
                outcome.append((e.name, t.kind, t.location))
    inst.close()
    counts = {loc: p.count for loc, probes in ps.items() for p in probes
              if isinstance(p, CountProbe)}
    return outcome + log, counts


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(m=GENERATED.map(decode),
       plan=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 40)), max_size=3),
       fuel=st.sampled_from([0, 0, 50, 400, 5000]),
       seeds=st.lists(st.integers(0, 2**62), min_size=1, max_size=3),
       native=st.booleans())
def test_tree_counts_equal_block_counts_on_random_modules(
        m: Module, plan: list[tuple[int, int]], fuel: int, seeds: list[int],
        native: bool) -> None:
    backend = get_backend("native" if native else "wasm")
    runs = [_program_run(m, backend, o, plan, fuel, seeds)
            for o in _both(CompileOptions(cache=False))]
    # Woven code of another shape has frames of another size: a run that exhausts the
    # machine stack recurses to another depth (each run's counts are still exact).
    assume(not any("call stack exhausted" in entry for run in runs for entry in run[0]))
    assert runs[0] == runs[1]


LOOP = """(module (func (export "spin") (param i32 i32) (result i32) (local i32)
  block
    loop
      local.get 0
      i32.eqz
      br_if 1
      local.get 0
      i32.const 1
      i32.sub
      local.set 0
      local.get 2
      i32.const 100
      local.get 0
      local.get 1
      i32.sub
      i32.div_u
      i32.add
      local.set 2
      local.get 0
      i32.const 2
      i32.rem_u
      if
        local.get 2
        i32.const 1
        i32.add
        local.set 2
      end
      br 0
    end
  end
  local.get 2))"""


def _loop_counts(backend: Any, options: CompileOptions, fuel: int, args: tuple[int, int]
                 ) -> tuple[Any, dict[Location, int], bool]:
    m = decode(wat_to_wasm(LOOP))
    ps = ProbeSet(m)
    create("icount").attach(m, ps)
    exe = backend.compile(m, ps, replace(options, fuel=fuel))
    inst = exe.instantiate()
    try:
        outcome: Any = inst.call("spin", *args)
    except Trap as t:
        outcome = (t.kind, t.location)
    inst.close()
    counts = {loc: p.count for loc, probes in ps.items() for p in probes
              if isinstance(p, CountProbe)}
    return outcome, counts, bool(exe.woven.layout.count_trees)


def test_a_stop_at_a_loop_header_or_inside_a_block_keeps_counts_exact(
        backend: Any, compile_options: CompileOptions) -> None:
    """The budget check at a loop header runs before the header's counter; a
    division by zero stops a block the tree derives. Both are counted like one
    counter per block would count them."""
    cases = [(0, (10, 99)), (0, (10, 3)), (57, (1000, 5000)), (200, (1000, 5000)),
             (130, (50, 20))]
    stopped = set()
    for fuel, args in cases:
        tree, blocks = (_loop_counts(backend, o, fuel, args) for o in _both(compile_options))
        assert tree[2] and not blocks[2]  # the tree was used
        assert tree[:2] == blocks[:2], (fuel, args)
        if isinstance(tree[0], tuple):
            kind, loc = tree[0]
            stopped.add(kind)
            if kind == "out of fuel":
                assert loc.pc == 5  # reported at the `loop`
    assert stopped == {"out of fuel", "integer divide by zero"}, stopped


def test_counts_read_by_a_probe_while_its_frame_is_live_are_exact(
        backend: Any, compile_options: CompileOptions) -> None:
    """A Python probe in the loop body reads every count: its block has been
    entered and not left, which the tree must not take for a lost activation."""
    m = decode(wat_to_wasm(LOOP))
    f = m.functions[0]
    readings = []
    for options in _both(compile_options):
        ps = ProbeSet(m)
        create("icount").attach(m, ps)
        counters = [p for ins in f.instrs for p in ps.at(Location(f.index, ins.pc))]
        log: list[Any] = []
        for name in ("i32.rem_u", "br"):
            at = next(ins.pc for ins in f.instrs if ins.op.name == name)
            ps.insert(Location(f.index, at), CallbackProbe(
                lambda loc, log=log, counters=counters: log.append(
                    (loc.pc, [p.count for p in counters]))))
        inst = backend.compile(m, ps, options).instantiate()
        log.append(inst.call("spin", 7, 100))
        readings.append(log)
    assert len(readings[0]) == 7 + 7 + 1
    assert readings[0] == readings[1]
