"""Exact counts, cross-checked against independent references.

* wasmtime's own fuel metering: it charges 1 per instruction except nop,
  drop, block, loop, end, else, return and unreachable, 1 per function call,
  1 per byte that memory.copy/memory.fill move and 1 per page memory.grow
  asks for; so fuel = sum(count x cost) + entries + bytes + pages, computed
  from our profile (bytes and pages come from callback probes reading the
  operand);
* hand-counted programs (loop.wat).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from probes.api import prepare, run
from probes.ir import Location
from probes.probe import CallbackProbe, FrameReads
from probes.probeset import ProbeSet

from .conftest import c_examples
from .plain import run_wasi

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FREE = {"nop", "drop", "block", "loop", "end", "else", "return", "unreachable"}


@pytest.mark.parametrize("program", c_examples(EXAMPLES), ids=lambda p: p.stem)
def test_icount_matches_wasmtime_fuel(program: Path, backend, compile_options) -> None:  # type: ignore[no-untyped-def]
    plain = run_wasi(program.read_bytes(), [program.name], fuel=True)
    module, _, _ = prepare(program)
    probes = ProbeSet(module)
    moved = [0]

    def add_length(loc) -> None:  # type: ignore[no-untyped-def]
        moved[0] += loc.operand(0) & 0xFFFFFFFF

    for f in module.functions:
        for ins in f.instrs:
            if ins.op.name in ("memory.copy", "memory.fill", "memory.grow"):
                probes.insert(Location(f.index, ins.pc),
                              CallbackProbe(add_length, FrameReads(operands=1)))
    result = run(module, ["icount", "calls"], backend=backend.name, stdout=os.devnull,
                 options=compile_options, probes=probes)
    ops = {Location(f.index, i.pc): i.op.name for f in module.functions for i in f.instrs}
    charged = sum(n for loc, n in result.profile.counts.items() if ops[loc] not in FREE)
    entries = sum(result.profile.entries.values())
    assert charged > 0 and entries > 0
    assert charged + entries + moved[0] == plain.fuel


def test_loop_counts_by_hand(backend, compile_options) -> None:  # type: ignore[no-untyped-def]
    n = 10
    result = run(EXAMPLES / "loop.wat", ["icount", "loops", "branches"],
                 backend=backend.name, invoke="run", args=(n,), options=compile_options)
    assert result.value == 145
    m = result.module
    f = m.function(m.resolve_func("run"))
    counts = result.profile.counts
    by_name: dict[str, list[int]] = {}
    for ins in f.instrs:
        by_name.setdefault(ins.op.name, []).append(counts.get(Location(f.index, ins.pc), 0))
    # Prologue: local.get n; i32.const 0; i32.le_s; if -> once each; `return` never runs.
    assert by_name["if"] == [1]
    assert by_name["return"] == [0]
    # The loop instruction runs once, its body n times; br_if taken n-1 times.
    assert by_name["loop"] == [1]
    assert by_name["br_if"] == [n]
    assert by_name["global.set"] == [n]
    (loop_loc, stats), = result.profile.loops.items()
    assert stats == {"entries": 1, "iterations": n}
    br_if = next(Location(f.index, i.pc) for i in f.instrs if i.op.name == "br_if")
    assert result.profile.branches[br_if] == {0: 1, 1: n - 1}
    # By hand: 4 prologue instructions (the then-arm and the if's `end` are skipped),
    # `loop` once, 20 per iteration, then the loop's end, local.get and the final end.
    total = sum(counts.get(Location(f.index, i.pc), 0) for i in f.instrs)
    assert total == 4 + 1 + 20 * n + 3
    assert result.profile.function_counts()[f.index] == total


def test_trap_corrects_the_block_count(backend, compile_options) -> None:  # type: ignore[no-untyped-def]
    result = run(EXAMPLES / "trap.wat", ["icount", "coverage"], backend=backend.name,
                 invoke="div", args=(1, 0), options=compile_options)
    assert result.trap is not None and result.trap.kind == "integer divide by zero"
    m = result.module
    f = m.function(m.resolve_func("div"))
    names = [i.op.name for i in f.instrs]
    assert names == ["local.get", "local.get", "i32.div_s", "end"]
    counts = [result.profile.counts.get(Location(f.index, i.pc), 0) for i in f.instrs]
    assert counts == [1, 1, 1, 0]  # the division began; the end never ran
    covered = [result.profile.coverage[Location(f.index, i.pc)] for i in f.instrs]
    assert covered == [True, True, True, False]
    assert result.trap.location == Location(f.index, f.instrs[2].pc)
    assert result.profile.trap is not None and result.profile.trap["pc"] == f.instrs[2].pc


@pytest.mark.parametrize("monitors", [[], ["icount", "coverage"]])
@pytest.mark.parametrize("interruptible", [False, True])
def test_stack_exhaustion_stops_before_the_callee(backend, compile_options, monitors,  # type: ignore[no-untyped-def]
                                                  interruptible) -> None:
    """The innermost activation never entered: the trap names its first
    instruction, and nothing after its call in the caller ran (wasmtime gives
    no offset for that frame)."""
    from dataclasses import replace

    opts = replace(compile_options, interruptible=interruptible)
    result = run(EXAMPLES / "trap.wat", monitors, backend=backend.name, invoke="deep",
                 args=(1_000_000,), options=opts)
    assert result.trap is not None and result.trap.kind == "call stack exhausted"
    m = result.module
    f = m.function(m.resolve_func("deep"))
    assert result.trap.location == Location(f.index, f.instrs[0].pc)
    assert result.trap.backtrace[1].func == f.index
    if monitors:
        after_call = [i for k, i in enumerate(f.instrs) if k and f.instrs[k - 1].op.name == "call"]
        ran = {i.op.name: result.profile.coverage[Location(f.index, i.pc)] for i in after_call}
        assert ran == {"i32.add": False}
        entries = result.profile.counts[Location(f.index, f.instrs[0].pc)]
        call = next(i for i in f.instrs if i.op.name == "call")
        assert result.profile.counts[Location(f.index, call.pc)] == entries  # the last failed


@pytest.mark.parametrize("interruptible", [False, True])
def test_a_trap_in_an_uninstrumented_function_names_its_instruction(  # type: ignore[no-untyped-def]
        backend, compile_options, interruptible) -> None:
    from dataclasses import replace

    result = run(EXAMPLES / "trap.wat", [], backend=backend.name, invoke="boom",
                 options=replace(compile_options, interruptible=interruptible))
    m = result.module
    f = m.function(m.resolve_func("boom"))
    assert result.trap is not None and result.trap.kind == "unreachable"
    assert result.trap.location == Location(f.index, f.instrs[0].pc)
