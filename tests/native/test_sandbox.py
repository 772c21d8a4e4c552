"""No guest escapes: every way out of the sandbox traps cleanly, and the instance
stays usable afterwards.

Loads and stores of every width at and around the end of memory (with static
offsets up to 2^32-1), huge ``memory.grow``, bad ``call_indirect`` (index,
null, signature), deep recursion with small and large frames, and traps
inside calls made from host functions.
"""

from __future__ import annotations

from typing import Any

import pytest

from probes.backends.base import CompileOptions
from probes.ir import Trap, decode

from ..conftest import assemble

OPTS = CompileOptions(cache=False, opt_level=2)

LOADS = [("i32.load", 4), ("i64.load", 8), ("f32.load", 4), ("f64.load", 8),
         ("i32.load8_u", 1), ("i32.load16_s", 2), ("i64.load32_u", 4)]
STORES = [("i32.store", "i32", 4), ("i64.store", "i64", 8), ("f32.store", "f32", 4),
          ("f64.store", "f64", 8), ("i32.store8", "i32", 1), ("i64.store16", "i64", 2)]


def instance(native: Any, wat: str, **imports: Any) -> Any:
    exe = native.compile(decode(assemble(wat)), None, OPTS)
    return exe.instantiate(imports=imports or None)


def _expect_trap(inst: Any, export: str, *args: Any, kind: str) -> Trap:
    with pytest.raises(Trap) as info:
        inst.call(export, *args)
    assert info.value.kind == kind, info.value
    assert info.value.location is not None
    return info.value


def test_loads_and_stores_at_every_boundary(native: Any) -> None:
    funcs = []
    for name, _n in LOADS:
        t = name.split(".")[0]
        for off in (0, 1, 65535, 0xFFFFFFFF):
            funcs.append(f'(func (export "{name}@{off}") (param i32) (result {t}) '
                         f'({name} offset={off} (local.get 0)))')
    for name, t, _n in STORES:
        for off in (0, 3, 0xFFFFFFFF):
            funcs.append(f'(func (export "{name}@{off}") (param i32) '
                         f'({name} offset={off} (local.get 0) ({t}.const 0)))')
    inst = instance(native, "(module (memory 1 2) " + " ".join(funcs) + ")")
    size = 65536
    for name, n in LOADS:
        for off in (0, 1, 65535, 0xFFFFFFFF):
            last_ok = size - n - off
            if last_ok >= 0:
                inst.call(f"{name}@{off}", last_ok)
            for addr in (last_ok + 1, size - 1, size, -1, -n):
                if addr + off + n > size or addr < 0:
                    _expect_trap(inst, f"{name}@{off}", addr, kind="out of bounds memory access")
    for name, _t, n in STORES:
        for off in (0, 3, 0xFFFFFFFF):
            last_ok = size - n - off
            if last_ok >= 0:
                inst.call(f"{name}@{off}", last_ok)
            for addr in (max(last_ok + 1, 0), size, -1):
                _expect_trap(inst, f"{name}@{off}", addr, kind="out of bounds memory access")
    inst.close()


def test_grown_memory_moves_the_boundary(native: Any) -> None:
    inst = instance(native, """(module (memory 1 3)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
      (func (export "size") (result i32) (memory.size))
      (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))""")
    _expect_trap(inst, "load", 65536, kind="out of bounds memory access")
    assert inst.call("grow", 1) == 1
    assert inst.call("load", 65536) == 0  # fresh pages are zero
    _expect_trap(inst, "load", 131069, kind="out of bounds memory access")
    assert inst.call("grow", 2) == -1  # past the maximum
    for huge in (65536, 0x7FFFFFFF, -1):
        assert inst.call("grow", huge) == -1
    assert inst.call("size") == 2
    inst.close()


def test_unbounded_memory_refuses_past_4gib(native: Any) -> None:
    inst = instance(native, """(module (memory 0)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))""")
    assert inst.call("grow", 65537) == -1
    assert inst.call("grow", -1) == -1
    assert inst.call("grow", 1) == 0
    inst.close()


def test_bad_indirect_calls(native: Any) -> None:
    inst = instance(native, """(module
      (type $v (func (result i32))) (type $i (func (param i32) (result i32)))
      (table 4 funcref) (elem (i32.const 0) $a $b)
      (func $a (result i32) (i32.const 7))
      (func $b (param i32) (result i32) (local.get 0))
      (func (export "call") (param i32) (result i32) (call_indirect (type $v) (local.get 0))))""")
    assert inst.call("call", 0) == 7
    _expect_trap(inst, "call", 1, kind="indirect call type mismatch")
    _expect_trap(inst, "call", 2, kind="uninitialized element")
    for idx in (4, 5, 1000, -1):
        _expect_trap(inst, "call", idx, kind="undefined element")
    assert inst.call("call", 0) == 7  # still usable
    inst.close()



def test_fixed_size_table(native: Any) -> None:
    """A defined table whose minimum is its maximum has a constant size and elements that
    never move (the lowering folds both): checks, table.set, growth refused, in a loop."""
    inst = instance(native, """(module
      (type $v (func (result i32))) (type $i (func (param i32) (result i32)))
      (table $t (export "t") 4 4 funcref) (elem (i32.const 0) $a $b)
      (func $a (result i32) (i32.const 7))
      (func $b (param i32) (result i32) (local.get 0))
      (func (export "call") (param i32) (result i32) (call_indirect (type $v) (local.get 0)))
      (func (export "sum") (param i32) (param $n i32) (result i32) (local $s i32)
        (loop $l
          (local.set $s (i32.add (local.get $s) (call_indirect (type $v) (local.get 0))))
          (local.set 0 (i32.add (local.get 0) (i32.const 2)))
          (br_if $l (i32.lt_u (local.get 0) (local.get $n))))
        (local.get $s))
      (func (export "set") (param i32) (table.set $t (local.get 0) (ref.func $a)))
      (func (export "size") (result i32) (table.size $t))
      (func (export "grow") (param i32) (result i32)
        (table.grow $t (ref.null func) (local.get 0))))""")
    assert inst.call("call", 0) == 7
    assert inst.call("size") == 4
    assert inst.call("grow", 1) == -1
    assert inst.call("grow", 0) == 4
    _expect_trap(inst, "call", 1, kind="indirect call type mismatch")
    _expect_trap(inst, "call", 2, kind="uninitialized element")
    for idx in (4, 5, 1000, -1):
        _expect_trap(inst, "call", idx, kind="undefined element")
    inst.call("set", 2)
    assert inst.call("call", 2) == 7
    assert inst.call("sum", 0, 4) == 14
    # In the loop: indices 0 and 2 are called, 4 is out of the table.
    trap = _expect_trap(inst, "sum", 0, 8, kind="undefined element")
    assert len(trap.backtrace) == 1
    assert inst.call("sum", 0, 4) == 14  # still usable
    inst.close()

@pytest.mark.parametrize("locals_", [0, 200])
def test_deep_recursion_traps(native: Any, locals_: int) -> None:
    decl = f"(local {' '.join(['i64'] * locals_)})" if locals_ else ""
    use = "".join(f"(local.set {k + 1} (i64.extend_i32_u (local.get 0)))" for k in range(locals_))
    total = "".join(f"(i64.add (local.get {k + 1}))" for k in range(locals_))
    inst = instance(native, f"""(module
      (func $f (export "f") (param i32) (result i64) {decl}
        {use}
        (i64.add (call $f (i32.add (local.get 0) (i32.const 1))) (i64.const 1)) {total}))""")
    trap = _expect_trap(inst, "f", 0, kind="call stack exhausted")
    assert len(trap.backtrace) >= 2
    _expect_trap(inst, "f", 0, kind="call stack exhausted")  # and again
    inst.close()


def test_traps_through_host_calls(native: Any) -> None:
    calls = []

    def host(x: int) -> int:
        calls.append(x)
        return inner.call("div", 10, x)

    inner = instance(native, """(module (func (export "div") (param i32 i32) (result i32)
        (i32.div_u (local.get 0) (local.get 1))))""")
    outer = instance(native, """(module (import "env" "h" (func $h (param i32) (result i32)))
      (func (export "f") (param i32) (result i32) (call $h (local.get 0))))""",
                     env={"h": host})
    assert outer.call("f", 2) == 5
    with pytest.raises(Trap) as info:
        outer.call("f", 0)
    assert info.value.kind == "integer divide by zero"
    assert outer.call("f", 5) == 2
    assert calls == [2, 0, 5]
    outer.close()
    inner.close()


def test_host_exceptions_propagate(native: Any) -> None:
    def boom() -> None:
        raise ValueError("boom")

    inst = instance(native, """(module (import "env" "h" (func $h))
      (func (export "f") (call $h)))""", env={"h": boom})
    with pytest.raises(ValueError, match="boom"):
        inst.call("f")
    inst.close()


def test_backtrace_through_direct_and_indirect_calls(native: Any) -> None:
    """Frame records are call offsets in the compiled module: the backtrace names every
    call site (direct, indirect, in an instrumented function) at its original location,
    as wasmtime does."""
    from probes.backends.wasm import WasmBackend
    from probes.monitors import create
    from probes.probeset import ProbeSet

    wat = """(module
      (type $ii (func (param i32) (result i32)))
      (table 1 funcref) (elem (i32.const 0) $mid)
      (func $leaf (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
      (func $mid (param i32) (result i32)
        (i32.add (i32.const 1) (call $leaf (local.get 0))))
      (func (export "top") (param i32) (result i32)
        (nop) (call_indirect (type $ii) (local.get 0) (i32.const 0))))"""
    m = decode(assemble(wat))
    traps = []
    for backend in (native, WasmBackend()):
        for monitor in (None, "icount"):
            ps = ProbeSet(m)
            if monitor:
                create(monitor).attach(m, ps)
            inst = backend.compile(m, ps, OPTS).instantiate()
            with pytest.raises(Trap) as info:
                inst.call("top", 0)
            traps.append(info.value)
            assert inst.call("top", 1) == 2
            inst.close()
    assert all(t.kind == traps[0].kind for t in traps)
    assert [len(t.backtrace) for t in traps] == [3] * 4
    assert len({tuple(t.backtrace) for t in traps}) == 1, [t.backtrace for t in traps]
