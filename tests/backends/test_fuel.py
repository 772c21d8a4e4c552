"""Instruction budgets (`CompileOptions.fuel`, the timeout monitor): metered by
the woven code on wasm and by the lowering on native, both charging wasmtime's
fuel cost of the program's own instructions, so a budget stops both backends
at the same instruction with the same profile, whatever else is attached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from probes.api import run
from probes.backends.base import BACKENDS, CompileOptions, WasiOptions, get_backend
from probes.ir import Location, ProbesError, Trap, decode, load
from probes.monitors import create
from probes.probe import Action, CallbackProbe
from probes.probeset import ProbeSet

from ..conftest import assemble
from .plain import run_wasi

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _available() -> list[str]:
    names = []
    for name in BACKENDS:
        try:
            get_backend(name)
            names.append(name)
        except ProbesError:
            pass
    return names


def _comparable(profile: Any) -> Any:
    return (profile.trap and (profile.trap["kind"], profile.trap["func"], profile.trap["pc"]),
            profile.counts)


def _inconsistent(profile: Any) -> list[Any]:
    """Instructions whose coverage disagrees with their (exact) count."""
    return [loc for loc, hit in profile.coverage.items()
            if hit != (profile.counts.get(loc, 0) > 0)]


@pytest.mark.parametrize("program", ["fib.wasm", "interp.wasm"])
def test_fuel_spent_is_the_plain_modules(program: str, backend: Any,
                                         compile_options: CompileOptions) -> None:
    """Probes cost nothing: an instrumented run burns what plain wasmtime burns."""
    path = EXAMPLES / program
    burnt = run_wasi(path.read_bytes(), [program], fuel=True).fuel
    assert burnt
    m = load(path)
    ps = ProbeSet(m)
    for name in ("icount", "coverage", "branches", "calls"):
        create(name).attach(m, ps)
    budget = 10**12
    exe = backend.compile(m, ps, CompileOptions(cache_dir=compile_options.cache_dir,
                                                fuel=budget))
    inst = exe.instantiate(wasi=WasiOptions(argv=[program], stdout="/dev/null"))
    assert inst.run_wasi() == 0
    assert budget - inst.fuel == burnt


@pytest.mark.parametrize("budget", [1, 7, 150, 2_000, 20_000])
@pytest.mark.parametrize("program", ["fib.wasm", "interp.wasm"])
def test_a_budget_stops_both_backends_at_the_same_place(program: str, budget: int) -> None:
    backends = _available()
    if len(backends) < 2:
        pytest.skip("needs both backends")
    path = EXAMPLES / program
    monitors = ["icount", "coverage", "branches", f"timeout:n={budget}"]
    results = {b: run(path, monitors, backend=b, argv=[program], stdout="/dev/null")
               for b in backends}
    wasm = results["wasm"]
    assert wasm.trap is not None and wasm.trap.kind == "out of fuel"
    assert all(n >= 0 for n in wasm.profile.counts.values())
    assert _inconsistent(wasm.profile) == []
    for other in backends[1:]:
        assert _comparable(results[other].profile) == _comparable(wasm.profile), other
        assert results[other].profile.coverage == wasm.profile.coverage, other


@pytest.mark.parametrize("budget", [150, 151, 152, 153])
def test_coverage_agrees_with_counts_when_the_budget_runs_out_at_a_call(backend: Any,
                                                                         budget: int) -> None:
    """fib.wasm's budget of 150 runs out just before a call: the call has begun
    (counted, and its block's coverage flag set) on every backend."""
    r = run(EXAMPLES / "fib.wasm", ["icount", "coverage", f"timeout:n={budget}"],
            backend=backend.name, argv=["fib"], stdout="/dev/null")
    assert r.trap is not None and r.trap.kind == "out of fuel"
    assert _inconsistent(r.profile) == []


def test_the_budget_does_not_depend_on_the_monitors(backend: Any) -> None:
    """Adding monitors does not move where a budget runs out (probe code is free)."""
    path = EXAMPLES / "fib.wasm"
    alone = run(path, ["timeout:n=30000"], backend=backend.name, argv=["fib"],
                stdout="/dev/null")
    many = run(path, ["icount", "coverage", "calls", "timeout:n=30000"],
               backend=backend.name, argv=["fib"], stdout="/dev/null")
    assert isinstance(alone.trap, Trap) and isinstance(many.trap, Trap)
    assert alone.trap.location == many.trap.location


LOOP = """(module (memory 1)
  (func (export "f") (result i32) (local i32)
    loop
      local.get 0
      i32.const 1
      i32.add
      local.tee 0
      i32.const 1000000
      i32.lt_u
      br_if 0
    end
    local.get 0)
  (func (export "load") (param i32) (result i32)
    i32.const 1
    i32.const 2
    i32.add
    drop
    local.get 0
    i32.load))"""


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "armed"])
@pytest.mark.parametrize("stop", ["probe-first", "probe-third", "memory"])
def test_a_stop_mid_block_leaves_the_same_budget_on_both_backends(stop: str,
                                                                   dynamic: bool) -> None:
    """The first call stops mid-block (a probe's Action.trap, or an out-of-bounds load
    after a few instructions); the instance's next call then runs out of its budget
    after the same number of iterations on every backend: code woven around the
    program's (probe calls, armed sites' flag tests) charges nothing on either."""
    m = decode(assemble(LOOP))
    add = next(i for i in m.function(0).instrs if i.op.name == "i32.add")
    stop_at = {"probe-first": 1, "probe-third": 3}.get(stop)
    outcomes = []
    for name in _available():
        fired = [0]

        def fire(loc: Any, fired: list[int] = fired) -> Any:
            fired[0] += 1
            return Action.trap("stop") if fired[0] == stop_at else None

        ps = ProbeSet(m)
        ps.insert(Location(0, add.pc), CallbackProbe(fire))
        options = CompileOptions(cache=False, fuel=100, dynamic=dynamic)
        inst = get_backend(name).compile(m, ps, options).instantiate()
        with pytest.raises(Trap) as first:
            if stop == "memory":
                inst.call("load", 70_000)
            else:
                inst.call("f")
        assert first.value.kind == ("out of bounds memory access" if stop == "memory"
                                    else "probe")
        fired[0] = 10  # no more probe stops
        with pytest.raises(Trap) as second:
            inst.call("f")
        assert second.value.kind == "out of fuel"
        outcomes.append(fired[0])
    assert len(set(outcomes)) == 1, dict(zip(_available(), outcomes, strict=True))


EARLY_RETURN = """(module (func (export "f") (param i32) (result i32)
  local.get 0
  if
    i32.const 1
    return
  end
  i32.const 2
  i32.const 3
  i32.add
  i32.const 4
  i32.add))"""


@pytest.mark.parametrize("arg", [0, 1], ids=["falls-through", "returns"])
def test_an_exit_probe_costs_no_fuel_and_its_stop_leaves_the_same_budget(arg: int) -> None:
    """An exit probe wraps the body in a block its `return`s branch to: the budget
    spent stays the program's (a `return` costs what it did), and an exit probe that
    stops the run leaves the same budget on every backend."""
    m = decode(assemble(EARLY_RETURN))
    left = {}
    for name in _available():
        for exit_probe in (None, CallbackProbe(lambda loc: None),
                           CallbackProbe(lambda loc: Action.trap("stop"))):
            ps = ProbeSet(m)
            if exit_probe is not None:
                ps.insert_exit(0, exit_probe)
            inst = get_backend(name).compile(
                m, ps, CompileOptions(cache=False, fuel=1000)).instantiate()
            try:
                inst.call("f", arg)
            except Trap as t:
                assert t.kind == "probe"
            left.setdefault(name, []).append(inst.fuel)
    assert len({tuple(v) for v in left.values()}) == 1, left
    (spent,) = {tuple(1000 - x for x in v) for v in left.values()}
    assert spent[0] == spent[1] == spent[2] == (4 if arg else 8)  # entry + instructions
