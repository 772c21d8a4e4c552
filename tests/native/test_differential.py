"""native ≡ wasm: the same stdout, exit codes, results, traps and ProfileData.

* every C example, uninstrumented and under each monitor and all of them;
* the WAT examples' exports, including the ones that trap;
* random valid modules (``probes.testing.valid_modules``, with fuel so every
  call terminates): every export's result or trap, and instruction counts;
  with random arguments, the trap's location on native and on the wasm
  backend plain and with coverage or counts alone.

Profiles compare as JSON, less the backend's name and the sampled times of
the ``profile`` monitor (its exact parts, call counts, still compare).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.backends.base import CompileOptions
from probes.ir import Trap, decode, load_bytes
from probes.monitors import available
from probes.testing import valid_modules

from ..backends.test_coverage_exact import _calls, _generated, _split_runs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
C_PROGRAMS = sorted(p for p in EXAMPLES.glob("*.wasm") if p.with_suffix(".c").exists())
MONITORS = [name for name in available() if name != "timeout"]
VARIANTS = [[]] + [[m] for m in MONITORS] + [MONITORS]


def comparable(profile: Any) -> dict[str, Any]:
    data = profile.to_json()
    data.pop("backend", None)
    data.pop("cct", None)  # sampled times differ run to run
    data.pop("trap", None)  # compared by trap_key
    return data


def trap_key(t: Trap | None) -> Any:
    if t is None:
        return None
    if t.kind == "call stack exhausted":  # where the stack runs out is engine-specific
        return (t.kind,)
    return (t.kind, t.location, t.backtrace)


def _options(native_options: CompileOptions, monitors: list[str]) -> CompileOptions:
    """O2 for the plain and all-monitor runs, O0 for single monitors (compile time)."""
    from dataclasses import replace

    level = 2 if len(monitors) != 1 else 0
    return replace(native_options, opt_level=level)


@pytest.mark.parametrize("monitors", VARIANTS, ids=lambda v: "+".join(v) or "plain")
@pytest.mark.parametrize("program", C_PROGRAMS, ids=lambda p: p.stem)
def test_c_programs(program: Path, monitors: list[str], native_run, native_options,  # type: ignore[no-untyped-def]
                    tmp_path: Path) -> None:
    """One test per program and monitor set, so parallel workers share them evenly."""
    out = {}
    results = {}
    for backend in ("wasm", "native"):
        path = tmp_path / f"stdout.{backend}"
        opts = _options(native_options, monitors) if backend == "native" else \
            CompileOptions(cache_dir=native_options.cache_dir)
        results[backend] = native_run(program, monitors, backend=backend, stdout=str(path),
                                      options=opts, argv=["3"])
        out[backend] = path.read_bytes()
    w, n = results["wasm"], results["native"]
    assert out["native"] == out["wasm"]
    assert n.exit_code == w.exit_code
    assert trap_key(n.trap) == trap_key(w.trap)
    assert comparable(n.profile) == comparable(w.profile)


WAT_CALLS = [
    ("loop.wat", "run", [(0,), (1,), (10,), (100,), (-5,)]),
    ("loop.wat", "nested", [(0,), (3,), (7,)]),
    ("branches.wat", "classify", [(x,) for x in (-100, -1, 0, 1, 2, 3, 4, 5, 9, 10, 50, 99,
                                                 100, 1000, 2**31 - 1, -2**31)]),
    ("trap.wat", "div", [(7, 2), (1, 0), (-2**31, -1), (-7, 2)]),
    ("trap.wat", "oob", [(0,), (65532,), (65533,), (65536,), (-1,)]),
    ("trap.wat", "deep", [(0,), (5,)]),
    ("trap.wat", "boom", [()]),
    ("multi.wat", "swap_sum", [(1, 2), (-3, 40)]),
    ("multi.wat", "divmod_packed", [(47, 5), (9, 3)]),
    ("multi.wat", "bulk", [()]),
]


@pytest.mark.parametrize("file,export,calls", WAT_CALLS, ids=lambda v: str(v)[:20])
def test_wat_exports(file: str, export: str, calls, native_run, native_options) -> None:  # type: ignore[no-untyped-def]
    wasm = load_bytes(EXAMPLES / file)
    for monitors in ([], ["icount", "coverage", "branches", "calls"], MONITORS):
        for args in calls:
            w = native_run(wasm, monitors, backend="wasm", invoke=export, args=args)
            n = native_run(wasm, monitors, backend="native", invoke=export, args=args,
                           options=native_options)
            label = f"{'+'.join(monitors)} {export}{args}"
            assert n.value == w.value, label
            assert trap_key(n.trap) == trap_key(w.trap), label
            assert comparable(n.profile) == comparable(w.profile), label


REENTRANT = """(module
  (import "env" "cb" (func $cb (param i32)))
  (func $leaf (param i32) (if (local.get 0) (then unreachable)))
  (func $inner (export "inner") (param i32) nop (call $leaf (local.get 0)))
  (func $g (param i32) nop (call $cb (local.get 0)) (unreachable))
  (func $h (param i32) nop nop (unreachable))
  (func (export "outer") (param i32) nop nop (call $g (local.get 0)))
  (func (export "outer_probed") (param i32) nop nop (call $h (local.get 0))))"""
"""``outer`` calls ``g``, which calls the host, which calls ``inner`` back;
``outer_probed`` calls ``h``, where a probe calls ``inner`` back. With 1, the
inner call traps in ``leaf``; with 0 it returns and the outer frame traps."""


@pytest.mark.parametrize("via", ["host", "probe"])
@pytest.mark.parametrize("inner_traps", [0, 1])
def test_reentrant_calls_keep_the_callers_records(via: str, inner_traps: int, native: Any,
                                                  wat_module: Any) -> None:
    """A call back into the running instance (from a host function or a probe) continues
    the caller's frame records: a later trap's backtrace still names the frames below it,
    as on wasmtime (native started again at depth 0 and overwrote them)."""
    from probes.backends.wasm import WasmBackend
    from probes.ir import Location
    from probes.probe import CallbackProbe
    from probes.probeset import ProbeSet

    m = wat_module(REENTRANT)
    traps = {}
    for backend in (WasmBackend(), native):
        holder: dict[str, Any] = {}

        def back_in(*_: Any, holder: dict[str, Any] = holder) -> None:
            holder["inst"].call("inner", inner_traps)

        ps = ProbeSet(m)
        if via == "probe":
            ps.insert(Location(4, 1), CallbackProbe(back_in))
        inst = backend.compile(m, ps, CompileOptions(cache=False)).instantiate(
            imports={"env": {"cb": back_in}})
        holder["inst"] = inst
        with pytest.raises(Trap) as info:
            inst.call("outer" if via == "host" else "outer_probed", inner_traps)
        traps[backend.name] = info.value
    outer = [Location(5, 5)] if via == "host" else [Location(6, 5)]
    if via == "host":
        below = [Location(3, 4)]  # g at its call of the host function
    else:
        below = [Location(4, 1)]  # h at the probe
    if inner_traps:
        expected = [Location(1, 5), Location(2, 4), *below, *outer]
    else:
        expected = [Location(3, 6) if via == "host" else Location(4, 3), *outer]
    assert list(traps["wasm"].backtrace) == expected
    assert list(traps["native"].backtrace) == expected
    assert traps["native"].location == traps["wasm"].location == expected[0]


@pytest.mark.parametrize("segment", [
    "(table 1 funcref) (func $f) (elem (i32.const 5) $f)",
    '(memory 1) (data (i32.const 65535) "ab")',
])
def test_instantiation_traps_are_named_alike(segment: str, native: Any,
                                             wat_module: Any) -> None:
    """An active segment out of bounds fails the instantiation with the same trap kind
    on both backends (native said "out of bounds table access" where wasmtime, and so
    the wasm backend, say "undefined element"; found by differential fuzzing)."""
    from probes.backends.wasm import WasmBackend

    m = wat_module(f"(module {segment})")
    kinds = []
    for backend in (WasmBackend(), native):
        with pytest.raises(Trap) as info:
            backend.compile(m, None, CompileOptions(cache=False)).instantiate()
        kinds.append(info.value.kind)
    assert kinds[0] == kinds[1]


FUSED = {
    # Cranelift reports these at the branch or the load's user; the runner moves them back.
    "else_arm": ("(global $g (mut i32) (i32.const 0)) (func (export \"f\") (param i32) "
                 "(if (local.get 0) (then (global.set $g (i32.const 1))) (else unreachable)))", 0),
    "br_if": ("(func (export \"f\") (param i32) (block (br_if 0 (local.get 0)) unreachable))",
              0),
    "then_nop": ("(func (export \"f\") (param i32) (if (local.get 0) (then nop unreachable)))",
                 1),
    "then": ("(func (export \"f\") (param i32) (if (local.get 0) (then unreachable)))", 1),
    "then_dead_locals": ("(func (export \"f\") (param i32) (local i32) (if (local.get 0) "
                         "(then (local.set 1 (i32.add (local.get 0) (i32.const 1))) "
                         "unreachable)))", 1),
    "after_externref_read": ("(global $r (mut externref) (ref.null extern)) (func (export \"f\") "
                             "(param i32) (drop (global.get $r)) unreachable)", 0),
    "after_externref_write": ("(global $r (mut externref) (ref.null extern)) (func (export "
                              "\"f\") (param i32) (if (local.get 0) (then (global.set $r "
                              "(ref.null extern)) (drop (global.get $r)) unreachable)))", 1),
    "after_table_grow": ("(table 7 10 externref) (func (export \"f\") (param i32) (local.set 0 "
                         "(select (table.grow 0 (ref.null extern) (i32.const 304)) "
                         "(local.tee 0 (i32.const 16300)) (local.get 0))) (block unreachable))", 0),
    "load_into_ceil": ("(memory 1) (global $g (mut i64) (i64.const 0)) (func (export \"f\") "
                       "(param i32) (global.set $g (i64.reinterpret_f64 (f64.ceil "
                       "(f64.load (local.get 0))))))", 65536),
    "load_through_tee": ("(memory 1) (global $g (mut i64) (i64.const 0)) (func (export \"f\") "
                         "(param i32) (local f64) (global.set $g (i64.reinterpret_f64 "
                         "(f64.ceil (local.tee 1 (f64.load (local.get 0)))))))", 65536),
    "load_through_local": ("(memory 1) (global $g (mut i64) (i64.const 0)) (func (export "
                           "\"f\") (param i32) (local f64) (local.set 1 (f64.load "
                           "(local.get 0))) (global.set $g (i64.reinterpret_f64 (f64.ceil "
                           "(local.get 1)))))", 65536),
    "load_into_grow": ("(memory 1) (func (export \"f\") (param i32) (result i32) "
                       "(memory.grow (i32.load (local.get 0))))", 65536),
    "load_from_empty_memory": ("(memory 0) (func (export \"f\") (param i32) (result i64) "
                               "(i64.load8_u offset=1 (i32.load offset=5 (i32.const 0))))", 0),
    "load_from_empty_second_memory": ("(memory 1) (memory 0) (func (export \"f\") (param i32) "
                                      "(result i32) (i32.load8_s 1 offset=2 (i32.load 1 "
                                      "offset=2 (local.get 0))))", 1),
    "load_from_constant_into_load": ("(memory 1) (func (export \"f\") (param i32) (result i64) "
                                     "(i64.load offset=2 (i32.load (i32.const -2376))))", 0),
    "store_at_table_grow": ("(table 1 funcref) (memory 1 4) (func (export \"f\") (param i32) "
                            "(i32.store16 offset=4294967295 (table.grow 0 (ref.null func) "
                            "(i32.const 13945)) (i32.const 189)))", 0),
    "overwritten_store": ("(memory 1) (func (export \"f\") (param i32) (i32.store (local.get 0) "
                          "(i32.const 1)) (i32.store (local.get 0) (i32.const 2)))", 65534),
    "load_into_add": ("(memory 1) (func (export \"f\") (param i32) (result i32) "
                      "(i32.add (local.get 0) (i32.load (local.get 0))))", 65536),
}


@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_traps_are_placed_where_they_happen(name: str, native_run: Any,
                                                  wat_module: Any) -> None:
    """Traps wasmtime attributes to the instruction it fused the trapping one into
    (found by differential fuzzing) are placed, counted and covered as on native."""
    text, arg = FUSED[name]
    m = wat_module(f"(module {text})")
    kind = "unreachable" if "unreachable" in text else "out of bounds memory access"
    expected = next(i.pc for i in m.functions[0].instrs
                    if i.op.name == "unreachable" or i.op.mem_bytes)
    for monitors in ([], ["icount", "coverage"]):
        runs = {backend: native_run(m, monitors, backend=backend, invoke="f", args=[arg],
                                    options=CompileOptions(cache=False))
                for backend in ("wasm", "native")}
        for r in runs.values():
            assert r.trap is not None and r.trap.kind == kind
            assert r.trap.location is not None and r.trap.location.pc == expected, \
                (name, monitors, r.trap)
        assert comparable(runs["wasm"].profile) == comparable(runs["native"].profile)


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b and \
            math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return (a is None) == (b is None)  # references: null-ness only


@settings(max_examples=int(os.environ.get("PROBES_NATIVE_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(valid_modules(fuel=300, imports=False, simd=False))
def test_random_modules(native_run, data: bytes) -> None:  # type: ignore[no-untyped-def]
    m = decode(data)
    exports = [e for e in m.exports if e.kind == "func"]
    zero = {"i32": 0, "i64": 0, "f32": 0.0, "f64": 0.0}
    opts = CompileOptions(cache=False, opt_level=1)
    for e in exports:
        params = m.func_type(e.index).params
        if any(p.name not in zero for p in params):
            continue
        args = tuple(zero[p.name] for p in params)
        outcome = {}
        for backend in ("wasm", "native"):
            try:
                r = native_run(data, ["icount", "branches"], backend=backend, invoke=e.name,
                               args=args, options=opts if backend == "native" else None)
            except Trap as t:  # the start function trapped while instantiating
                outcome[backend] = ("start trap", t.kind)
                continue
            outcome[backend] = (r.trap, r.value, comparable(r.profile))
        w, n = outcome["wasm"], outcome["native"]
        if w[0] == "start trap" or n[0] == "start trap":
            assert w == n
            continue
        assert trap_key(n[0]) == trap_key(w[0]), e.name
        if w[0] is None:
            assert _same_value(n[1], w[1]), (e.name, n[1], w[1])
        assert n[2] == w[2], e.name


BOUNDARY_WAT = """(module (memory 1 4)
  (func $next (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  ;; Stores i at from + 8 + 4*i for i < n, with a call in the loop (the size is loaded
  ;; again after it) and memory.grow of one page when i == g (never when g < 0).
  (func (export "fill") (param $from i32) (param $n i32) (param $g i32) (result i32)
    (local $i i32)
    (loop $l
      (if (i32.eq (local.get $i) (local.get $g))
        (then (drop (memory.grow (i32.const 1)))))
      (i32.store offset=8 (i32.add (local.get $from) (i32.shl (local.get $i) (i32.const 2)))
        (local.get $i))
      (i32.store16 offset=2 (local.get $from) (local.get $i))
      (local.set $i (call $next (local.get $i)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  ;; The same without the call: the size stays in a register, the checks in the loop.
  (func (export "fill_leaf") (param $from i32) (param $n i32) (result i32)
    (local $i i32)
    (loop $l
      (i64.store offset=16 (i32.add (local.get $from) (i32.shl (local.get $i) (i32.const 3)))
        (i64.extend_i32_u (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  ;; A digest of the 256 bytes either side of the first page's end (when mapped).
  (func (export "digest") (result i64) (local $a i32) (local $h i64)
    (local.set $a (i32.const 65280))
    (loop $l
      (if (i32.or (i32.lt_u (local.get $a) (i32.const 65536))
                  (i32.gt_u (memory.size) (i32.const 1)))
        (then (local.set $h (i64.add (i64.mul (local.get $h) (i64.const 31))
                                     (i64.load8_u (local.get $a))))))
      (local.set $a (i32.add (local.get $a) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $a) (i32.const 65792))))
    (i64.add (local.get $h) (i64.extend_i32_u (memory.size)))))"""

BOUNDARY_CALLS = [  # export, args, whether it traps
    ("fill", (65536 - 48, 10, -1), False),   # fits exactly
    ("fill", (65536 - 48, 11, -1), True),    # the 11th store traps, 10 made
    ("fill", (65536 - 48, 30, 5), False),    # grows in the loop, then carries on past the end
    ("fill", (65536 - 48, 30, 12), True),    # would grow one iteration too late
    ("fill", (65535, 1, -1), True),          # the first store
    ("fill", (-8, 1, -1), True),             # address + offset wraps past 2^32
    ("fill_leaf", (65536 - 96, 10), False),  # fits exactly
    ("fill_leaf", (65536 - 96, 11), True),   # the 11th traps
    ("fill_leaf", (65536 - 16, 1), True),
]


@pytest.mark.parametrize("export,args,traps", BOUNDARY_CALLS, ids=lambda v: str(v))
def test_bounds_checks_in_loops(export: str, args: tuple[int, ...], traps: bool, native: Any,
                                native_options: CompileOptions) -> None:
    """A trap at a bounds check inside a loop (with and without calls, before and after a
    memory.grow in it) leaves the same memory and the same counts as on wasmtime."""
    from probes.backends.wasm import WasmBackend
    from probes.probeset import ProbeSet

    from ..conftest import assemble

    m = decode(assemble(BOUNDARY_WAT))
    seen = []
    for backend, options in ((native, native_options), (WasmBackend(), CompileOptions())):
        for monitor in (None, "icount"):
            ps = ProbeSet(m)
            mon = None
            if monitor:
                from probes.monitors import create
                mon = create(monitor)
                mon.attach(m, ps)
            inst = backend.compile(m, ps, options).instantiate()
            try:
                value: Any = inst.call(export, *args)
                trap = None
            except Trap as t:
                value, trap = None, t
            digest = inst.call("digest")
            seen.append((monitor, value, trap_key(trap), digest))
            inst.close()
    assert seen[:2] == seen[2:]
    assert all((s[2] is not None) == traps for s in seen), seen


@pytest.mark.parametrize("export,args,traps", BOUNDARY_CALLS, ids=lambda v: str(v))
def test_bounds_checks_in_loops_counts(export: str, args: tuple[int, ...], traps: bool,  # type: ignore[no-untyped-def]
                                       native_run, native_options) -> None:
    from ..conftest import assemble

    wasm = assemble(BOUNDARY_WAT)
    for monitors in (["icount", "coverage", "memory"], MONITORS):
        w = native_run(wasm, monitors, backend="wasm", invoke=export, args=args)
        n = native_run(wasm, monitors, backend="native", invoke=export, args=args,
                       options=native_options)
        assert n.value == w.value
        assert trap_key(n.trap) == trap_key(w.trap)
        assert comparable(n.profile) == comparable(w.profile)
        assert (n.trap is not None) == traps


def _trap_or_value(inst: Any, name: str, args: list[Any]) -> tuple[Any, ...]:
    from probes.ir import ProbesError

    try:
        return ("ok", _plain(inst.call(name, *args)))
    except Trap as err:
        return ("trap", err.kind, err.location)
    except ProbesError as err:
        return ("stop", str(err))


def _plain(value: Any) -> Any:
    """Numbers as text (NaN is NaN), references by null-ness: the backends give
    different objects."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return repr(value) if value is None or isinstance(value, (int, float)) else "ref"


def _chained_load(m: Any, native: tuple[Any, ...], wasm: tuple[Any, ...]) -> bool:
    """The one case the wasm backend cannot place (README, Backends): wasmtime
    reports a load whose address a load out of bounds gave, native that load."""
    from probes.backends.wasm.trap_sites import _producer

    if native[:2] != wasm[:2] or native[1] != "out of bounds memory access":
        return False
    n, w = native[2], wasm[2]
    if n is None or w is None or n.func != w.func:
        return False
    body = m.function(w.func).instrs
    index = next((k for k, ins in enumerate(body) if ins.pc == w.pc), None)
    if index is None or not body[index].op.mem_bytes:
        return False
    address = _producer(body, index, 1 if body[index].op.is_store else 0)
    return address is not None and body[address].pc == n.pc


@settings(max_examples=int(os.environ.get("PROBES_NATIVE_EXAMPLES", "100")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_modules_trap_where_native_does(native: Any, data: Any) -> None:
    """With arguments drawn at random (so addresses out of bounds are common), every
    export's result or trap location is the same on native (which checks every
    access in order), on the wasm backend plain, and with coverage or counts woven
    alone: Cranelift's misplaced traps are mapped back (`trap_sites`)."""
    from probes.backends.base import WasiOptions
    from probes.backends.wasm import WasmBackend
    from probes.probeset import ProbeSet

    m = data.draw(_generated())
    seeds = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=2))
    try:
        instances = [
            native.compile(m, ProbeSet(m), CompileOptions(cache=False, opt_level=1))
            .instantiate(wasi=WasiOptions()),
            WasmBackend().compile(m, ProbeSet(m), CompileOptions(cache=False))
            .instantiate(wasi=WasiOptions()),
            *_split_runs(WasmBackend(), m, CompileOptions(cache=False))[:2]]
    except Trap:
        return
    for name, args in _calls(m, seeds):
        outcomes = [_trap_or_value(inst, name, args) for inst in instances]
        for other in outcomes[1:]:
            assert other == outcomes[0] or _chained_load(m, outcomes[0], other), \
                (name, args, outcomes)
        if outcomes[0][0] == "stop":
            return
