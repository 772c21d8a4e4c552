"""Property tests of the decoder, encoder and validator.

- Modules from `probes.testing.modules()` are valid for wasm-tools and
  wasmtime, decode to the model they were built from, re-encode to the
  identical bytes, and pass `validate`.
- Random damage to valid modules (generated ones and the examples) only ever
  raises `ProbesError` subclasses from decode + validate + body decoding, and
  quickly; a damaged module we accept still round-trips byte-identically.
- ``wasm-tools smith`` modules restricted to our proposals round-trip and validate.

``CI`` in the environment derandomizes hypothesis for reproducible runs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from probes.ir import ProbesError, decode, encode, load_bytes, validate
from probes.ir.module import Export, Instr, Module
from probes.ir.opcodes import OPCODES, OpInfo
from probes.ir.types import EXTERNREF, F32, F64, FUNCREF, I32, I64, V128, BlockType, GlobalType
from probes.testing import (
    WASM_TOOLS_FEATURES,
    modules,
    mutated,
    smith_modules,
    valid_modules,
    wasm_tools,
    wasm_tools_print,
    wasm_tools_validate,
)

CI = bool(os.environ.get("CI"))
PROPS = settings(
    max_examples=150,
    deadline=None,
    derandomize=CI,
    database=None if CI else settings().database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
"""The profile of this file: moderate example counts, reproducible in CI."""

QUICK_SECONDS = 2.0
"""Rejecting (or accepting) one damaged module must take less than this."""

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in [*REPO.glob("examples/*.wasm"), *REPO.glob("examples/*.wat")]
                  if p.stat().st_size < 100_000)

needs_wasm_tools = pytest.mark.skipif(wasm_tools() is None, reason="wasm-tools is not installed")


def _shape(m: Module) -> list[object]:
    """Everything a module says, as comparable values (instructions by op and immediate)."""
    def instrs(seq: object) -> list[tuple[object, object]]:
        return [(i.op, i.imm) for i in seq]  # type: ignore[attr-defined]

    return [
        m.types, m.imports, m.tables, m.memories, m.exports, m.start, m.data_count,
        [(g.type, instrs(g.init)) for g in m.globals],
        [(e.mode, e.elem_type, e.funcs, e.exprs and [instrs(x) for x in e.exprs], e.table,
          e.offset and instrs(e.offset)) for e in m.elems],
        [(d.mode, d.init, d.memory, d.offset and instrs(d.offset)) for d in m.datas],
        [(f.index, f.type_index, f.local_groups, instrs(f.instrs)) for f in m.functions],
        [(c.name, c.data) for c in m.customs],
    ]


# --- generated modules -------------------------------------------------------------------

@PROPS
@given(modules())
def test_generated_modules_roundtrip(m: Module) -> None:
    data = encode(m)
    decoded = decode(data)
    assert _shape(decoded) == _shape(m)
    assert encode(decoded) == data
    validate(decoded)
    assert encode(decoded, verbatim=False) == data
    for f in decoded.functions:
        f.replace_body(f.instrs)
    assert encode(decoded) == data


@needs_wasm_tools
@PROPS
@given(valid_modules())
def test_generated_modules_are_valid(wasmtime_engine: Any, data: bytes) -> None:
    import wasmtime

    error = wasm_tools_validate(data, WASM_TOOLS_FEATURES)
    assert error is None, error
    wasmtime.Module(wasmtime_engine, data)


@settings(PROPS, max_examples=20)
@given(valid_modules(fuel=50, simd=False, multi_memory=False))
def test_generated_with_fuel(data: bytes) -> None:
    m = decode(data)
    validate(m)
    assert encode(m) == data


@settings(PROPS, max_examples=40)
@given(valid_modules(fuel=200, imports=False, simd=False))
def test_fuel_bounds_execution(wasmtime_engine: Any, data: bytes) -> None:
    """With ``fuel`` every export returns or traps: no generated loop runs forever."""
    import wasmtime

    from probes.backends.base import TABLE_ELEMENTS_LIMIT

    store = wasmtime.Store(wasmtime_engine)
    store.set_limits(table_elements=TABLE_ELEMENTS_LIMIT)  # a table.grow may ask for GBs
    try:
        instance = wasmtime.Instance(store, wasmtime.Module(wasmtime_engine, data), [])
    except wasmtime.Trap:
        return  # the start function trapped
    zero = {"i32": 0, "i64": 0, "f32": 0.0, "f64": 0.0}
    for item in instance.exports(store).values():
        if isinstance(item, wasmtime.Func):
            params = item.type(store).params
            args = [zero.get(str(p), None) for p in params]
            try:
                item(store, *args)
            except wasmtime.Trap:
                pass


@pytest.fixture(scope="module")
def wasmtime_engine() -> Any:
    wasmtime = pytest.importorskip("wasmtime")
    return wasmtime.Engine()


def test_generated_modules_are_small_and_fast() -> None:
    sizes: list[int] = []
    times: list[float] = []

    @settings(PROPS, max_examples=50)
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        start = time.perf_counter()
        sizes.append(len(data.draw(valid_modules())))
        times.append(time.perf_counter() - start)

    draw()
    assert max(sizes) < 64_000
    assert sorted(times)[len(times) // 2] < 0.05, "median generation time over 50 ms"


# --- damaged modules ----------------------------------------------------------------------

def _judge(data: bytes) -> bool:
    """Decode, validate and decode every body; only ProbesError may escape. True if accepted."""
    start = time.perf_counter()
    try:
        m = decode(data)
        validate(m)
        for f in m.functions:
            f.instrs  # noqa: B018
    except ProbesError as e:
        assert str(e)
        event(f"rejected: {type(e).__name__}")
        accepted = False
    else:
        event("accepted")
        assert encode(m) == data, "an accepted module must round-trip"
        accepted = True
    elapsed = time.perf_counter() - start
    assert elapsed < QUICK_SECONDS, f"took {elapsed:.2f} s"
    return accepted


@PROPS
@given(mutated(valid_modules()))
def test_damaged_generated_modules(data: bytes) -> None:
    _judge(data)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_damaged_examples(path: Path) -> None:
    original = load_bytes(path)

    @settings(PROPS, max_examples=40)
    @given(mutated(original, max_edits=3))
    def run(data: bytes) -> None:
        _judge(data)

    run()


@needs_wasm_tools
@settings(PROPS, max_examples=100)
@given(mutated(st.one_of(valid_modules(), smith_modules()), max_edits=2))
def test_damaged_modules_agree_with_wasm_tools(data: bytes) -> None:
    """What we accept wasm-tools accepts, and the other way round."""
    ours = _judge(data)
    theirs = wasm_tools_validate(data, WASM_TOOLS_FEATURES)
    assert ours == (theirs is None), f"probes accepts: {ours}; wasm-tools says: {theirs}"


# Well-formed damage: one instruction or one module-level index changed, so the
# result still decodes and mostly fails validation; probes and wasm-tools must agree.

_BY_IMM: dict[str, list[OpInfo]] = {}
for _op in OPCODES:
    _BY_IMM.setdefault(_op.imm, []).append(_op)
_VALTYPES = (I32, I64, F32, F64, V128, FUNCREF, EXTERNREF)


def _other_imm(draw: st.DrawFn, m: Module, kind: str, imm: Any) -> Any:
    small = st.integers(0, 6)
    if kind in ("local", "label", "global", "func", "table", "mem", "data", "elem"):
        return draw(small)
    if kind == "memarg" or kind == "memarg_lane":
        new = (draw(st.integers(0, 6)), imm[1], draw(st.integers(0, 3)))
        return new + imm[3:] if kind == "memarg_lane" else new
    if kind == "block":
        if draw(st.booleans()):
            return BlockType(type_index=draw(st.integers(0, len(m.types) + 1)))
        return BlockType(result=draw(st.sampled_from((None, *_VALTYPES))))
    if kind == "br_table":
        return (tuple(draw(st.lists(small, max_size=3))), draw(small))
    if kind in ("call_ind", "mem2", "table2", "data_mem", "elem_table"):
        return (draw(small), draw(small))
    if kind == "select_t":
        return tuple(draw(st.lists(st.sampled_from(_VALTYPES), max_size=2)))
    if kind == "heap":
        return draw(st.sampled_from((FUNCREF, EXTERNREF)))
    if kind == "lane":
        return draw(st.integers(0, 20))
    return imm


@st.composite
def _miswired(draw: st.DrawFn) -> bytes:
    m = draw(modules())
    bodies = [f for f in m.functions if len(f.instrs) > 1]
    in_body = draw(st.integers(0, 4)) > 0
    if bodies and in_body:
        f = draw(st.sampled_from(bodies))
        instrs = list(f.instrs)
        i = draw(st.integers(0, len(instrs) - 2))  # keep the final end
        ins = instrs[i]
        how = draw(st.sampled_from(("op", "imm", "delete", "duplicate")))
        if how == "op":
            instrs[i] = Instr(draw(st.sampled_from(_BY_IMM[ins.op.imm])), ins.imm)
        elif how == "imm":
            instrs[i] = Instr(ins.op, _other_imm(draw, m, ins.op.imm, ins.imm))
        elif how == "delete":
            del instrs[i]
        else:
            instrs.insert(i, ins)
        f.replace_body(instrs)
        return encode(m)
    how = draw(st.sampled_from(("export", "start", "global", "func type", "data count")))
    if how == "export" and m.exports:
        e = m.exports[0]
        m.exports[0] = Export(e.name, e.kind, draw(st.integers(0, 6)))
    elif how == "start":
        m.start = draw(st.integers(0, 6))
    elif how == "global" and m.globals:
        g = m.globals[0]
        t = GlobalType(draw(st.sampled_from(_VALTYPES)), g.type.mutable)
        m.globals[0] = dataclasses.replace(g, type=t)
    elif how == "func type" and m.functions:
        m.functions[0].type_index = draw(st.integers(0, len(m.types)))
    elif how == "data count":
        m.data_count = draw(st.integers(0, 4))
    return encode(m)


@needs_wasm_tools
@settings(PROPS, max_examples=200)
@given(_miswired())
def test_miswired_modules_agree_with_wasm_tools(data: bytes) -> None:
    """One wrong index, type or opcode: probes rejects exactly what wasm-tools rejects."""
    ours = _judge(data)
    theirs = wasm_tools_validate(data, WASM_TOOLS_FEATURES)
    assert ours == (theirs is None), f"probes accepts: {ours}; wasm-tools says: {theirs}"


# --- wasm-smith ---------------------------------------------------------------------------

@needs_wasm_tools
@settings(PROPS, max_examples=100)
@given(smith_modules())
def test_smith_modules(data: bytes) -> None:
    m = decode(data)
    validate(m)
    assert encode(m) == data
    for f in m.functions:
        f.replace_body(f.instrs)
    out = encode(m)
    if out != data:  # smith may pad LEBs; the re-encoding must mean the same
        assert wasm_tools_validate(out, WASM_TOOLS_FEATURES) is None
        assert wasm_tools_print(out) == wasm_tools_print(data)
