"""WAT-like text for instructions and function bodies.

Everything is derived from the opcode table: an instruction prints as its
mnemonic followed by its immediates, formatted by immediate kind
(`OpInfo.imm`). The output follows ``wasm-tools print`` where that is
cheap to match (floats as hex with their decimal value in a comment, default
memory/table indices and natural alignment omitted, ``;; label = @N``
annotations), so the two can be compared line by line.

    >>> from probes.ir.printer import format_instr, format_function
    >>> print(format_function(module, 3))
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from .types import BlockType, FuncType, ValType

if TYPE_CHECKING:
    from .module import Instr, Module

__all__ = ["format_f32", "format_f64", "format_function", "format_functype", "format_instr"]

_F32 = struct.Struct("<f")
_F32_BITS = struct.Struct("<I")
_F64 = struct.Struct("<d")
_F64_BITS = struct.Struct("<Q")


# -- floats -------------------------------------------------------------------------
def _hex_float(bits: int, mant_bits: int, exp_bits: int) -> str:
    """Hex-float text of an IEEE value given as raw bits (wasm-tools' spelling)."""
    sign = "-" if bits >> (mant_bits + exp_bits) & 1 else ""
    exp = (bits >> mant_bits) & ((1 << exp_bits) - 1)
    frac = bits & ((1 << mant_bits) - 1)
    bias = (1 << (exp_bits - 1)) - 1
    if exp == (1 << exp_bits) - 1:
        if frac == 0:
            return f"{sign}inf"
        if frac == 1 << (mant_bits - 1):
            return f"{sign}nan"
        return f"{sign}nan:0x{frac:x}"
    if exp == 0 and frac == 0:
        return f"{sign}0x0p+0"
    subnormal = exp == 0
    if subnormal:  # normalize so the leading 1 sits just above the fraction
        shift = mant_bits + 1 - frac.bit_length()
        frac = (frac << shift) & ((1 << mant_bits) - 1)
        e = 1 - bias - shift
    else:
        e = exp - bias
    pad = -mant_bits % 4
    ndigits = (mant_bits + pad) // 4
    digits = f"{frac << pad:0{ndigits}x}".rstrip("0")
    # wasm-tools writes normalized subnormals as "0x1.p-149" when no digits remain.
    point = "." if digits or subnormal else ""
    return f"{sign}0x1{point}{digits}p{e:+d}"


def _plain_decimal(text: str) -> str:
    """``1e+300`` -> ``1000...0``, ``3.0`` -> ``3``: positional, no trailing zeros."""
    out = format(Decimal(text), "f")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return "-0" if out == "-0" else out


def _decimal_comment(value: float, shortest: str) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return _plain_decimal(shortest)


def _shortest_f32(value: float) -> str:
    """The shortest decimal that reads back as the same f32."""
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        try:
            if _F32.unpack(_F32.pack(float(text)))[0] == value:
                return text
        except OverflowError:
            continue
    return repr(value)  # pragma: no cover - 9 digits always round-trip


def format_f32(bits: int) -> str:
    """An f32 given as raw bits, as ``0x1.8p+0 (;=1.5;)``, ``nan:0x1`` or ``-inf``."""
    value = _F32.unpack(_F32_BITS.pack(bits & 0xFFFFFFFF))[0]
    text = _hex_float(bits & 0xFFFFFFFF, 23, 8)
    shortest = "" if not math.isfinite(value) else _shortest_f32(value)
    return f"{text} (;={_decimal_comment(value, shortest)};)"


def format_f64(bits: int) -> str:
    """An f64 given as raw bits, formatted like `format_f32`."""
    value = _F64.unpack(_F64_BITS.pack(bits & 0xFFFFFFFFFFFFFFFF))[0]
    text = _hex_float(bits & 0xFFFFFFFFFFFFFFFF, 52, 11)
    shortest = "" if not math.isfinite(value) else repr(value)
    return f"{text} (;={_decimal_comment(value, shortest)};)"


# -- types ----------------------------------------------------------------------------
def format_functype(ft: FuncType) -> str:
    """``(param i32 i32) (result i64)``, parts omitted when empty."""
    parts = []
    if ft.params:
        parts.append("(param " + " ".join(map(str, ft.params)) + ")")
    if ft.results:
        parts.append("(result " + " ".join(map(str, ft.results)) + ")")
    return " ".join(parts)


def _block_type(bt: BlockType, module: Module | None) -> str:
    text = str(bt)
    if bt.type_index is not None and module is not None and bt.type_index < len(module.types):
        sig = format_functype(module.types[bt.type_index])
        if sig:
            text = f"{text} {sig}"
    return text


# -- immediates, by kind ----------------------------------------------------------------
def _memarg(op_bytes: int, imm: tuple[int, ...]) -> str:
    align, offset, mem = imm[0], imm[1], imm[2]
    parts = []
    if mem:
        parts.append(str(mem))
    if offset:
        parts.append(f"offset={offset}")
    if op_bytes and 1 << align != op_bytes:
        parts.append(f"align={1 << align}")
    return " ".join(parts)


def _v128(raw: bytes) -> str:
    lanes = struct.unpack("<4I", raw)
    return "i32x4 " + " ".join(f"0x{x:08x}" for x in lanes)


def _func_comment(func: int, module: Module | None) -> str:
    if module is None:
        return ""
    try:
        name = module.func_name(func)
    except (IndexError, KeyError):
        name = None
    return "" if name is None else f" ;; {name}"


def _nonzero(*indices: int) -> str:
    """Index immediates that wasm-tools omits when they are all 0 (memories, tables)."""
    return "" if not any(indices) else " ".join(map(str, indices))


Labeler = Callable[[int], str]
"""Maps a branch depth to an annotation such as `` (;@2;)`` (or "")."""


def _immediate(instr: Instr, module: Module | None, label: Labeler | None) -> str:
    op = instr.op
    kind = op.imm
    imm = instr.imm
    if not kind:
        return ""
    if kind in ("local", "global", "table", "data", "elem", "lane", "i32", "i64"):
        return str(imm)
    if kind == "label":
        return f"{imm}{label(imm) if label else ''}"
    if kind == "br_table":
        labels, default = imm
        return " ".join(f"{d}{label(d) if label else ''}" for d in (*labels, default))
    if kind == "func":
        return f"{imm}{_func_comment(imm, module)}"
    if kind == "block":
        return _block_type(imm, module)
    if kind == "memarg":
        return _memarg(op.mem_bytes, imm)
    if kind == "memarg_lane":
        return " ".join(p for p in (_memarg(op.mem_bytes, imm[:3]), str(imm[3])) if p)
    if kind == "mem":
        return _nonzero(imm)
    if kind in ("mem2", "table2"):
        return _nonzero(*imm)
    if kind == "data_mem":  # (data, memory): "memory.init [mem] data"
        return f"{imm[1]} {imm[0]}" if imm[1] else str(imm[0])
    if kind == "elem_table":  # (elem, table): "table.init [table] elem"
        return f"{imm[1]} {imm[0]}" if imm[1] else str(imm[0])
    if kind == "call_ind":
        type_index, table = imm
        text = f"(type {type_index})" if not table else f"{table} (type {type_index})"
        if module is not None and type_index < len(module.types):
            text += f" ;; {module.types[type_index]}"
        return text
    if kind == "f32":
        return format_f32(imm)
    if kind == "f64":
        return format_f64(imm)
    if kind == "select_t":
        return "(result " + " ".join(map(str, imm)) + ")"
    if kind == "heap":
        assert isinstance(imm, ValType)
        return imm.name.removesuffix("ref")
    if kind == "v128":
        return _v128(imm)
    if kind == "lanes16":
        return " ".join(str(b) for b in imm)
    raise AssertionError(f"immediate kind {kind!r} of {op.name} has no printer")


def _format(instr: Instr, module: Module | None, label: Labeler | None) -> str:
    imm = _immediate(instr, module, label)
    if not imm:
        return instr.op.name
    # Comments start with ";;"; keep the mnemonic and immediate on one line.
    return f"{instr.op.name} {imm}"


def format_instr(instr: Instr, module: Module | None = None) -> str:
    """One instruction as WAT text: mnemonic and immediates.

    With ``module``, calls name their callee and ``call_indirect`` and typed
    blocks show their signature (as comments or WAT type annotations).
    """
    return _format(instr, module, None)


# -- whole functions ------------------------------------------------------------------
def format_function(module: Module, func_index: int) -> str:
    """A function body, one instruction per line: ``pc``, nesting indent, text.

    Blocks are annotated ``;; label = @N`` and branches ``(;@N;)`` with the
    label they target (as ``wasm-tools print`` does); @0 is the function.
    Raises KeyError for an imported function.
    """
    func = module.function(func_index)
    ft = module.func_type(func_index)
    name = module.func_name(func_index)
    head = f";; func {func_index}" + (f" {name}" if name else "")
    head += f" (type {func.type_index}) {ft}"
    lines = [head]
    local_types = [str(t) for n, t in func.local_groups for _ in range(min(n, 64))]
    if func.num_locals:
        more = "" if func.num_locals <= len(local_types) else " ..."
        lines.append(f";; locals ({func.num_locals}): {' '.join(local_types)}{more}")
    instrs = func.instrs
    width = max(4, len(str(instrs[-1].pc if instrs else 0)))
    depth = 0  # open structured blocks

    def label(d: int) -> str:
        target = depth - d
        return f" (;@{target};)" if target >= 1 else ""

    last = len(instrs) - 1
    for i, ins in enumerate(instrs):
        name_ = ins.op.name
        if name_ in ("end", "else") and i != last:
            indent = depth - 1
        else:
            indent = depth
        text = _format(ins, module, label)
        if ins.op.imm == "block":
            depth += 1
            text += f" ;; label = @{depth}"
        elif name_ == "end" and i != last:
            depth -= 1
        lines.append(f"{ins.pc:>{width}}  {'  ' * max(indent, 0)}{text}")
    return "\n".join(lines)
