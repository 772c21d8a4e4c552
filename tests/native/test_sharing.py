"""Memories, tables and mutable globals shared between native instances.

``inst.export(name)`` hands out the runtime objects themselves; passed as
another instantiation's import they are shared: both instances see the same
bytes, elements and global slot, growth by one is seen by the other, a
funcref runs in the context of the instance it came from wherever it is
``call_indirect``-ed, and freeing the exporter first is safe.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

from probes.backends.base import CompileOptions
from probes.ir import LinkError, ProbesError, Trap, decode
from probes.ir.loader import wat_to_wasm

A = """
(module
  (memory (export "mem") 1 4)
  (table (export "tab") 3 10 funcref)
  (global $g (export "g") (mut i32) (i32.const 7))
  (global $me (mut i32) (i32.const 100))
  (type $t (func (result i32)))
  (func $whoami (result i32) (global.get $me))
  (func $trap (result i32) unreachable)
  (func $takes (param i32) (result i32) (local.get 0))
  (elem (i32.const 0) $whoami)
  (elem (i32.const 2) $trap)
  (elem declare func $takes)
  (func (export "put_takes") (table.set (i32.const 2) (ref.func $takes)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func (export "tsize") (result i32) (table.size))
  (func (export "get_g") (result i32) (global.get $g))
  (func (export "call") (param i32) (result i32) (call_indirect (type $t) (local.get 0)))
)
"""

B = """
(module
  (import "a" "mem" (memory 1))
  (import "a" "tab" (table 2 funcref))
  (import "a" "g" (global $g (mut i32)))
  (export "mem" (memory 0))
  (export "g" (global $g))
  (global $me (mut i32) (i32.const 200))
  (func $whoami (result i32) (global.get $me))
  (elem (i32.const 1) $whoami)
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "tgrow") (param i32) (result i32) (table.grow (ref.null func) (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func (export "tsize") (result i32) (table.size))
  (func (export "set_g") (param i32) (global.set $g (local.get 0)))
  (func (export "call") (param i32) (result i32) (call_indirect (result i32) (local.get 0)))
)
"""


@pytest.fixture(scope="module")
def compiled(native: Any) -> tuple[Any, Any]:
    opts = CompileOptions(cache=False, opt_level=1)
    return (native.compile(decode(wat_to_wasm(A)), None, opts),
            native.compile(decode(wat_to_wasm(B)), None, opts))


def _pair(compiled: tuple[Any, Any]) -> tuple[Any, Any]:
    exe_a, exe_b = compiled
    a = exe_a.instantiate()
    b = exe_b.instantiate(imports={"a": {n: a.export(n) for n in ("mem", "tab", "g")}})
    return a, b


def test_memory_shared_and_grow_seen_by_both(compiled: tuple[Any, Any]) -> None:
    a, b = _pair(compiled)
    b.call("store", 8, 1234)
    assert a.call("load", 8) == 1234
    with pytest.raises(Trap, match="out of bounds memory access"):
        a.call("load", 65536)
    assert b.call("grow", 1) == 1
    assert a.call("size") == b.call("size") == 2
    b.call("store", 65536 + 4, 99)
    assert a.call("load", 65536 + 4) == 99
    mem = a.export("mem")
    assert mem is b.export("mem") and mem.size() == 2
    assert mem.grow(2) == 2 and a.call("size") == 4 and b.call("size") == 4
    assert b.call("grow", 1) == -1  # A's maximum binds B too
    b.close()
    a.close()


def test_table_shared_grow_and_calls_run_in_their_own_instance(
        compiled: tuple[Any, Any]) -> None:
    a, b = _pair(compiled)
    assert b.call("tgrow", 1) == 3
    assert a.call("tsize") == b.call("tsize") == 4
    # Slot 0 holds A's function, slot 1 B's (B's active segment wrote it into A's table):
    # each reads its own instance's global, whoever calls it.
    assert b.call("call", 0) == 100
    assert a.call("call", 1) == 200
    assert a.call("call", 0) == 100 and b.call("call", 1) == 200
    with pytest.raises(Trap, match="uninitialized element"):
        b.call("call", 3)
    # A trap in A's code called from B unwinds B's run; both keep working after it.
    with pytest.raises(Trap, match="unreachable"):
        b.call("call", 2)
    assert b.call("call", 0) == 100 and a.call("call", 1) == 200
    # Signatures compare across modules: A's (param i32) function is not a () -> i32.
    a.call("put_takes")
    with pytest.raises(Trap, match="indirect call type mismatch"):
        b.call("call", 2)
    b.close()
    a.close()


def test_mutable_global_shared_by_reference(compiled: tuple[Any, Any]) -> None:
    a, b = _pair(compiled)
    b.call("set_g", 55)
    assert a.call("get_g") == 55
    assert a.export("g").value == 55 and b.export("g") is a.export("g")
    b.close()
    a.close()


def test_freeing_the_exporter_first_is_safe(compiled: tuple[Any, Any]) -> None:
    a, b = _pair(compiled)
    b.call("store", 16, 77)
    mem = b.export("mem")
    a.close()
    with pytest.raises(ProbesError, match="closed"):
        a.call("load", 16)
    del a
    gc.collect()
    # A's function (in B's table) still runs in A's context; the memory and global live on.
    assert b.call("call", 0) == 100
    assert b.call("load", 16) == 77
    b.call("set_g", 3)
    assert b.export("g").value == 3
    b.close()
    del b
    gc.collect()
    assert mem.read(None, 16, 20) == (77).to_bytes(4, "little")  # the object holds it


def test_unshared_instances_still_free_on_close(compiled: tuple[Any, Any]) -> None:
    a = compiled[0].instantiate()
    a.close()
    assert a._ctx is None


def test_link_errors(native: Any, compiled: tuple[Any, Any]) -> None:
    a = compiled[0].instantiate()
    opts = CompileOptions(cache=False, opt_level=0)

    def link(wat: str, name: str) -> Any:
        exe = native.compile(decode(wat_to_wasm(wat)), None, opts)
        return exe.instantiate(imports={"a": {name: a.export(name)}})

    for wat, name in [
        ('(module (import "a" "mem" (memory 2)))', "mem"),          # min above the size
        ('(module (import "a" "mem" (memory 1 2)))', "mem"),        # max below A's
        ('(module (import "a" "tab" (table 1 externref)))', "tab"),
        ('(module (import "a" "g" (global i32)))', "g"),             # mutability differs
        ('(module (import "a" "g" (global (mut i64))))', "g"),
        ('(module (import "a" "load" (func (param i64) (result i32))))', "load"),
        ('(module (import "a" "mem" (table 1 funcref)))', "mem"),
    ]:
        with pytest.raises(LinkError, match="incompatible import type"):
            link(wat, name)
    ok = link('(module (import "a" "load" (func (param i32) (result i32)))'
              ' (func (export "f") (result i32) (call 0 (i32.const 0))))', "load")
    assert ok.call("f") == 0
    ok.close()
    a.close()


SPINNER = """
(module
  (table (export "tab") 2 funcref)
  (func $spin (loop $l (br $l)))
  (func $quick (loop $l (br_if $l (i32.const 0))))
  (elem (i32.const 0) $spin $quick))
"""

CALLER = """
(module
  (import "a" "tab" (table 2 funcref))
  (func (export "go") (param i32) (call_indirect (local.get 0))))
"""


def test_interrupt_reaches_another_instance(native: Any) -> None:
    """Ctrl-C's path (rt_interrupt on the running instance) also stops a loop in another
    instance that its code called through a shared table; that instance runs normally
    afterwards (its flag does not outlive the run)."""
    import threading

    opts = CompileOptions(cache=False, opt_level=1, interruptible=True)
    a = native.compile(decode(wat_to_wasm(SPINNER)), None, opts).instantiate()
    b = native.compile(decode(wat_to_wasm(CALLER)), None,
                       opts).instantiate(imports={"a": {"tab": a.export("tab")}})
    done = threading.Event()
    lib = native.rt.lib

    def poke() -> None:
        while not done.wait(0.05):
            ctx = b._ctx
            if ctx is not None:
                lib.rt_interrupt(ctx)

    threading.Thread(target=poke, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            b.call("go", 0)
    finally:
        done.set()
    assert a._ctx.interrupt == 1  # it reached A's flag
    assert b._ctx.callee == native.rt.ffi.NULL  # the crossing was undone by the trap
    b.call("go", 1)  # a loop header in A: the old flag is gone
    assert a._ctx.interrupt == 0
    b.close()
    a.close()

