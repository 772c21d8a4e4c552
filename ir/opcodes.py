"""The one opcode table.

Every instruction the IR knows is one `OpInfo` row here. The decoder, encoder,
printer, validator (stack effects), CFG builder and the backends' lowering
dispatch are all derived from this table; nothing else lists opcodes.

Immediate kinds (`OpInfo.imm`):

=============  ==============================================================
``""``         none
``block``      block type (empty, one value type, or a type index)
``label``      branch depth (u32)
``br_table``   vector of depths plus a default depth
``func``       function index          ``local``   local index
``global``     global index            ``table``   table index
``call_ind``   (type index, table index)
``memarg``     (align, offset, memory index)
``mem``        memory index            ``mem2``    (dst memory, src memory)
``data_mem``   (data index, memory)    ``data``    data index
``elem_table`` (elem index, table)     ``elem``    elem index
``table2``     (dst table, src table)
``i32`` ``i64`` ``f32`` ``f64``        constants (floats kept as raw bits)
``select_t``   vector of value types   ``heap``    heap type (ref.null)
``v128``       16 raw bytes            ``lanes16`` 16 lane indices (shuffle)
``lane``       lane index              ``memarg_lane`` (memarg, lane)
=============  ==============================================================

Stack effects (`OpInfo.pops` / `OpInfo.pushes`) are given for every
instruction whose effect does not depend on its immediates or the context;
the others are marked ``special`` and handled by the validator by name.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OpInfo", "OPCODES", "BY_NAME", "SINGLE", "PREFIXED", "REJECTED", "lookup"]


@dataclass(frozen=True, slots=True, eq=False)
class OpInfo:
    """One row of the opcode table. Rows are unique, so they compare and hash by
    identity (cheap dictionary keys for the hot loops)."""

    prefix: int | None
    """0xFC / 0xFD for prefixed instructions, None for single-byte ones."""
    code: int
    """The opcode byte (or the u32 sub-opcode after a prefix)."""
    name: str
    """The text-format mnemonic, e.g. ``i32.add``."""
    imm: str
    """Immediate kind, see the module docstring."""
    pops: tuple[str, ...]
    """Operand types consumed, bottom first (empty for ``special``)."""
    pushes: tuple[str, ...]
    """Result types produced."""
    feature: str
    """The proposal that introduced it (``mvp``, ``simd``, ``bulk-memory``, ...)."""
    special: bool = False
    """Stack effect depends on immediates or context (control, calls, locals...)."""
    traps: bool = False
    """May trap (or call code that may), which ends a counted basic block."""
    mem_bytes: int = 0
    """Bytes accessed by a load/store; its natural alignment is log2 of this."""

    @property
    def is_load(self) -> bool:
        return self.mem_bytes > 0 and not self.is_store

    @property
    def is_store(self) -> bool:
        return self.mem_bytes > 0 and (".store" in self.name)

    @property
    def is_branch(self) -> bool:
        return self.name in ("br", "br_if", "br_table", "if")

    @property
    def is_call(self) -> bool:
        return self.name in ("call", "call_indirect")

    @property
    def ends_block(self) -> bool:
        """Control leaves the straight line after this instruction."""
        return self.name in _BLOCK_ENDERS

    def __repr__(self) -> str:
        return f"<op {self.name}>"


_BLOCK_ENDERS = frozenset(
    ["br", "br_if", "br_table", "return", "unreachable", "if", "else", "end", "loop", "block"]
)

OPCODES: list[OpInfo] = []


def _sig(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    params, _, results = text.partition(":")
    return tuple(params.split()), tuple(results.split())


def _add(prefix: int | None, code: int, name: str, imm: str = "", sig: str | None = ":",
         feature: str = "mvp", traps: bool = False, mem_bytes: int = 0) -> None:
    if sig is None:
        OPCODES.append(OpInfo(prefix, code, name, imm, (), (), feature, True, traps, mem_bytes))
    else:
        pops, pushes = _sig(sig)
        OPCODES.append(OpInfo(prefix, code, name, imm, pops, pushes, feature, False, traps,
                              mem_bytes))


# --- control ---------------------------------------------------------------
_add(None, 0x00, "unreachable", sig=None, traps=True)
_add(None, 0x01, "nop")
_add(None, 0x02, "block", "block", None)
_add(None, 0x03, "loop", "block", None)
_add(None, 0x04, "if", "block", None)
_add(None, 0x05, "else", sig=None)
_add(None, 0x0B, "end", sig=None)
_add(None, 0x0C, "br", "label", None)
_add(None, 0x0D, "br_if", "label", None)
_add(None, 0x0E, "br_table", "br_table", None)
_add(None, 0x0F, "return", sig=None)
_add(None, 0x10, "call", "func", None, traps=True)
_add(None, 0x11, "call_indirect", "call_ind", None, traps=True)

# --- parametric, variables -------------------------------------------------
_add(None, 0x1A, "drop", sig=None)
_add(None, 0x1B, "select", sig=None)
_add(None, 0x1C, "select", "select_t", None, feature="reference-types")
_add(None, 0x20, "local.get", "local", None)
_add(None, 0x21, "local.set", "local", None)
_add(None, 0x22, "local.tee", "local", None)
_add(None, 0x23, "global.get", "global", None)
_add(None, 0x24, "global.set", "global", None)
_add(None, 0x25, "table.get", "table", None, "reference-types", traps=True)
_add(None, 0x26, "table.set", "table", None, "reference-types", traps=True)

# --- memory ----------------------------------------------------------------
for _code, _name, _ty, _n in [
    (0x28, "i32.load", "i32", 4), (0x29, "i64.load", "i64", 8),
    (0x2A, "f32.load", "f32", 4), (0x2B, "f64.load", "f64", 8),
    (0x2C, "i32.load8_s", "i32", 1), (0x2D, "i32.load8_u", "i32", 1),
    (0x2E, "i32.load16_s", "i32", 2), (0x2F, "i32.load16_u", "i32", 2),
    (0x30, "i64.load8_s", "i64", 1), (0x31, "i64.load8_u", "i64", 1),
    (0x32, "i64.load16_s", "i64", 2), (0x33, "i64.load16_u", "i64", 2),
    (0x34, "i64.load32_s", "i64", 4), (0x35, "i64.load32_u", "i64", 4),
]:
    _add(None, _code, _name, "memarg", f"i32:{_ty}", traps=True, mem_bytes=_n)
for _code, _name, _ty, _n in [
    (0x36, "i32.store", "i32", 4), (0x37, "i64.store", "i64", 8),
    (0x38, "f32.store", "f32", 4), (0x39, "f64.store", "f64", 8),
    (0x3A, "i32.store8", "i32", 1), (0x3B, "i32.store16", "i32", 2),
    (0x3C, "i64.store8", "i64", 1), (0x3D, "i64.store16", "i64", 2),
    (0x3E, "i64.store32", "i64", 4),
]:
    _add(None, _code, _name, "memarg", f"i32 {_ty}:", traps=True, mem_bytes=_n)
_add(None, 0x3F, "memory.size", "mem", ":i32")
_add(None, 0x40, "memory.grow", "mem", "i32:i32")

# --- constants -------------------------------------------------------------
_add(None, 0x41, "i32.const", "i32", ":i32")
_add(None, 0x42, "i64.const", "i64", ":i64")
_add(None, 0x43, "f32.const", "f32", ":f32")
_add(None, 0x44, "f64.const", "f64", ":f64")

# --- numeric ---------------------------------------------------------------
_CMP_I = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
_CMP_F = ["eq", "ne", "lt", "gt", "le", "ge"]
_BIN_I = ["add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor",
          "shl", "shr_s", "shr_u", "rotl", "rotr"]
_UN_F = ["abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt"]
_BIN_F = ["add", "sub", "mul", "div", "min", "max", "copysign"]


def _family(start: int, ty: str, names: list[str], sig: str) -> None:
    for i, op in enumerate(names):
        _add(None, start + i, f"{ty}.{op}", sig=sig.replace("T", ty),
             traps=op in ("div_s", "div_u", "rem_s", "rem_u"))


_add(None, 0x45, "i32.eqz", sig="i32:i32")
_family(0x46, "i32", _CMP_I, "T T:i32")
_add(None, 0x50, "i64.eqz", sig="i64:i32")
_family(0x51, "i64", _CMP_I, "T T:i32")
_family(0x5B, "f32", _CMP_F, "T T:i32")
_family(0x61, "f64", _CMP_F, "T T:i32")
_family(0x67, "i32", ["clz", "ctz", "popcnt"], "T:T")
_family(0x6A, "i32", _BIN_I, "T T:T")
_family(0x79, "i64", ["clz", "ctz", "popcnt"], "T:T")
_family(0x7C, "i64", _BIN_I, "T T:T")
_family(0x8B, "f32", _UN_F, "T:T")
_family(0x92, "f32", _BIN_F, "T T:T")
_family(0x99, "f64", _UN_F, "T:T")
_family(0xA0, "f64", _BIN_F, "T T:T")

for _code, _name, _sig_text, _traps in [
    (0xA7, "i32.wrap_i64", "i64:i32", False),
    (0xA8, "i32.trunc_f32_s", "f32:i32", True), (0xA9, "i32.trunc_f32_u", "f32:i32", True),
    (0xAA, "i32.trunc_f64_s", "f64:i32", True), (0xAB, "i32.trunc_f64_u", "f64:i32", True),
    (0xAC, "i64.extend_i32_s", "i32:i64", False), (0xAD, "i64.extend_i32_u", "i32:i64", False),
    (0xAE, "i64.trunc_f32_s", "f32:i64", True), (0xAF, "i64.trunc_f32_u", "f32:i64", True),
    (0xB0, "i64.trunc_f64_s", "f64:i64", True), (0xB1, "i64.trunc_f64_u", "f64:i64", True),
    (0xB2, "f32.convert_i32_s", "i32:f32", False), (0xB3, "f32.convert_i32_u", "i32:f32", False),
    (0xB4, "f32.convert_i64_s", "i64:f32", False), (0xB5, "f32.convert_i64_u", "i64:f32", False),
    (0xB6, "f32.demote_f64", "f64:f32", False),
    (0xB7, "f64.convert_i32_s", "i32:f64", False), (0xB8, "f64.convert_i32_u", "i32:f64", False),
    (0xB9, "f64.convert_i64_s", "i64:f64", False), (0xBA, "f64.convert_i64_u", "i64:f64", False),
    (0xBB, "f64.promote_f32", "f32:f64", False),
    (0xBC, "i32.reinterpret_f32", "f32:i32", False), (0xBD, "i64.reinterpret_f64", "f64:i64", False),
    (0xBE, "f32.reinterpret_i32", "i32:f32", False), (0xBF, "f64.reinterpret_i64", "i64:f64", False),
]:
    _add(None, _code, _name, sig=_sig_text, traps=_traps)

for _code, _name, _ty in [(0xC0, "i32.extend8_s", "i32"), (0xC1, "i32.extend16_s", "i32"),
                          (0xC2, "i64.extend8_s", "i64"), (0xC3, "i64.extend16_s", "i64"),
                          (0xC4, "i64.extend32_s", "i64")]:
    _add(None, _code, _name, sig=f"{_ty}:{_ty}", feature="sign-extension")

# --- reference types -------------------------------------------------------
_add(None, 0xD0, "ref.null", "heap", None, "reference-types")
_add(None, 0xD1, "ref.is_null", "", None, "reference-types")
_add(None, 0xD2, "ref.func", "func", None, "reference-types")

# --- 0xFC prefix: saturating truncation, bulk memory, tables ---------------
for _i, (_name, _sig_text) in enumerate([
    ("i32.trunc_sat_f32_s", "f32:i32"), ("i32.trunc_sat_f32_u", "f32:i32"),
    ("i32.trunc_sat_f64_s", "f64:i32"), ("i32.trunc_sat_f64_u", "f64:i32"),
    ("i64.trunc_sat_f32_s", "f32:i64"), ("i64.trunc_sat_f32_u", "f32:i64"),
    ("i64.trunc_sat_f64_s", "f64:i64"), ("i64.trunc_sat_f64_u", "f64:i64"),
]):
    _add(0xFC, _i, _name, sig=_sig_text, feature="saturating-float-to-int")
_add(0xFC, 8, "memory.init", "data_mem", "i32 i32 i32:", "bulk-memory", traps=True)
_add(0xFC, 9, "data.drop", "data", ":", "bulk-memory")
_add(0xFC, 10, "memory.copy", "mem2", "i32 i32 i32:", "bulk-memory", traps=True)
_add(0xFC, 11, "memory.fill", "mem", "i32 i32 i32:", "bulk-memory", traps=True)
_add(0xFC, 12, "table.init", "elem_table", "i32 i32 i32:", "bulk-memory", traps=True)
_add(0xFC, 13, "elem.drop", "elem", ":", "bulk-memory")
_add(0xFC, 14, "table.copy", "table2", "i32 i32 i32:", "bulk-memory", traps=True)
_add(0xFC, 15, "table.grow", "table", None, "reference-types")
_add(0xFC, 16, "table.size", "table", ":i32", "reference-types")
_add(0xFC, 17, "table.fill", "table", None, "reference-types", traps=True)

# --- 0xFD prefix: 128-bit SIMD ---------------------------------------------
_V = "v128"


def _simd(code: int, name: str, imm: str = "", sig: str = "v128:v128", mem_bytes: int = 0) -> None:
    _add(0xFD, code, name, imm, sig, "simd", traps=mem_bytes > 0, mem_bytes=mem_bytes)


for _code, _name, _n in [(0x00, "v128.load", 16),
                         (0x01, "v128.load8x8_s", 8), (0x02, "v128.load8x8_u", 8),
                         (0x03, "v128.load16x4_s", 8), (0x04, "v128.load16x4_u", 8),
                         (0x05, "v128.load32x2_s", 8), (0x06, "v128.load32x2_u", 8),
                         (0x07, "v128.load8_splat", 1), (0x08, "v128.load16_splat", 2),
                         (0x09, "v128.load32_splat", 4), (0x0A, "v128.load64_splat", 8),
                         (0x5C, "v128.load32_zero", 4), (0x5D, "v128.load64_zero", 8)]:
    _simd(_code, _name, "memarg", "i32:v128", _n)
_simd(0x0B, "v128.store", "memarg", "i32 v128:", 16)
_simd(0x0C, "v128.const", "v128", ":v128")
_simd(0x0D, "i8x16.shuffle", "lanes16", "v128 v128:v128")
_simd(0x0E, "i8x16.swizzle", sig="v128 v128:v128")
for _i, (_shape, _scalar) in enumerate([("i8x16", "i32"), ("i16x8", "i32"), ("i32x4", "i32"),
                                        ("i64x2", "i64"), ("f32x4", "f32"), ("f64x2", "f64")]):
    _simd(0x0F + _i, f"{_shape}.splat", sig=f"{_scalar}:v128")
for _code, _name, _scalar in [
    (0x15, "i8x16.extract_lane_s", "i32"), (0x16, "i8x16.extract_lane_u", "i32"),
    (0x18, "i16x8.extract_lane_s", "i32"), (0x19, "i16x8.extract_lane_u", "i32"),
    (0x1B, "i32x4.extract_lane", "i32"), (0x1D, "i64x2.extract_lane", "i64"),
    (0x1F, "f32x4.extract_lane", "f32"), (0x21, "f64x2.extract_lane", "f64"),
]:
    _simd(_code, _name, "lane", f"v128:{_scalar}")
for _code, _name, _scalar in [
    (0x17, "i8x16.replace_lane", "i32"), (0x1A, "i16x8.replace_lane", "i32"),
    (0x1C, "i32x4.replace_lane", "i32"), (0x1E, "i64x2.replace_lane", "i64"),
    (0x20, "f32x4.replace_lane", "f32"), (0x22, "f64x2.replace_lane", "f64"),
]:
    _simd(_code, _name, "lane", f"v128 {_scalar}:v128")
_VV = "v128 v128:v128"
for _i, _op in enumerate(_CMP_I):
    _simd(0x23 + _i, f"i8x16.{_op}", sig=_VV)
    _simd(0x2D + _i, f"i16x8.{_op}", sig=_VV)
    _simd(0x37 + _i, f"i32x4.{_op}", sig=_VV)
for _i, _op in enumerate(_CMP_F):
    _simd(0x41 + _i, f"f32x4.{_op}", sig=_VV)
    _simd(0x47 + _i, f"f64x2.{_op}", sig=_VV)
_simd(0x4D, "v128.not")
for _code, _name in [(0x4E, "v128.and"), (0x4F, "v128.andnot"), (0x50, "v128.or"),
                     (0x51, "v128.xor")]:
    _simd(_code, _name, sig=_VV)
_simd(0x52, "v128.bitselect", sig="v128 v128 v128:v128")
_simd(0x53, "v128.any_true", sig="v128:i32")
for _i, (_name, _n) in enumerate([("load8_lane", 1), ("load16_lane", 2), ("load32_lane", 4),
                                  ("load64_lane", 8)]):
    _simd(0x54 + _i, f"v128.{_name}", "memarg_lane", "i32 v128:v128", _n)
for _i, (_name, _n) in enumerate([("store8_lane", 1), ("store16_lane", 2),
                                  ("store32_lane", 4), ("store64_lane", 8)]):
    _simd(0x58 + _i, f"v128.{_name}", "memarg_lane", "i32 v128:", _n)

# The rest of the SIMD space: (code, name, signature); "v" is v128:v128,
# "vv" v128 v128:v128, "vi" v128 i32:v128 (shifts), "t" v128:i32 (tests).
_SIMD_SIGS = {"v": "v128:v128", "vv": _VV, "vi": "v128 i32:v128", "t": "v128:i32"}
for _code, _name, _kind in [
    (0x5E, "f32x4.demote_f64x2_zero", "v"), (0x5F, "f64x2.promote_low_f32x4", "v"),
    (0x60, "i8x16.abs", "v"), (0x61, "i8x16.neg", "v"), (0x62, "i8x16.popcnt", "v"),
    (0x63, "i8x16.all_true", "t"), (0x64, "i8x16.bitmask", "t"),
    (0x65, "i8x16.narrow_i16x8_s", "vv"), (0x66, "i8x16.narrow_i16x8_u", "vv"),
    (0x67, "f32x4.ceil", "v"), (0x68, "f32x4.floor", "v"), (0x69, "f32x4.trunc", "v"),
    (0x6A, "f32x4.nearest", "v"),
    (0x6B, "i8x16.shl", "vi"), (0x6C, "i8x16.shr_s", "vi"), (0x6D, "i8x16.shr_u", "vi"),
    (0x6E, "i8x16.add", "vv"), (0x6F, "i8x16.add_sat_s", "vv"), (0x70, "i8x16.add_sat_u", "vv"),
    (0x71, "i8x16.sub", "vv"), (0x72, "i8x16.sub_sat_s", "vv"), (0x73, "i8x16.sub_sat_u", "vv"),
    (0x74, "f64x2.ceil", "v"), (0x75, "f64x2.floor", "v"),
    (0x76, "i8x16.min_s", "vv"), (0x77, "i8x16.min_u", "vv"),
    (0x78, "i8x16.max_s", "vv"), (0x79, "i8x16.max_u", "vv"),
    (0x7A, "f64x2.trunc", "v"), (0x7B, "i8x16.avgr_u", "vv"),
    (0x7C, "i16x8.extadd_pairwise_i8x16_s", "v"), (0x7D, "i16x8.extadd_pairwise_i8x16_u", "v"),
    (0x7E, "i32x4.extadd_pairwise_i16x8_s", "v"), (0x7F, "i32x4.extadd_pairwise_i16x8_u", "v"),
    (0x80, "i16x8.abs", "v"), (0x81, "i16x8.neg", "v"), (0x82, "i16x8.q15mulr_sat_s", "vv"),
    (0x83, "i16x8.all_true", "t"), (0x84, "i16x8.bitmask", "t"),
    (0x85, "i16x8.narrow_i32x4_s", "vv"), (0x86, "i16x8.narrow_i32x4_u", "vv"),
    (0x87, "i16x8.extend_low_i8x16_s", "v"), (0x88, "i16x8.extend_high_i8x16_s", "v"),
    (0x89, "i16x8.extend_low_i8x16_u", "v"), (0x8A, "i16x8.extend_high_i8x16_u", "v"),
    (0x8B, "i16x8.shl", "vi"), (0x8C, "i16x8.shr_s", "vi"), (0x8D, "i16x8.shr_u", "vi"),
    (0x8E, "i16x8.add", "vv"), (0x8F, "i16x8.add_sat_s", "vv"), (0x90, "i16x8.add_sat_u", "vv"),
    (0x91, "i16x8.sub", "vv"), (0x92, "i16x8.sub_sat_s", "vv"), (0x93, "i16x8.sub_sat_u", "vv"),
    (0x94, "f64x2.nearest", "v"), (0x95, "i16x8.mul", "vv"),
    (0x96, "i16x8.min_s", "vv"), (0x97, "i16x8.min_u", "vv"),
    (0x98, "i16x8.max_s", "vv"), (0x99, "i16x8.max_u", "vv"), (0x9B, "i16x8.avgr_u", "vv"),
    (0x9C, "i16x8.extmul_low_i8x16_s", "vv"), (0x9D, "i16x8.extmul_high_i8x16_s", "vv"),
    (0x9E, "i16x8.extmul_low_i8x16_u", "vv"), (0x9F, "i16x8.extmul_high_i8x16_u", "vv"),
    (0xA0, "i32x4.abs", "v"), (0xA1, "i32x4.neg", "v"),
    (0xA3, "i32x4.all_true", "t"), (0xA4, "i32x4.bitmask", "t"),
    (0xA7, "i32x4.extend_low_i16x8_s", "v"), (0xA8, "i32x4.extend_high_i16x8_s", "v"),
    (0xA9, "i32x4.extend_low_i16x8_u", "v"), (0xAA, "i32x4.extend_high_i16x8_u", "v"),
    (0xAB, "i32x4.shl", "vi"), (0xAC, "i32x4.shr_s", "vi"), (0xAD, "i32x4.shr_u", "vi"),
    (0xAE, "i32x4.add", "vv"), (0xB1, "i32x4.sub", "vv"), (0xB5, "i32x4.mul", "vv"),
    (0xB6, "i32x4.min_s", "vv"), (0xB7, "i32x4.min_u", "vv"),
    (0xB8, "i32x4.max_s", "vv"), (0xB9, "i32x4.max_u", "vv"),
    (0xBA, "i32x4.dot_i16x8_s", "vv"),
    (0xBC, "i32x4.extmul_low_i16x8_s", "vv"), (0xBD, "i32x4.extmul_high_i16x8_s", "vv"),
    (0xBE, "i32x4.extmul_low_i16x8_u", "vv"), (0xBF, "i32x4.extmul_high_i16x8_u", "vv"),
    (0xC0, "i64x2.abs", "v"), (0xC1, "i64x2.neg", "v"),
    (0xC3, "i64x2.all_true", "t"), (0xC4, "i64x2.bitmask", "t"),
    (0xC7, "i64x2.extend_low_i32x4_s", "v"), (0xC8, "i64x2.extend_high_i32x4_s", "v"),
    (0xC9, "i64x2.extend_low_i32x4_u", "v"), (0xCA, "i64x2.extend_high_i32x4_u", "v"),
    (0xCB, "i64x2.shl", "vi"), (0xCC, "i64x2.shr_s", "vi"), (0xCD, "i64x2.shr_u", "vi"),
    (0xCE, "i64x2.add", "vv"), (0xD1, "i64x2.sub", "vv"), (0xD5, "i64x2.mul", "vv"),
    (0xD6, "i64x2.eq", "vv"), (0xD7, "i64x2.ne", "vv"), (0xD8, "i64x2.lt_s", "vv"),
    (0xD9, "i64x2.gt_s", "vv"), (0xDA, "i64x2.le_s", "vv"), (0xDB, "i64x2.ge_s", "vv"),
    (0xDC, "i64x2.extmul_low_i32x4_s", "vv"), (0xDD, "i64x2.extmul_high_i32x4_s", "vv"),
    (0xDE, "i64x2.extmul_low_i32x4_u", "vv"), (0xDF, "i64x2.extmul_high_i32x4_u", "vv"),
    (0xE0, "f32x4.abs", "v"), (0xE1, "f32x4.neg", "v"), (0xE3, "f32x4.sqrt", "v"),
    (0xE4, "f32x4.add", "vv"), (0xE5, "f32x4.sub", "vv"), (0xE6, "f32x4.mul", "vv"),
    (0xE7, "f32x4.div", "vv"), (0xE8, "f32x4.min", "vv"), (0xE9, "f32x4.max", "vv"),
    (0xEA, "f32x4.pmin", "vv"), (0xEB, "f32x4.pmax", "vv"),
    (0xEC, "f64x2.abs", "v"), (0xED, "f64x2.neg", "v"), (0xEF, "f64x2.sqrt", "v"),
    (0xF0, "f64x2.add", "vv"), (0xF1, "f64x2.sub", "vv"), (0xF2, "f64x2.mul", "vv"),
    (0xF3, "f64x2.div", "vv"), (0xF4, "f64x2.min", "vv"), (0xF5, "f64x2.max", "vv"),
    (0xF6, "f64x2.pmin", "vv"), (0xF7, "f64x2.pmax", "vv"),
    (0xF8, "i32x4.trunc_sat_f32x4_s", "v"), (0xF9, "i32x4.trunc_sat_f32x4_u", "v"),
    (0xFA, "f32x4.convert_i32x4_s", "v"), (0xFB, "f32x4.convert_i32x4_u", "v"),
    (0xFC, "i32x4.trunc_sat_f64x2_s_zero", "v"), (0xFD, "i32x4.trunc_sat_f64x2_u_zero", "v"),
    (0xFE, "f64x2.convert_low_i32x4_s", "v"), (0xFF, "f64x2.convert_low_i32x4_u", "v"),
]:
    _simd(_code, _name, sig=_SIMD_SIGS[_kind])

# --- lookups ---------------------------------------------------------------
SINGLE: list[OpInfo | None] = [None] * 256
"""Single-byte opcodes, indexed by byte."""
PREFIXED: dict[int, dict[int, OpInfo]] = {0xFC: {}, 0xFD: {}}
"""Prefixed opcodes: prefix byte -> sub-opcode -> OpInfo."""
BY_NAME: dict[str, OpInfo] = {}
"""Mnemonic -> OpInfo (``select`` maps to the untyped form)."""

for _op in OPCODES:
    if _op.prefix is None:
        assert SINGLE[_op.code] is None, _op
        SINGLE[_op.code] = _op
    else:
        assert _op.code not in PREFIXED[_op.prefix], _op
        PREFIXED[_op.prefix][_op.code] = _op
    BY_NAME.setdefault(_op.name, _op)

REJECTED: dict[int, str] = {
    **{b: "exceptions" for b in (0x06, 0x07, 0x08, 0x09, 0x0A, 0x18, 0x19, 0x1F)},
    0x12: "tail-call", 0x13: "tail-call",
    0x14: "function-references", 0x15: "function-references",
    0xD3: "function-references", 0xD4: "function-references", 0xD6: "function-references",
    0xD5: "gc", 0xFB: "gc",
    0xFE: "threads",
}
"""Single-byte opcodes (and prefixes) of proposals we reject, by feature name."""

REJECTED_SIMD_RANGE = range(0x100, 0x114)
"""0xFD sub-opcodes of relaxed SIMD, rejected as ``relaxed-simd``."""


def lookup(name: str) -> OpInfo:
    """The OpInfo for a mnemonic; raises KeyError for unknown names."""
    return BY_NAME[name]
