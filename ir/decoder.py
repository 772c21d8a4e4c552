"""Binary decoder.

Defensive by construction: every count and length is checked against the
bytes that remain before anything is allocated, so malformed input raises
`DecodeError` with the offending byte offset and never hangs or allocates
without bound. Function bodies are decoded on first use.
"""

from __future__ import annotations

import struct
from typing import Any

from ._gc import gc_paused
from .errors import DecodeError, UnsupportedFeature
from .leb import read_s32, read_s33, read_s64, read_u32
from .module import (
    EXTERN_KINDS,
    CustomSection,
    Data,
    Elem,
    Export,
    Function,
    Global,
    Import,
    Instr,
    Module,
    RawSection,
    section_key,
)
from .opcodes import PREFIXED, REJECTED, REJECTED_SIMD_RANGE, SINGLE, OpInfo
from .types import (
    EMPTY_BLOCK,
    FUNCREF,
    VALTYPES,
    BlockType,
    FuncType,
    GlobalType,
    Limits,
    MemoryType,
    TableType,
    ValType,
)

__all__ = ["decode", "decode_body", "MAGIC", "VERSION"]

MAGIC = b"\0asm"
VERSION = b"\x01\0\0\0"

# Value-type bytes of proposals we reject, and what they belong to.
_REJECTED_TYPES = {0x64: "function-references", 0x63: "function-references",
                   **{b: "gc" for b in range(0x65, 0x6F)}, 0x69: "exceptions",
                   0x71: "gc", 0x72: "gc", 0x73: "gc", 0x74: "exceptions"}
_BLOCK_TYPES = {code: BlockType(result=t) for code, t in VALTYPES.items()}
_F32 = struct.Struct("<I")
_F64 = struct.Struct("<Q")
_MAX_LOCALS = 0xFFFFFFFF


def _valtype(data: bytes, pos: int, end: int) -> tuple[ValType, int]:
    if pos >= end:
        raise DecodeError("unexpected end", pos)
    b = data[pos]
    t = VALTYPES.get(b)
    if t is not None:
        return t, pos + 1
    if b in _REJECTED_TYPES:
        raise UnsupportedFeature(_REJECTED_TYPES[b], pos, f"value type 0x{b:02x}")
    raise DecodeError(f"malformed value type 0x{b:02x}", pos)


def _reftype(data: bytes, pos: int, end: int) -> tuple[ValType, int]:
    t, p = _valtype(data, pos, end)
    if not t.is_ref:
        raise DecodeError("malformed reference type", pos)
    return t, p


def _count(data: bytes, pos: int, end: int, min_size: int = 1) -> tuple[int, int]:
    """A vector length, checked against what the remaining bytes could hold."""
    n, p = read_u32(data, pos, end)
    if n * min_size > end - p:
        raise DecodeError(f"vector length {n} exceeds the remaining {end - p} bytes", pos)
    return n, p


def _name(data: bytes, pos: int, end: int) -> tuple[str, int]:
    n, p = read_u32(data, pos, end)
    if n > end - p:
        raise DecodeError("unexpected end: name longer than its section", pos)
    try:
        return bytes(data[p:p + n]).decode("utf-8"), p + n
    except UnicodeDecodeError:
        raise DecodeError("malformed UTF-8 encoding", p) from None


def _limits(data: bytes, pos: int, end: int, what: str) -> tuple[Limits, int]:
    if pos >= end:
        raise DecodeError("unexpected end", pos)
    flags = data[pos]
    pos += 1
    if flags & 0x04 and flags < 0x08:
        raise UnsupportedFeature(f"{what}64", pos - 1)
    if flags in (0x02, 0x03):
        raise UnsupportedFeature("threads", pos - 1, "shared memory")
    if flags > 0x01:
        raise DecodeError(f"malformed limits flags 0x{flags:02x}", pos - 1)
    lo, pos = read_u32(data, pos, end)
    hi = None
    if flags & 1:
        hi, pos = read_u32(data, pos, end)
    return Limits(lo, hi), pos


def _table_type(data: bytes, pos: int, end: int) -> tuple[TableType, int]:
    elem, pos = _reftype(data, pos, end)
    limits, pos = _limits(data, pos, end, "table")
    return TableType(elem, limits), pos


def _global_type(data: bytes, pos: int, end: int) -> tuple[GlobalType, int]:
    vt, pos = _valtype(data, pos, end)
    if pos >= end:
        raise DecodeError("unexpected end", pos)
    mut = data[pos]
    if mut > 1:
        raise DecodeError("malformed mutability", pos)
    return GlobalType(vt, bool(mut)), pos + 1


class _Context:
    """What body decoding needs to know about the rest of the module."""

    __slots__ = ("data", "has_data_count")

    def __init__(self, data: bytes, has_data_count: bool) -> None:
        self.data = data
        self.has_data_count = has_data_count


def _decode_instrs(ctx: _Context, pos: int, end: int, base: int,
                   const_expr: bool = False) -> tuple[list[Instr], int]:
    """Decode instructions up to the ``end`` that closes depth 0.

    ``base`` is subtracted from byte offsets to give each Instr its pc.
    Returns the instructions and the position after the final ``end``.
    """
    data = ctx.data
    instrs: list[Instr] = []
    append = instrs.append
    single = SINGLE
    depth = 1
    while pos < end:
        start = pos
        b = data[pos]
        pos += 1
        op: OpInfo | None = single[b]
        if op is None:
            op, pos = _prefixed(data, b, pos, end)
        kind = op.imm
        imm: Any
        if not kind:
            imm = None
            if b == 0x0B:
                depth -= 1
                if depth == 0:
                    append(Instr(op, None, start - base))
                    return instrs, pos
        elif kind == "local" or kind == "label" or kind == "global" or kind == "func":
            if pos < end and data[pos] < 0x80:
                imm = data[pos]
                pos += 1
            else:
                imm, pos = read_u32(data, pos, end)
        elif kind == "memarg":
            imm, pos = _memarg(data, pos, end)
        elif kind == "i32":
            if pos < end and data[pos] < 0x40:
                imm = data[pos]
                pos += 1
            else:
                imm, pos = read_s32(data, pos, end)
        elif kind == "block":
            depth += 1
            if pos >= end:
                raise DecodeError("unexpected end", pos)
            bt = data[pos]
            if bt == 0x40:
                imm = EMPTY_BLOCK
                pos += 1
            elif bt in _BLOCK_TYPES:
                imm = _BLOCK_TYPES[bt]
                pos += 1
            elif bt in _REJECTED_TYPES:
                raise UnsupportedFeature(_REJECTED_TYPES[bt], pos, "block type")
            else:
                idx, pos2 = read_s33(data, pos, end)
                if idx < 0:
                    raise DecodeError("malformed block type", pos)
                imm = BlockType(type_index=idx)
                pos = pos2
        elif kind == "i64":
            imm, pos = read_s64(data, pos, end)
        elif kind == "br_table":
            n, pos = _count(data, pos, end)
            labels = []
            for _ in range(n):
                lab, pos = read_u32(data, pos, end)
                labels.append(lab)
            default, pos = read_u32(data, pos, end)
            imm = (tuple(labels), default)
        elif kind == "call_ind":
            ti, pos = read_u32(data, pos, end)
            tab, pos = read_u32(data, pos, end)
            imm = (ti, tab)
        elif kind == "f32":
            if end - pos < 4:
                raise DecodeError("unexpected end", pos)
            imm = _F32.unpack_from(data, pos)[0]
            pos += 4
        elif kind == "f64":
            if end - pos < 8:
                raise DecodeError("unexpected end", pos)
            imm = _F64.unpack_from(data, pos)[0]
            pos += 8
        elif kind == "table" or kind == "mem" or kind == "data" or kind == "elem":
            imm, pos = read_u32(data, pos, end)
            if kind == "data" and not ctx.has_data_count:
                raise DecodeError("data count section required", start)
        elif kind == "mem2" or kind == "table2" or kind == "data_mem" or kind == "elem_table":
            a, pos = read_u32(data, pos, end)
            c, pos = read_u32(data, pos, end)
            imm = (a, c)
            if kind == "data_mem" and not ctx.has_data_count:
                raise DecodeError("data count section required", start)
        elif kind == "select_t":
            n, pos = _count(data, pos, end)
            types = []
            for _ in range(n):
                t, pos = _valtype(data, pos, end)
                types.append(t)
            imm = tuple(types)
        elif kind == "heap":
            if pos >= end:
                raise DecodeError("unexpected end", pos)
            ht = data[pos]
            if ht == 0x70 or ht == 0x6F:
                imm = VALTYPES[ht]
                pos += 1
            elif ht in _REJECTED_TYPES or ht < 0x80:
                raise UnsupportedFeature("function-references" if ht < 0x60 else "gc", pos,
                                         "heap type")
            else:
                raise DecodeError("malformed reference type", pos)
        elif kind == "v128" or kind == "lanes16":
            if end - pos < 16:
                raise DecodeError("unexpected end", pos)
            imm = bytes(data[pos:pos + 16])
            pos += 16
        elif kind == "lane":
            if pos >= end:
                raise DecodeError("unexpected end", pos)
            imm = data[pos]
            pos += 1
        elif kind == "memarg_lane":
            ma, pos = _memarg(data, pos, end)
            if pos >= end:
                raise DecodeError("unexpected end", pos)
            imm = ma + (data[pos],)
            pos += 1
        else:  # pragma: no cover - the table and this function disagree
            raise AssertionError(f"immediate kind {kind!r} of {op.name} has no decoder")
        if const_expr and kind == "block":
            raise DecodeError("constant expression required", start)
        append(Instr(op, imm, start - base))
    raise DecodeError("unexpected end of function body: END opcode expected", pos)


def _prefixed(data: bytes, b: int, pos: int, end: int) -> tuple[OpInfo, int]:
    if b == 0xFC or b == 0xFD:
        sub, pos2 = read_u32(data, pos, end)
        op = PREFIXED[b].get(sub)
        if op is not None:
            return op, pos2
        if b == 0xFD and sub in REJECTED_SIMD_RANGE:
            raise UnsupportedFeature("relaxed-simd", pos - 1)
        raise DecodeError(f"illegal opcode 0x{b:02x} 0x{sub:x}", pos - 1)
    if b in REJECTED:
        raise UnsupportedFeature(REJECTED[b], pos - 1, f"opcode 0x{b:02x}")
    raise DecodeError(f"illegal opcode 0x{b:02x}", pos - 1)


def _memarg(data: bytes, pos: int, end: int) -> tuple[tuple[int, int, int], int]:
    flags, pos = read_u32(data, pos, end)
    mem = 0
    if flags >= 0x80:
        raise DecodeError("malformed memop flags", pos - 1)
    if flags & 0x40:
        flags &= ~0x40
        mem, pos = read_u32(data, pos, end)
    offset, pos = read_u32(data, pos, end)
    return (flags, offset, mem), pos


def decode_body(module_bytes: bytes, start: int, end: int, has_data_count: bool,
                ) -> tuple[list[tuple[int, ValType]], list[Instr]]:
    """Decode one function body (locals + code) spanning ``[start, end)``."""
    data = module_bytes
    n, pos = _count(data, start, end)
    groups: list[tuple[int, ValType]] = []
    total = 0
    for _ in range(n):
        count_pos = pos
        cnt, pos = read_u32(data, pos, end)
        total += cnt
        if total > _MAX_LOCALS:
            raise DecodeError("too many locals", count_pos)
        vt, pos = _valtype(data, pos, end)
        groups.append((cnt, vt))
    instrs, pos = _decode_instrs(_Context(data, has_data_count), pos, end, start)
    if pos != end:
        raise DecodeError("operators remaining after the function's final end", pos)
    return groups, instrs


def _const_expr(ctx: _Context, pos: int, end: int) -> tuple[tuple[Instr, ...], int]:
    instrs, pos = _decode_instrs(ctx, pos, end, 0, const_expr=True)
    return tuple(instrs), pos


def decode(data: bytes | bytearray | memoryview, *, lazy: bool = True) -> Module:
    """Decode a binary module.

    With ``lazy`` (the default) function bodies are decoded on first use, so
    a malformed body raises DecodeError only then; ``validate`` decodes all.
    """
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        raise DecodeError("magic header not detected", 0)
    if len(data) < 8:
        raise DecodeError("unexpected end: missing version", 4)
    if data[4:8] != VERSION:
        if data[4:8] == b"\x0d\0\x01\0":
            raise UnsupportedFeature("component-model", 4, "this is a component, not a module")
        raise DecodeError("unknown binary version", 4)
    m = Module(size=len(data))
    pos = 8
    end = len(data)
    last_id = 0
    order = {sid: i for i, sid in enumerate((1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 10, 11))}
    func_types: list[int] | None = None
    code_ranges: list[tuple[int, int]] | None = None
    has_data_count = False
    pending_datas = False
    while pos < end:
        sec_start = pos
        sid = data[pos]
        size, pos = read_u32(data, pos + 1, end)
        if size > end - pos:
            raise DecodeError("section size mismatch: section extends past the end", sec_start)
        body_end = pos + size
        if sid == 0:
            name, p = _name(data, pos, body_end)
            lebs = (data[sec_start + 1:pos], data[pos:read_u32(data, pos, body_end)[1]])
            m.customs.append(CustomSection(name, data[p:body_end], last_id, lebs))
            pos = body_end
            continue
        if sid == 13:
            raise UnsupportedFeature("exceptions", sec_start, "tag section")
        if sid not in order:
            raise DecodeError(f"malformed section id {sid}", sec_start)
        if last_id and order[sid] <= order[last_id]:
            raise DecodeError(f"unexpected content: {_sec(sid)} section out of order "
                              f"or repeated", sec_start)
        last_id = sid
        ctx = _Context(data, has_data_count)
        p = pos
        if sid == 1:
            n, p = _count(data, p, body_end)
            for _ in range(n):
                if p >= body_end:
                    raise DecodeError("unexpected end", p)
                form = data[p]
                if form != 0x60:
                    if form in (0x4E, 0x50, 0x4F, 0x5F, 0x5E):
                        raise UnsupportedFeature("gc", p, "type definition")
                    raise DecodeError(f"malformed function type 0x{form:02x}", p)
                np_, p = _count(data, p + 1, body_end)
                params = []
                for _ in range(np_):
                    t, p = _valtype(data, p, body_end)
                    params.append(t)
                nr, p = _count(data, p, body_end)
                results = []
                for _ in range(nr):
                    t, p = _valtype(data, p, body_end)
                    results.append(t)
                m.types.append(FuncType(tuple(params), tuple(results)))
        elif sid == 2:
            n, p = _count(data, p, body_end, 3)
            for _ in range(n):
                mod, p = _name(data, p, body_end)
                field, p = _name(data, p, body_end)
                if p >= body_end:
                    raise DecodeError("unexpected end", p)
                kind = data[p]
                p += 1
                desc: Any
                if kind == 0:
                    desc, p = read_u32(data, p, body_end)
                elif kind == 1:
                    desc, p = _table_type(data, p, body_end)
                elif kind == 2:
                    lim, p = _limits(data, p, body_end, "memory")
                    desc = MemoryType(lim)
                elif kind == 3:
                    desc, p = _global_type(data, p, body_end)
                elif kind == 4:
                    raise UnsupportedFeature("exceptions", p - 1, "tag import")
                else:
                    raise DecodeError(f"malformed import kind {kind}", p - 1)
                m.imports.append(Import(mod, field, EXTERN_KINDS[kind], desc))
        elif sid == 3:
            n, p = _count(data, p, body_end)
            func_types = []
            for _ in range(n):
                ti, p = read_u32(data, p, body_end)
                func_types.append(ti)
        elif sid == 4:
            n, p = _count(data, p, body_end, 3)
            for _ in range(n):
                if p < body_end and data[p] == 0x40:
                    raise UnsupportedFeature("function-references", p, "table initializer")
                tt, p = _table_type(data, p, body_end)
                m.tables.append(tt)
        elif sid == 5:
            n, p = _count(data, p, body_end, 2)
            for _ in range(n):
                lim, p = _limits(data, p, body_end, "memory")
                m.memories.append(MemoryType(lim))
        elif sid == 6:
            n, p = _count(data, p, body_end, 3)
            for _ in range(n):
                gt, p = _global_type(data, p, body_end)
                init, p = _const_expr(ctx, p, body_end)
                m.globals.append(Global(gt, init))
        elif sid == 7:
            n, p = _count(data, p, body_end, 3)
            for _ in range(n):
                name, p = _name(data, p, body_end)
                if p >= body_end:
                    raise DecodeError("unexpected end", p)
                kind = data[p]
                if kind == 4:
                    raise UnsupportedFeature("exceptions", p, "tag export")
                if kind > 3:
                    raise DecodeError(f"malformed export kind {kind}", p)
                idx, p = read_u32(data, p + 1, body_end)
                m.exports.append(Export(name, EXTERN_KINDS[kind], idx))
        elif sid == 8:
            m.start, p = read_u32(data, p, body_end)
        elif sid == 9:
            n, p = _count(data, p, body_end)
            for _ in range(n):
                elem, p = _elem(ctx, p, body_end)
                m.elems.append(elem)
        elif sid == 12:
            m.data_count, p = read_u32(data, p, body_end)
            has_data_count = True
        elif sid == 10:
            m.code_offset = p
            n, p = _count(data, p, body_end)
            code_ranges = []
            for _ in range(n):
                sz, p = read_u32(data, p, body_end)
                if sz > body_end - p:
                    raise DecodeError("unexpected end: function body extends past the section",
                                      p)
                code_ranges.append((p, p + sz))
                p += sz
        elif sid == 11:
            n, p = _count(data, p, body_end)
            pending_datas = True
            for _ in range(n):
                seg, p = _data(ctx, p, body_end)
                m.datas.append(seg)
        if p != body_end:
            raise DecodeError(f"section size mismatch in the {_sec(sid)} section", p)
        pos = body_end
        m.raw_sections[sid] = RawSection(sid, data[body_end - size:body_end], (),
                                         data[sec_start + 1:body_end - size])

    nfuncs = len(func_types or ())
    if nfuncs != len(code_ranges or ()):
        raise DecodeError("function and code section have inconsistent lengths",
                          m.code_offset or end)
    if m.data_count is not None and (pending_datas or m.data_count) and \
            m.data_count != len(m.datas):
        raise DecodeError("data count and data section have inconsistent lengths", end)

    nimp = m.num_imported_funcs
    for i, (ti, (b0, b1)) in enumerate(zip(func_types or (), code_ranges or (), strict=False)):
        m.functions.append(_make_function(data, nimp + i, ti, b0, b1, has_data_count))
    if not lazy:
        with gc_paused():
            for f in m.functions:
                f.instrs  # noqa: B018 - decode now
    for sid, raw in m.raw_sections.items():
        raw.snapshot = section_key(m, sid)
    return m


def _make_function(data: bytes, index: int, type_index: int, start: int, end: int,
                   has_data_count: bool) -> Function:
    def decode_lazily(_: Function) -> tuple[list[tuple[int, ValType]], list[Instr]]:
        return decode_body(data, start, end, has_data_count)

    return Function(index, type_index, data[start:end], start, decode_lazily)


def _elem(ctx: _Context, p: int, end: int) -> tuple[Elem, int]:
    data = ctx.data
    flags, p = read_u32(data, p, end)
    if flags > 7:
        raise DecodeError(f"malformed elements segment kind {flags}", p - 1)
    table = 0
    offset = None
    mode = "active"
    if flags & 1:
        mode = "declarative" if flags & 2 else "passive"
    if not flags & 1:
        if flags & 2:
            table, p = read_u32(data, p, end)
        offset, p = _const_expr(ctx, p, end)
    elem_type = FUNCREF
    if flags & 3:  # has an element kind / reference type byte
        if flags & 4:
            elem_type, p = _reftype(data, p, end)
        else:
            if p >= end:
                raise DecodeError("unexpected end", p)
            if data[p] != 0x00:
                raise DecodeError("malformed element kind", p)
            p += 1
    n, p = _count(data, p, end)
    funcs: tuple[int, ...] | None = None
    exprs: tuple[tuple[Instr, ...], ...] | None = None
    if flags & 4:
        items = []
        for _ in range(n):
            e, p = _const_expr(ctx, p, end)
            items.append(e)
        exprs = tuple(items)
    else:
        idxs = []
        for _ in range(n):
            f, p = read_u32(data, p, end)
            idxs.append(f)
        funcs = tuple(idxs)
    return Elem(mode, elem_type, funcs, exprs, table, offset, flags), p


def _data(ctx: _Context, p: int, end: int) -> tuple[Data, int]:
    data = ctx.data
    flags, p = read_u32(data, p, end)
    if flags > 2:
        raise DecodeError(f"malformed data segment kind {flags}", p - 1)
    mem = 0
    offset = None
    if flags == 2:
        mem, p = read_u32(data, p, end)
    if flags != 1:
        offset, p = _const_expr(ctx, p, end)
    n, p = read_u32(data, p, end)
    if n > end - p:
        raise DecodeError("unexpected end of section or function: data segment too long", p)
    return Data("passive" if flags == 1 else "active", data[p:p + n], mem, offset, flags), p + n


def _sec(sid: int) -> str:
    from .module import SECTION_NAMES
    return SECTION_NAMES.get(sid, str(sid))

