"""Which WebAssembly proposals a module uses.

Instructions name their proposal in the opcode table (`OpInfo.feature`);
the rest is module-level evidence: types, segments, imports and exports.

    >>> features_used(probes.load("examples/multi.wat"))
    {'mvp', 'multi-value', 'reference-types', 'bulk-memory'}
"""

from __future__ import annotations

from collections.abc import Iterable

from .module import Instr, Module
from .types import EXTERNREF, FUNCREF, V128, BlockType, FuncType, GlobalType, ValType

__all__ = ["FEATURES", "features_used"]

FEATURES: tuple[str, ...] = (
    "mvp", "mutable-globals", "sign-extension", "saturating-float-to-int", "multi-value",
    "bulk-memory", "reference-types", "multi-memory", "simd",
)
"""Every feature name `features_used` can report, in a stable display order."""


def _types_features(types: Iterable[ValType], found: set[str]) -> None:
    for t in types:
        if t is V128:
            found.add("simd")
        elif t is FUNCREF or t is EXTERNREF:
            found.add("reference-types")


def _functype_features(ft: FuncType, found: set[str]) -> None:
    if len(ft.results) > 1:
        found.add("multi-value")
    _types_features(ft.params, found)
    _types_features(ft.results, found)


def _instrs_features(m: Module, instrs: Iterable[Instr], found: set[str]) -> None:
    for ins in instrs:
        op = ins.op
        found.add(op.feature)
        kind = op.imm
        if kind == "block":
            bt: BlockType = ins.imm
            if bt.type_index is not None and bt.type_index < len(m.types):
                ft = m.types[bt.type_index]
                if ft.params or len(ft.results) > 1:
                    found.add("multi-value")
                _types_features(ft.params + ft.results, found)
            elif bt.result is not None:
                _types_features((bt.result,), found)
        elif kind == "select_t":
            _types_features(ins.imm, found)
        elif kind in ("memarg", "memarg_lane") and ins.imm[2] != 0 or kind == "mem" and ins.imm != 0:
            found.add("multi-memory")
        elif kind in ("mem2", "data_mem"):
            mems = ins.imm if kind == "mem2" else ins.imm[1:]
            if any(mems):
                found.add("multi-memory")
        elif kind == "call_ind" and ins.imm[1] != 0:
            found.add("reference-types")


def features_used(m: Module) -> set[str]:
    """The set of proposals (names as in `FEATURES`) the module relies on.

    Decodes every function body; a malformed body raises `DecodeError`.
    Always contains ``"mvp"``.
    """
    found = {"mvp"}
    for ft in m.types:
        _functype_features(ft, found)

    # Imports and exports.
    for imp in m.imports:
        if imp.kind == "global":
            assert isinstance(imp.desc, GlobalType)
            if imp.desc.mutable:
                found.add("mutable-globals")
            _types_features((imp.desc.valtype,), found)
        elif imp.kind == "table" and getattr(imp.desc, "elem", FUNCREF) is not FUNCREF:
            found.add("reference-types")
    all_globals = m.all_globals()
    for e in m.exports:
        if e.kind == "global" and e.index < len(all_globals) and all_globals[e.index].mutable:
            found.add("mutable-globals")

    # Tables, memories, globals.
    tables = m.all_tables()
    if len(tables) > 1 or any(t.elem is not FUNCREF for t in tables):
        found.add("reference-types")
    if len(m.all_memories()) > 1:
        found.add("multi-memory")
    for g in m.globals:
        _types_features((g.type.valtype,), found)
        _instrs_features(m, g.init, found)

    # Segments.
    for el in m.elems:
        if el.mode == "passive":
            found.add("bulk-memory")
        elif el.mode == "declarative":
            found.add("reference-types")
        if el.exprs is not None:
            found.add("bulk-memory")
            for expr in el.exprs:
                _instrs_features(m, expr, found)
        if el.table != 0 or el.elem_type is not FUNCREF:
            found.add("reference-types")
        if el.offset is not None:
            _instrs_features(m, el.offset, found)
    for d in m.datas:
        if d.mode == "passive":
            found.add("bulk-memory")
        if d.memory != 0:
            found.add("multi-memory")
        if d.offset is not None:
            _instrs_features(m, d.offset, found)
    if m.data_count is not None:
        found.add("bulk-memory")

    # Function bodies.
    for f in m.functions:
        for _, t in f.local_groups:
            _types_features((t,), found)
        _instrs_features(m, f.instrs, found)
    return found
