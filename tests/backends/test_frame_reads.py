"""What a firing probe sees (`DynamicLoc`), and the trap it can ask for: the same
values and the same errors on every backend. Cases from differential fuzzing of
callback probes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.backends.base import CompileOptions, get_backend
from probes.ir import Location, Module, Trap, decode, operand_stacks
from probes.probe import Action, CallbackProbe, DynamicLoc, FrameReads, TraceProbe
from probes.probeset import ProbeSet

from ..conftest import module_from_wat
from .test_generated import GENERATED


def _fire_at(backend: Any, options: CompileOptions, m: Module, pc: int, reads: FrameReads,
             see: Any, export: str = "f", *args: Any, func: int = 0) -> list[Any]:
    """Run ``export`` with one callback at (func, pc); what ``see(loc)`` returned."""
    seen: list[Any] = []
    ps = ProbeSet(m)
    ps.insert(Location(func, pc), CallbackProbe(lambda loc: seen.append(see(loc)), reads))
    backend.compile(m, ps, options).instantiate().call(export, *args)
    return seen


def _attempt(read: Any) -> Any:
    try:
        return read().hex()
    except Exception as e:  # noqa: BLE001 - the error is the observation
        return f"{type(e).__name__}: {e}"


def test_memory_reads_out_of_bounds_raise_probe_error(backend: Any,
                                                      compile_options: CompileOptions) -> None:
    m = module_from_wat('(module (memory 1) (data (i32.const 65532) "\\01\\02\\03\\04")'
                        ' (func (export "f") nop))')
    reads = [(65532, 4), (65534, 4), (65536, 0), (65536, 1), (2**32 - 1, 2), (-1, 2), (-4, 4),
             (65537, 0)]

    def see(loc: DynamicLoc) -> list[Any]:
        return [_attempt(lambda a=a, n=n: loc.read(a, n)) for a, n in reads]

    (seen,) = _fire_at(backend, compile_options, m, m.function(0).instrs[0].pc,
                       FrameReads(memory=True), see)
    assert seen[0] == "01020304" and seen[2] == ""  # an empty read at the end is in bounds
    for (a, n), got in zip(reads[1:], seen[1:], strict=True):
        if (a, n) != (65536, 0):
            assert got == f"ProbeError: probe reads memory [{a}, {a + n}) out of bounds"


def test_memory_exported_under_the_empty_name_is_readable(
        backend: Any, compile_options: CompileOptions) -> None:
    m = module_from_wat('(module (memory (export "") 1) (data (i32.const 0) "\\2a")'
                        ' (func (export "f") nop))')
    seen = _fire_at(backend, compile_options, m, m.function(0).instrs[0].pc,
                    FrameReads(memory=True), lambda loc: loc.read(0, 1))
    assert seen == [b"\x2a"]


def test_reference_values_read_as_the_backend_passes_references(
        backend: Any, compile_options: CompileOptions) -> None:
    """Null is None, an externref the host's object, a funcref the backend's function
    reference (what `Instance.call` returns for one): never a raw pointer."""
    m = module_from_wat('''(module (elem declare func $f)
      (func $f (export "f") (param externref) (result funcref) (local funcref)
        (local.set 1 (ref.func $f))
        ref.null extern
        local.get 0
        drop
        drop
        local.get 1))''')
    host = object()
    drop = next(i for i in m.function(0).instrs if i.op.name == "drop")
    for arg in (None, host):
        seen: list[Any] = []
        ps = ProbeSet(m)
        ps.insert(Location(0, drop.pc), CallbackProbe(
            lambda loc, seen=seen: seen.append((loc.local(0), loc.local(1), loc.operand(0),
                                                loc.operand(1))),
            FrameReads(locals=(0, 1), operands=2)))
        inst = backend.compile(m, ps, compile_options).instantiate()
        returned = inst.call("f", arg)
        ((local0, local1, top, below),) = seen
        assert local0 is arg and top is arg and below is None
        assert type(local1) is type(returned) and local1 is not None


def test_operands_read_at_an_armed_site(backend: Any, compile_options: CompileOptions) -> None:
    """With ``dynamic=True`` every site is armed behind a flag test (an `if`); the
    operands a probe reads are copied before it (the `if` block cannot pop them)."""
    m = module_from_wat('''(module (func (export "f") (param i32) (result i32)
      local.get 0
      i32.const 2
      i32.add))''')
    add = next(i for i in m.function(0).instrs if i.op.name == "i32.add")
    options = CompileOptions(cache_dir=compile_options.cache_dir, dynamic=True)
    seen = _fire_at(backend, options, m, add.pc, FrameReads(operands=2),
                    lambda loc: (loc.operand(0), loc.operand(1)), "f", 40)
    assert seen == [(2, 40)]


@pytest.mark.parametrize("reads", [FrameReads(), FrameReads(locals=(0, 1))],
                         ids=["nothing", "a-funcref"])
def test_a_probe_trap_names_the_callers(backend: Any, compile_options: CompileOptions,
                                        reads: FrameReads) -> None:
    """Action.trap deep in a recursion: the backtrace is the probe's location, then the
    call sites of the frames below, innermost first, at most 20 (what wasmtime gives),
    whatever the probe reads (a reference once took wasmtime-py's generic host call,
    which drops the trap's frames)."""
    m = module_from_wat('''(module
      (func $f (export "f") (param i32) (result i32) (local funcref)
        local.get 0
        if (result i32)
          local.get 0
          i32.const 1
          i32.sub
          call $f
        else
          i32.const 0
        end))''')
    instrs = m.function(0).instrs
    call = next(i for i in instrs if i.op.name == "call")
    zero = next(i for i in instrs if i.op.name == "i32.const" and i.imm == 0)
    ps = ProbeSet(m)
    ps.insert(Location(0, zero.pc), CallbackProbe(lambda loc: Action.trap("stop"), reads))
    inst = backend.compile(m, ps, compile_options).instantiate()
    for depth, shown in ((3, 3), (40, 19)):
        with pytest.raises(Trap) as info:
            inst.call("f", depth)
        assert info.value.kind == "probe" and info.value.location == Location(0, zero.pc)
        assert info.value.backtrace == (Location(0, zero.pc), *[Location(0, call.pc)] * shown)


NESTED = """(module (func (export "f") (param i32) (result i32)
  i32.const 100
  local.get 0
  block (result i32)
    i32.const 7
    loop (result i32)
      i32.const 8
      local.get 0
      if (param i32) (result i32)
        nop
      else
        i32.const 1
        i32.add
      end
    end
    i32.add
  end
  i32.add
  i32.add))"""


@pytest.mark.parametrize("x, arm", [(5, "nop"), (0, "i32.const")])
def test_operands_below_the_current_block_are_read(backend: Any, compile_options: CompileOptions,
                                                   x: int, arm: str) -> None:
    """operand(i) reaches values pushed before the enclosing block, loop or if was
    entered (a Wasm block cannot pop them: the wasm backend copies them on entry)."""
    m = module_from_wat(NESTED)
    instrs = m.function(0).instrs
    in_arm = next(i for i in instrs if i.op.name == arm and (arm == "nop" or i.imm == 1))
    first_in_loop = next(i for i in instrs if i.op.name == "i32.const" and i.imm == 8)
    seen: dict[str, list[Any]] = {"arm": [], "loop": []}
    ps = ProbeSet(m)
    ps.insert(Location(0, in_arm.pc), CallbackProbe(
        lambda loc: seen["arm"].append(tuple(loc.operand(i) for i in range(4))),
        FrameReads(operands=4)))
    ps.insert(Location(0, first_in_loop.pc), CallbackProbe(
        lambda loc: seen["loop"].append(tuple(loc.operand(i) for i in range(3))),
        FrameReads(operands=3)))
    result = backend.compile(m, ps, compile_options).instantiate().call("f", x)
    assert result == (120 if x else 116)
    assert seen == {"arm": [(8, 7, x, 100)], "loop": [(7, x, 100)]}


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "armed"])
def test_a_probe_in_dead_code_reading_operands_is_accepted(
        backend: Any, compile_options: CompileOptions, dynamic: bool) -> None:
    """An `if` with a parameter after a `br`: its arms can never run, whatever types
    validation gives their stacks, so their sites read no operands (the arms' frames
    do not hold them). With ``dynamic=True`` they stay armed: a probe inserted there
    later is accepted."""
    m = module_from_wat('''(module (type $t (func (param i32) (result i32)))
      (func (export "f") (result i32)
        i32.const 5
        block (result i32)
          i32.const 0
          br 0
          if (type $t)
            nop
          else
            nop
          end
        end
        i32.add))''')
    nops = [i for i in m.function(0).instrs if i.op.name == "nop"]
    fired: list[Any] = []
    ps = ProbeSet(m)
    for nop in nops:
        ps.insert(Location(0, nop.pc), CallbackProbe(fired.append, FrameReads(operands=2)))
    options = CompileOptions(cache_dir=compile_options.cache_dir, dynamic=dynamic)
    inst = backend.compile(m, ps, options).instantiate()
    if dynamic:
        dead_if = next(i for i in m.function(0).instrs if i.op.name == "if")
        ps.insert(Location(0, dead_if.pc), CallbackProbe(fired.append))
    assert inst.call("f") == 5
    assert fired == []


@pytest.mark.parametrize("how", ["probe", "global", "armed"])
def test_a_site_in_a_block_opened_in_dead_code_is_woven(
        backend: Any, compile_options: CompileOptions, how: str) -> None:
    """A block after a `br` begins with an unknown stack below its frame: its sites
    read no operands and need no saved values (this crashed the weaver)."""
    m = module_from_wat('''(module (func (export "f")
        br 0
        block (result i32)
          i32.const 1
        end
        drop))''')
    fired: list[Any] = []
    ps = ProbeSet(m)
    const = next(i for i in m.function(0).instrs if i.op.name == "i32.const")
    if how == "probe":
        ps.insert(Location(0, const.pc), CallbackProbe(fired.append, FrameReads(operands=1)))
    elif how == "global":
        ps.insert_global(CallbackProbe(fired.append))
    options = CompileOptions(cache_dir=compile_options.cache_dir, dynamic=how == "armed")
    inst = backend.compile(m, ps, options).instantiate()
    assert inst.call("f") is None
    assert len(fired) == (1 if how == "global" else 0)  # a global probe fires at the `br`


def _comparable(value: Any) -> Any:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else value
    if value is None or isinstance(value, int):
        return value
    return "ref"  # a function reference: each backend has its own kind of object


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(m=GENERATED.map(decode), seeds=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=2))
def test_every_operand_and_local_reads_the_same_on_both_backends(m: Module,
                                                                 seeds: list[int]) -> None:
    """A probe at every reachable instruction of a random module, reading the whole
    operand stack and every local: the same values, in the same order, on wasm and
    native."""
    backends = [get_backend("wasm"), get_backend("native")]
    logs: list[list[Any]] = [[] for _ in backends]
    outcomes: list[list[Any]] = [[] for _ in backends]
    for log, outcome, backend in zip(logs, outcomes, backends, strict=True):
        ps = ProbeSet(m)
        for f in m.functions:
            ft = m.func_type(f.index)
            nlocals = len(ft.params) + f.num_locals
            local_ids = tuple(i for i in range(nlocals)
                              if f.local_type(ft.params, i).code != 0x7B)
            for ins, stack in zip(f.instrs, operand_stacks(m, f), strict=True):
                if any(t is None or t.code == 0x7B for t in stack):
                    continue

                def see(loc: DynamicLoc, n: int = len(stack), ids: tuple = local_ids,
                        log: list[Any] = log) -> None:
                    log.append((loc.func, loc.pc,
                                [_comparable(loc.operand(i)) for i in range(n)],
                                [_comparable(loc.local(i)) for i in ids]))

                ps.insert(Location(f.index, ins.pc),
                          CallbackProbe(see, FrameReads(locals=local_ids, operands=len(stack))))
        try:
            inst = backend.compile(m, ps, CompileOptions(cache=False)).instantiate()
        except Trap as t:
            outcome.append(("start trap", t.kind))
            continue
        for e in m.exports:
            params = m.func_type(e.index).params if e.kind == "func" else None
            if params is None or any(p.name not in _ARGS for p in params):
                continue
            for seed in seeds:
                try:
                    inst.call(e.name, *[_ARGS[p.name](seed >> (3 * i))
                                        for i, p in enumerate(params)])
                    outcome.append((e.name, "ok"))
                except Trap as t:
                    outcome.append((e.name, t.kind, t.location))
    assert outcomes[0] == outcomes[1]
    assert logs[0] == logs[1]


_ARGS = {"i32": lambda x: x & 0x7FFFFFFF, "i64": lambda x: x, "f32": float, "f64": float}


def test_a_traced_value_below_the_block_is_recorded_as_zero(
        backend: Any, compile_options: CompileOptions) -> None:
    """TraceProbe(with_value=True) where the top operand belongs to an enclosing
    frame: the block cannot pop it, so the entry carries 0, as for a value of
    unknown type (the woven module used to be invalid)."""
    m = module_from_wat('''(module (func (export "f") (result i32)
      i32.const 7
      block
        nop
      end))''')
    nop = next(i for i in m.function(0).instrs if i.op.name == "nop")
    ps = ProbeSet(m)
    trace = TraceProbe(with_value=True)
    ps.insert(Location(0, nop.pc), trace)
    assert backend.compile(m, ps, compile_options).instantiate().call("f") == 7
    assert trace.events == [(Location(0, nop.pc), 0)]
