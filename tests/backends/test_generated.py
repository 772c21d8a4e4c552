"""Instrumented ≡ original on random valid modules (probes.testing).

Every exported function is called with random arguments on plain wasmtime and
under a random selection of monitors; results (bit for bit), traps and the
final contents of exported memories and globals must be identical.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.backends.base import TABLE_ELEMENTS_LIMIT, CompileOptions
from probes.ir import Module, ProbesError, Trap, decode, encode
from probes.ir.module import Export
from probes.monitors import available, create
from probes.probeset import ProbeSet
from probes.testing import modules

MONITORS = sorted(set(available()) - {"timeout", "profile"})


def _arg(t: str, x: int) -> Any:
    if t == "i32":
        return (x & 0xFFFFFFFF) - (1 << 32 if x & 0x80000000 else 0)
    if t == "i64":
        return (x & (2**64 - 1)) - (1 << 64 if x & (1 << 63) else 0)
    if t in ("f32", "f64"):
        return float(x % 1000) / 7.0
    return None


def _norm(v: Any) -> Any:
    """Results compared bit for bit (NaN payloads included)."""
    if isinstance(v, float):
        return ("f", struct.pack("<d", v)) if not math.isnan(v) else ("nan",
                                                                       struct.pack("<d", v))
    if isinstance(v, (list, tuple)):
        return tuple(_norm(x) for x in v)
    if isinstance(v, (int, type(None))):
        return v
    return type(v).__name__  # references: compare kind only


def _plain(wasm: bytes, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_limits(table_elements=TABLE_ELEMENTS_LIMIT)  # as the backends do
    out: list[Any] = []
    try:
        inst = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
    except wasmtime.Trap as t:
        return [("start-trap", t.trap_code.name if t.trap_code else "?")]
    ex = inst.exports(store)
    for name, args in calls:
        try:
            out.append(("ok", _norm(ex[name](store, *args))))
        except wasmtime.Trap as t:
            out.append(("trap", t.trap_code.name if t.trap_code else "?"))
        except wasmtime.WasmtimeError:  # e.g. a table.grow the host cannot allocate
            out.append(("error", None))
    out.append(_state(ex, store))
    return out


def _state(ex: Any, store: Any) -> Any:
    state = []
    for name, item in sorted(ex.items(), key=lambda kv: kv[0]):
        if name.startswith("__probes"):
            continue
        if isinstance(item, wasmtime.Memory):
            state.append((name, bytes(item.read(store, 0, item.data_len(store)))))
        elif isinstance(item, wasmtime.Global):
            state.append((name, _norm(item.value(store))))
    return ("state", tuple(state))


def _export_everything(m: Module) -> bytes:
    """Export every function, memory and global, so all of them are compared."""
    taken = {e.name for e in m.exports}
    have = {(e.kind, e.index) for e in m.exports}
    spaces = [("func", m.num_funcs), ("memory", len(m.all_memories())),
              ("global", len(m.all_globals()))]
    for kind, n in spaces:
        for i in range(n):
            name = f"x_{kind}{i}"
            if (kind, i) not in have and name not in taken:
                m.exports.append(Export(name, kind, i))
    return encode(m)


GENERATED = modules(imports=False, fuel=300, simd=False).filter(
    lambda m: bool(m.functions)).map(_export_everything)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.filter_too_much])
@given(wasm=GENERATED,
       monitors=st.lists(st.sampled_from(MONITORS), min_size=1, max_size=4, unique=True),
       seeds=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=3))
def test_instrumented_equals_original(wasm: bytes, monitors: list[str], seeds: list[int]
                                      ) -> None:
    m = decode(wasm)
    calls = []
    for e in m.exports:
        if e.kind != "func":
            continue
        params = m.func_type(e.index).params
        if any(p.name not in ("i32", "i64", "f32", "f64") for p in params):
            continue
        for seed in seeds:
            calls.append((e.name, tuple(_arg(p.name, seed >> (7 * i))
                                        for i, p in enumerate(params))))
    expected = _plain(wasm, calls)

    from probes.backends.base import get_backend
    probes = ProbeSet(m)
    for name in monitors:
        create(name).attach(m, probes)
    exe = get_backend("wasm").compile(m, probes, CompileOptions(cache=False))
    got: list[Any] = []
    try:
        inst = exe.instantiate()
    except Trap as t:
        assert expected[0][0] == "start-trap", (monitors, t)
        return
    except ProbesError as e:  # pragma: no cover - shows the failing module
        raise AssertionError(f"{monitors}: {e}") from None
    for name, args in calls:
        try:
            got.append(("ok", _norm(inst.call(name, *args))))
        except Trap as t:
            got.append(("trap", t.kind))
        except ProbesError:
            got.append(("error", None))
    got.append(_state(inst._exports, inst.store))
    # Traps: compare kinds through the shared spec names.
    from probes.backends.wasm.runner import TRAP_KINDS
    expected = [(k, TRAP_KINDS.get(v, v)) if k == "trap" else (k, v) for k, v in expected]
    assert got == expected, monitors


def test_the_generated_comparison_is_not_vacuous() -> None:
    """The strategy above yields modules with calls to compare."""
    from hypothesis import find

    def busy(wasm: bytes) -> bool:
        m = decode(wasm)
        return sum(1 for e in m.exports if e.kind == "func") >= 2 and any(
            len(f.instrs) > 8 for f in m.functions)

    found = find(GENERATED, busy,
                 settings=settings(max_examples=200, database=None))
    assert busy(found)
