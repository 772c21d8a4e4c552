"""Binary encoder.

Copies untouched parts verbatim: a standard section whose model contents are
unchanged since decoding is re-emitted from its original bytes, and so is a
function body nobody replaced. Everything else is encoded from the model,
with minimal LEB128s.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .decoder import MAGIC, VERSION
from .errors import DecodeError
from .leb import read_u32, s32, s33, s64, u32
from .module import (
    EXTERN_KINDS,
    SECTION_ORDER,
    CustomSection,
    Data,
    Elem,
    Function,
    Global,
    Instr,
    Module,
    section_key,
)
from .opcodes import OPCODES, OpInfo
from .types import BlockType, FuncType, GlobalType, Limits, TableType, ValType

__all__ = ["encode", "encode_instrs", "encode_instrs_with_offsets", "encode_locals",
           "encode_body", "encode_section"]

_F32 = struct.Struct("<I")
_F64 = struct.Struct("<Q")
_OP_BYTES: dict[OpInfo, bytes] = {
    op: bytes((op.code,)) if op.prefix is None else bytes((op.prefix,)) + u32(op.code)
    for op in OPCODES
}


def _vec(items: Sequence[Any], enc: Callable[[Any], bytes]) -> bytes:
    return u32(len(items)) + b"".join(enc(x) for x in items)


def _name(s: str) -> bytes:
    b = s.encode("utf-8")
    return u32(len(b)) + b


def _limits(lim: Limits) -> bytes:
    if lim.max is None:
        return b"\x00" + u32(lim.min)
    return b"\x01" + u32(lim.min) + u32(lim.max)


def _valtype(t: ValType) -> bytes:
    return bytes((t.code,))


def _table_type(t: TableType) -> bytes:
    return _valtype(t.elem) + _limits(t.limits)


def _global_type(t: GlobalType) -> bytes:
    return _valtype(t.valtype) + (b"\x01" if t.mutable else b"\x00")


def _blocktype(bt: BlockType) -> bytes:
    if bt.type_index is not None:
        return s33(bt.type_index)
    return b"\x40" if bt.result is None else _valtype(bt.result)


def _memarg(ma: tuple[int, ...]) -> bytes:
    align, offset, mem = ma[0], ma[1], ma[2]
    if mem:
        return u32(align | 0x40) + u32(mem) + u32(offset)
    return u32(align) + u32(offset)


def _imm(kind: str, imm: Any) -> bytes:
    if not kind:
        return b""
    if kind in ("local", "label", "global", "func", "table", "mem", "data", "elem"):
        return u32(imm)
    if kind == "memarg":
        return _memarg(imm)
    if kind == "i32":
        return s32(imm)
    if kind == "i64":
        return s64(imm)
    if kind == "block":
        return _blocktype(imm)
    if kind == "br_table":
        labels, default = imm
        return u32(len(labels)) + b"".join(u32(x) for x in labels) + u32(default)
    if kind in ("call_ind", "mem2", "table2", "data_mem", "elem_table"):
        return u32(imm[0]) + u32(imm[1])
    if kind == "f32":
        return _F32.pack(imm)
    if kind == "f64":
        return _F64.pack(imm)
    if kind == "select_t":
        return _vec(imm, _valtype)
    if kind == "heap":
        return _valtype(imm)
    if kind in ("v128", "lanes16"):
        return bytes(imm)
    if kind == "lane":
        return bytes((imm,))
    if kind == "memarg_lane":
        return _memarg(imm[:3]) + bytes((imm[3],))
    raise AssertionError(f"immediate kind {kind!r} has no encoder")


_CACHE: dict[tuple[OpInfo, Any], bytes] = {}
_CACHE_LIMIT = 1 << 16


def _instr_bytes(op: OpInfo, imm: Any) -> bytes:
    """One instruction's bytes; the common small ones are memoized."""
    try:
        return _CACHE[(op, imm)]
    except KeyError:
        pass
    except TypeError:  # an unhashable immediate
        return _OP_BYTES[op] + _imm(op.imm, imm)
    out = _OP_BYTES[op] + _imm(op.imm, imm) if op.imm else _OP_BYTES[op]
    if len(_CACHE) < _CACHE_LIMIT:
        _CACHE[(op, imm)] = out
    return out


def encode_instrs(instrs: Iterable[Instr]) -> bytes:
    """The binary form of an instruction sequence."""
    return b"".join([_instr_bytes(ins.op, ins.imm) for ins in instrs])


def encode_instrs_with_offsets(instrs: Sequence[Instr], start: int = 0
                               ) -> tuple[bytes, list[int]]:
    """The bytes of ``instrs`` and the offset of each one (from ``start``)."""
    parts = [_instr_bytes(ins.op, ins.imm) for ins in instrs]
    offsets = []
    pos = start
    for part in parts:
        offsets.append(pos)
        pos += len(part)
    return b"".join(parts), offsets


def encode_locals(groups: Sequence[tuple[int, ValType]]) -> bytes:
    """A body's local declarations."""
    return u32(len(groups)) + b"".join(u32(n) + _valtype(t) for n, t in groups)


def encode_body(func: Function) -> bytes:
    """A function body (locals + code) without its size prefix; verbatim if untouched."""
    if func.raw is not None:
        return func.raw
    return encode_locals(func.local_groups) + encode_instrs(func.instrs)


def _func_type(t: FuncType) -> bytes:
    return b"\x60" + _vec(t.params, _valtype) + _vec(t.results, _valtype)


def _import(imp: Any) -> bytes:
    kind = EXTERN_KINDS.index(imp.kind)
    head = _name(imp.module) + _name(imp.name) + bytes((kind,))
    d = imp.desc
    if imp.kind == "func":
        return head + u32(d)
    if imp.kind == "table":
        return head + _table_type(d)
    if imp.kind == "memory":
        return head + _limits(d.limits)
    return head + _global_type(d)


def _global(g: Global) -> bytes:
    return _global_type(g.type) + encode_instrs(g.init)


def _elem(e: Elem) -> bytes:
    flags = e.flags
    # Choose the most compact variant that can express the segment when the
    # kept flags no longer fit (e.g. a new segment built with defaults).
    uses_exprs = e.exprs is not None
    if bool(flags & 4) != uses_exprs or (e.mode == "active") == bool(flags & 1):
        flags = 4 if uses_exprs else 0
        if e.mode == "passive":
            flags |= 1
        elif e.mode == "declarative":
            flags |= 3
        elif e.table != 0 or e.elem_type.code != 0x70:
            flags |= 2
    out = bytearray(u32(flags))
    if not flags & 1:
        if flags & 2:
            out += u32(e.table)
        out += encode_instrs(e.offset or ())
    if flags & 3:
        out += _valtype(e.elem_type) if flags & 4 else b"\x00"
    if uses_exprs:
        out += u32(len(e.exprs or ())) + b"".join(encode_instrs(x) for x in e.exprs or ())
    else:
        out += _vec(e.funcs or (), u32)
    return bytes(out)


def _data(d: Data) -> bytes:
    if d.mode == "passive":
        head = b"\x01"
    elif d.memory != 0 or d.flags == 2:
        head = b"\x02" + u32(d.memory) + encode_instrs(d.offset or ())
    else:
        head = b"\x00" + encode_instrs(d.offset or ())
    return head + u32(len(d.init)) + d.init


def _code(m: Module) -> bytes:
    parts = [u32(len(m.functions))]
    for f in m.functions:
        body = encode_body(f)
        parts.append(u32(len(body)))
        parts.append(body)
    return b"".join(parts)


def encode_section(m: Module, sid: int) -> bytes | None:
    """The payload of standard section ``sid`` from the model (None: omit it)."""
    if sid == 1:
        return _vec(m.types, _func_type) if m.types else None
    if sid == 2:
        return _vec(m.imports, _import) if m.imports else None
    if sid == 3:
        return _vec([f.type_index for f in m.functions], u32) if m.functions else None
    if sid == 4:
        return _vec(m.tables, _table_type) if m.tables else None
    if sid == 5:
        return _vec(m.memories, lambda mt: _limits(mt.limits)) if m.memories else None
    if sid == 6:
        return _vec(m.globals, _global) if m.globals else None
    if sid == 7:
        return _vec(m.exports, lambda e: _name(e.name) + bytes((EXTERN_KINDS.index(e.kind),))
                    + u32(e.index)) if m.exports else None
    if sid == 8:
        return None if m.start is None else u32(m.start)
    if sid == 9:
        return _vec(m.elems, _elem) if m.elems else None
    if sid == 12:
        return None if m.data_count is None else u32(m.data_count)
    if sid == 10:
        return _code(m) if m.functions else None
    if sid == 11:
        return _vec(m.datas, _data) if m.datas else None
    raise ValueError(f"no section {sid}")


def _section(sid: int, payload: bytes, size_leb: bytes = b"") -> bytes:
    return bytes((sid,)) + _leb_as_read(size_leb, len(payload)) + payload


def _leb_as_read(leb: bytes, value: int) -> bytes:
    """``leb`` (an original, maybe padded, LEB128) while it still says ``value``."""
    if leb:
        try:
            if read_u32(leb, 0, len(leb)) == (value, len(leb)):
                return leb
        except DecodeError:
            pass
    return u32(value)


def encode(m: Module, *, verbatim: bool = True) -> bytes:
    """Encode a module. With ``verbatim`` (the default) unchanged sections and
    bodies are copied from the decoded bytes; otherwise everything but function
    bodies is encoded from the model (bodies still follow `Function.raw`)."""
    out = bytearray(MAGIC + VERSION)
    customs_after: dict[int, list[CustomSection]] = {}
    for c in m.customs:
        customs_after.setdefault(c.after, []).append(c)

    def emit_customs(after: int) -> None:
        for c in customs_after.pop(after, ()):
            size_leb, name_leb = c.lebs if verbatim else (b"", b"")
            name = c.name.encode("utf-8")
            out.extend(_section(0, _leb_as_read(name_leb, len(name)) + name + c.data, size_leb))

    emit_customs(0)
    for sid in SECTION_ORDER:
        raw = m.raw_sections.get(sid)
        size_leb = b""
        if verbatim and raw is not None and section_key(m, sid) == raw.snapshot:
            payload: bytes | None = raw.payload
            size_leb = raw.size_leb
        else:
            payload = encode_section(m, sid)
            if payload is None and raw is not None:
                payload = encode_section_forced(m, sid)
        if payload is not None:
            out.extend(_section(sid, payload, size_leb))
        emit_customs(sid)
    for after in sorted(customs_after):  # anchors to sections that no longer exist
        emit_customs(after)
    return bytes(out)


def encode_section_forced(m: Module, sid: int) -> bytes | None:
    """A section the original had, kept even when empty (e.g. ``(type)`` with no
    entries), so re-encoding does not drop it."""
    if sid in (8, 12):
        return None
    return u32(0)

