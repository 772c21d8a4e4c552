"""An exception raised by a host function or a probe callback stops the guest
like a trap: at the call (which began), with exact probe state, and
`probes.run` returns the profile up to there with a ``host`` trap whose cause
is the exception."""

from __future__ import annotations

from typing import Any

import pytest

import probes
from probes.backends.base import CompileOptions, WasiOptions
from probes.ir import Location, Trap
from probes.probe import CountProbe, Probe
from probes.probeset import ProbeSet

from ..conftest import assemble, module_from_wat

WAT = """
(module
  (import "env" "h" (func $h (param i32) (result i32)))
  (func $g (param $x i32) (result i32)
    (i32.add (call $h (local.get $x)) (i32.const 1)))
  (func (export "run") (param $n i32) (result i32) (local $i i32) (local $s i32)
    (loop $l
      (local.set $s (i32.add (local.get $s) (call $g (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $s)))
"""


def _h_failing_at(k: int) -> Any:
    def h(x: int) -> int:
        if x == k:
            raise ValueError(f"no value for {x}")
        return 10 * x
    return h


def _pcs(func: Any, name: str) -> list[int]:
    return [ins.pc for ins in func.instrs if ins.op.name == name]


@pytest.mark.parametrize("backend_name", ["wasm", "native"])
def test_run_returns_the_profile_up_to_a_failing_host_function(backend_name: str,
                                                               tmp_path: Any) -> None:
    wasm = assemble(WAT)
    m = module_from_wat(WAT)
    g, run = m.function(1), m.function(2)
    result = probes.run(wasm, ["icount", "coverage"], backend=backend_name, invoke="run",
                        args=[5], imports={"env": {"h": _h_failing_at(3)}},
                        options=CompileOptions(cache_dir=str(tmp_path)))
    trap = result.trap
    assert trap is not None and trap.kind == "host"
    assert isinstance(trap.__cause__, ValueError) and "no value for 3" in str(trap)
    assert "env.h" in str(trap)
    call_h = Location(g.index, _pcs(g, "call")[0])
    call_g = Location(run.index, _pcs(run, "call")[0])
    assert trap.location == call_h and trap.backtrace[:2] == (call_h, call_g)
    counts, cov = result.profile.counts, result.profile.coverage
    # Four calls of h began (x = 0..3); the add after it ran three times.
    assert counts[call_h] == 4 and counts[call_g] == 4
    after = Location(g.index, _pcs(g, "i32.add")[0])
    assert counts[after] == 3 and cov[after]
    assert all(cov[loc] == (n > 0) for loc, n in counts.items())
    assert result.profile.trap is not None and result.profile.trap["kind"] == "host"


@pytest.mark.parametrize("backend_name", ["wasm", "native"])
def test_a_failing_host_function_in_the_first_call_leaves_what_follows_uncovered(
        backend_name: str, tmp_path: Any) -> None:
    m = module_from_wat(WAT)
    g = m.function(1)
    result = probes.run(assemble(WAT), ["coverage"], backend=backend_name, invoke="run",
                        args=[5], imports={"env": {"h": _h_failing_at(0)}},
                        options=CompileOptions(cache_dir=str(tmp_path)))
    assert result.trap is not None and result.trap.kind == "host"
    cov = result.profile.coverage
    assert cov[Location(g.index, _pcs(g, "call")[0])]
    assert not cov[Location(g.index, _pcs(g, "i32.add")[0])]


def test_the_instance_re_raises_the_exception(backend: Any,
                                              compile_options: CompileOptions) -> None:
    """At the instance level the exception propagates, as wasmtime-py does; the
    trap it stands for is in `stats` and the counts are settled at the call."""
    m = module_from_wat(WAT)
    g = m.function(1)
    call_h = Location(g.index, _pcs(g, "call")[0])
    ps = ProbeSet(m)
    count = ps.insert(call_h, CountProbe())
    inst = backend.compile(m, ps, compile_options).instantiate(
        wasi=WasiOptions(), imports={"env": {"h": _h_failing_at(2)}})
    with pytest.raises(ValueError, match="no value for 2"):
        inst.call("run", 5)
    assert inst.stats.trap is not None and inst.stats.trap.location == call_h
    assert count.count == 3
    inst.close()


def test_a_failing_probe_callback_stops_before_its_instruction(backend: Any,
                                                               tmp_path: Any) -> None:
    m = module_from_wat(WAT)
    run = m.function(2)
    where = Location(run.index, _pcs(run, "call")[0])
    fired = []

    class Fails(Probe):
        def fire(self, loc: Any) -> Any:
            fired.append(loc)
            if len(fired) == 2:
                raise KeyError("second")
            return None

    ps = ProbeSet(m)
    ps.insert(where, Fails())
    result = probes.run(m, ["icount"], backend=backend.name, invoke="run", args=[5],
                        imports={"env": {"h": _h_failing_at(-1)}}, probes=ps,
                        options=CompileOptions(cache_dir=str(tmp_path)))
    trap = result.trap
    assert trap is not None and trap.kind == "host" and isinstance(trap.__cause__, KeyError)
    assert "probe callback" in str(trap) and trap.location == where
    assert result.profile.counts[where] == 1  # the second call did not begin


def test_a_generic_host_function_that_raises_is_a_host_trap(tmp_path: Any) -> None:
    """Imports with reference types go through wasmtime-py's generic path, which
    keeps no frames: still a host trap with the profile, without a location."""
    wat = """(module
      (import "env" "h" (func $h (param externref)))
      (func (export "run") (call $h (ref.null extern))))"""

    def h(x: Any) -> None:
        raise RuntimeError("generic")

    result = probes.run(assemble(wat), ["icount"], invoke="run", imports={"env": {"h": h}},
                        options=CompileOptions(cache_dir=str(tmp_path)))
    assert result.trap is not None and result.trap.kind == "host"
    assert isinstance(result.trap.__cause__, RuntimeError)
    assert sum(result.profile.counts.values()) >= 1


def test_a_trap_in_a_nested_call_is_still_that_trap(backend: Any, tmp_path: Any) -> None:
    """A host function that calls back into the instance and lets its Trap
    through: `run` reports the guest's trap, not a host error."""
    wat = """(module
      (import "env" "h" (func $h))
      (func (export "inner") unreachable)
      (func (export "run") (call $h)))"""
    m = module_from_wat(wat)
    inst_box: list[Any] = []

    def h() -> None:
        inst_box[0].call("inner")

    exe = backend.compile(m, ProbeSet(m), CompileOptions(cache_dir=str(tmp_path)))
    inst = exe.instantiate(wasi=WasiOptions(), imports={"env": {"h": h}})
    inst_box.append(inst)
    with pytest.raises(Trap) as info:
        inst.call("run")
    assert info.value.kind == "unreachable"
    inst.close()
