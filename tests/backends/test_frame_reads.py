"""What a firing probe sees (`DynamicLoc`), and the trap it can ask for: the same
values and the same errors on every backend. Cases from differential fuzzing of
callback probes."""

from __future__ import annotations

from typing import Any

import pytest

from probes.backends.base import CompileOptions
from probes.ir import Location, Module, Trap
from probes.probe import Action, CallbackProbe, DynamicLoc, FrameReads
from probes.probeset import ProbeSet

from ..conftest import module_from_wat


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
    reads = [(65532, 4), (65534, 4), (65536, 0), (65536, 1), (2**32 - 1, 2), (-1, 2), (-4, 4)]

    def see(loc: DynamicLoc) -> list[Any]:
        return [_attempt(lambda a=a, n=n: loc.read(a, n)) for a, n in reads]

    (seen,) = _fire_at(backend, compile_options, m, m.function(0).instrs[0].pc,
                       FrameReads(memory=True), see)
    assert seen[0] == "01020304" and seen[2] == ""
    for (a, n), got in zip(reads[1:], seen[1:], strict=True):
        if n:
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


def test_a_probe_trap_names_the_callers(backend: Any, compile_options: CompileOptions) -> None:
    """Action.trap deep in a recursion: the backtrace is the probe's location, then the
    call sites of the frames below, innermost first, at most 20 (what wasmtime gives)."""
    m = module_from_wat('''(module
      (func $f (export "f") (param i32) (result i32)
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
    ps.insert(Location(0, zero.pc), CallbackProbe(lambda loc: Action.trap("stop")))
    inst = backend.compile(m, ps, compile_options).instantiate()
    for depth, shown in ((3, 3), (40, 19)):
        with pytest.raises(Trap) as info:
            inst.call("f", depth)
        assert info.value.kind == "probe" and info.value.location == Location(0, zero.pc)
        assert info.value.backtrace == (Location(0, zero.pc), *[Location(0, call.pc)] * shown)
