"""Where a trap wasmtime reported at one instruction happened (`trap_sites`), on
instruction lists: the patterns Cranelift produces are in
tests/native/test_differential.py (FUSED), run on both backends; these cover the
walks themselves, including the cases no small program reproduces."""

from __future__ import annotations

from probes.backends.wasm.trap_sites import folded_unreachable, memory_site
from probes.ir import Instr

from ..conftest import module_from_wat

HEAD = "(module (table 1 funcref) (memory 1) (memory 0 0) (global $r (mut externref) " \
       "(ref.null extern)) (func $f (param i32) (result i32) (local i32)"


def _body(text: str) -> list[Instr]:
    return module_from_wat(f"{HEAD} {text}))").function(0).instrs


def _at(body: list[Instr], name: str, nth: int = 0) -> int:
    return [k for k, ins in enumerate(body) if ins.op.name == name][nth]


def _sizes(index: int) -> int | None:
    """Memory 0 has one page, memory 1 none."""
    return 0 if index == 1 else 65536


def _unknown(index: int) -> int | None:
    return None


def test_the_access_after_a_table_get() -> None:
    body = _body("(i32.load16_u 1 offset=5 (ref.is_null (table.get 0 (local.get 0))))")
    reported = _at(body, "table.get")
    assert memory_site(body, reported, _sizes) == _at(body, "i32.load16_u")
    assert memory_site(body, reported, _unknown) == _at(body, "i32.load16_u")


def test_a_load_from_a_constant_address_out_of_bounds_feeding_another() -> None:
    for address, trapped in ((65533, "i32.load"), (65532, "i64.load"), (-4, "i32.load")):
        body = _body(f"(drop (i64.load offset=2 (i32.load (i32.const {address})))) "
                     "(local.get 0)")
        assert memory_site(body, _at(body, "i64.load"), _sizes) == _at(body, trapped)
        # the size unknown: it stays
        assert memory_site(body, _at(body, "i64.load"), _unknown) == _at(body, "i64.load")
    body = _body("(drop (i64.load (i32.load (local.get 0)))) (local.get 0)")
    assert memory_site(body, _at(body, "i64.load"), _sizes) == _at(body, "i64.load")


def test_an_earlier_access_to_the_same_address_that_reaches_as_far() -> None:
    body = _body("(i32.store offset=4 (local.get 0) (i32.const 1)) "
                 "(i32.store (local.get 0) (i32.const 2)) (local.get 0)")
    first, second = _at(body, "i32.store"), _at(body, "i32.store", 1)
    assert memory_site(body, second, _sizes) == first
    # it ends before the reported one does
    body = _body("(i32.store (local.get 0) (i32.const 1)) "
                 "(i32.store offset=4 (local.get 0) (i32.const 2)) (local.get 0)")
    second = _at(body, "i32.store", 1)
    assert memory_site(body, second, _sizes) == second
    # the address is another value: the local was written between, through a
    # `table.get` the producer walk does not see past
    body = _body("(i32.store (local.get 0) (i32.const 1)) (local.set 0 (i32.const 8)) "
                 "(drop (table.get 0 (i32.const 0))) (i32.store (local.get 0) (i32.const 2)) "
                 "(local.get 0)")
    second = _at(body, "i32.store", 1)
    assert memory_site(body, second, _sizes) == second
    # the same local read through a computed value, and a constant
    for address in ("(i32.add (local.get 0) (i32.const 4))", "(i32.const 65534)"):
        body = _body(f"(local.set 1 {address}) (i64.store (local.get 1) (i64.const 1)) "
                     f"(i32.store (local.get 1) (i32.const 2)) (local.get 0)")
        assert memory_site(body, _at(body, "i32.store"), _sizes) == _at(body, "i64.store")


def test_an_access_after_a_branch_is_not_taken_for_the_reported_one() -> None:
    body = _body("(drop (table.get 0 (local.get 0))) (br_if 0 (i32.const 0) (local.get 0)) "
                 "(i32.load 1 (i32.const 0))")
    reported = _at(body, "table.get")
    assert memory_site(body, reported, _sizes) == reported


def test_the_first_access_to_an_empty_memory_before_the_reported_one() -> None:
    body = _body("(i64.load8_u (i32.load 1 offset=5 (i32.const 0))) drop "
                 "(i32.load (local.get 0))")
    second = _at(body, "i64.load8_u")
    assert memory_site(body, second, _sizes) == _at(body, "i32.load")
    # no memory empty: the load stays where it was reported
    last = _at(body, "i32.load", 1)
    assert memory_site(body, last, lambda _: 65536) == last
    assert memory_site(body, last, _sizes) == _at(body, "i32.load")


def test_an_access_before_a_call_is_not_taken() -> None:
    body = _body("(drop (i32.load 1 (i32.const 0))) (drop (call $f (i32.const 0))) "
                 "(i32.load (local.get 0))")
    last = _at(body, "i32.load", 1)
    assert memory_site(body, last, _sizes) == last


def test_an_unreachable_after_an_externref_global_access() -> None:
    body = _body("(global.set $r (ref.null extern)) (drop (global.get $r)) unreachable")
    for reported in (_at(body, "global.set"), _at(body, "global.get")):
        assert folded_unreachable(body, reported) == _at(body, "unreachable")


def test_an_unreachable_after_a_table_grow() -> None:
    body = _body("(local.set 1 (select (table.grow 0 (ref.null func) (i32.const 3)) "
                 "(local.tee 0 (i32.div_u (i32.const 1) (local.get 0))) (local.get 0))) "
                 "(block unreachable) (local.get 0)")
    assert folded_unreachable(body, _at(body, "table.grow")) == _at(body, "unreachable")


def test_no_unreachable_past_a_call_or_a_branch() -> None:
    for between in ("(drop (call $f (i32.const 0)))", "(br_if 0 (i32.const 0) (local.get 0)) drop"):
        body = _body(f"(drop (global.get $r)) {between} unreachable")
        reported = _at(body, "global.get")
        assert folded_unreachable(body, reported) == reported
