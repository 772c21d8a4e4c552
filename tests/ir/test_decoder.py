"""Targeted decoder tests: LEB128 limits, error offsets, rejected proposals, empty and
custom-section modules, lazy bodies, the name section."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.ir import (
    DecodeError,
    Location,
    UnsupportedFeature,
    ValidationError,
    decode,
    encode,
    validate,
)
from probes.ir.leb import read_s32, read_s33, read_s64, read_u32, read_u64, s32, s64, u32
from probes.ir.loader import wat_to_wasm
from probes.ir.module import CustomSection

HEADER = b"\0asm\x01\0\0\0"


def section(sid: int, payload: bytes) -> bytes:
    return bytes((sid,)) + u32(len(payload)) + payload


def vec(items: list[bytes]) -> bytes:
    return u32(len(items)) + b"".join(items)


def name(s: str) -> bytes:
    b = s.encode()
    return u32(len(b)) + b


def module(*sections: bytes) -> bytes:
    return HEADER + b"".join(sections)


VOID = b"\x60\x00\x00"  # func type [] -> []
TYPES = section(1, vec([VOID]))
ONE_FUNC = section(3, vec([b"\x00"]))


def code(*bodies: bytes) -> bytes:
    return section(10, vec([u32(len(b)) + b for b in bodies]))


BODY = 22
"""Module offset of the first (small) body in `module(TYPES, ONE_FUNC, code(...))`."""
OP = BODY + 1
"""... and of its first instruction (no locals)."""


# --- LEB128 -------------------------------------------------------------------------------

@pytest.mark.parametrize("reader, hexbytes, value", [
    (read_u32, "00", 0),
    (read_u32, "7f", 127),
    (read_u32, "8001", 128),
    (read_u32, "ffffffff0f", 0xFFFFFFFF),
    (read_u32, "8080808000", 0),           # padded to the maximum length: allowed
    (read_s32, "7f", -1),
    (read_s32, "ff7f", -1),
    (read_s32, "3f", 63),
    (read_s32, "c000", 64),
    (read_s32, "40", -64),
    (read_s32, "8080808078", -(1 << 31)),
    (read_s32, "ffffffff07", (1 << 31) - 1),
    (read_s33, "ffffffff0f", (1 << 32) - 1),
    (read_s33, "8080808070", -(1 << 32)),
    (read_s64, "8080808080808080807f", -(1 << 63)),
    (read_s64, "ffffffffffffffffff00", (1 << 63) - 1),
    (read_u64, "ffffffffffffffffff01", (1 << 64) - 1),
])
def test_leb_values(reader, hexbytes: str, value: int) -> None:  # type: ignore[no-untyped-def]
    data = bytes.fromhex(hexbytes)
    assert reader(data, 0, len(data)) == (value, len(data))


@pytest.mark.parametrize("reader, hexbytes, message, offset", [
    (read_u32, "ffffffff1f", "integer too large", 4),
    (read_u32, "ffffffff7f", "integer too large", 4),
    (read_u32, "8080808080", "integer representation too long", 4),
    (read_u32, "808080808000", "integer representation too long", 4),
    (read_u32, "80", "unexpected end", 1),
    (read_u32, "", "unexpected end", 0),
    (read_s32, "ffffffff0f", "integer too large", 4),     # sign bit set, padding clear
    (read_s32, "8080808070", "integer too large", 4),     # sign bit clear, padding set
    (read_s32, "8080808080", "integer representation too long", 4),
    (read_s33, "ffffffff1f", "integer too large", 4),
    (read_s33, "8080808060", "integer too large", 4),
    (read_s64, "ffffffffffffffffff01", "integer too large", 9),
    (read_s64, "80808080808080808080", "integer representation too long", 9),
    (read_s64, "ffffffffffffffff", "unexpected end", 8),
    (read_u64, "ffffffffffffffffff02", "integer too large", 9),
])
def test_leb_errors(reader, hexbytes: str, message: str,  # type: ignore[no-untyped-def]
                    offset: int) -> None:
    data = bytes.fromhex(hexbytes)
    with pytest.raises(DecodeError) as info:
        reader(data, 0, len(data))
    assert message in info.value.message
    assert info.value.offset == offset
    assert str(info.value).endswith(f"(at offset 0x{offset:x})")


def test_leb_respects_end() -> None:
    data = bytes.fromhex("8001")
    with pytest.raises(DecodeError):
        read_u32(data, 0, 1)  # the continuation byte lies past `end`


@given(st.integers(0, (1 << 32) - 1))
def test_u32_roundtrip(value: int) -> None:
    enc = u32(value)
    assert read_u32(enc, 0, len(enc)) == (value, len(enc))
    assert len(enc) == max(1, -(-value.bit_length() // 7))


@given(st.integers(-(1 << 63), (1 << 63) - 1))
def test_s64_roundtrip(value: int) -> None:
    enc = s64(value)
    assert read_s64(enc, 0, len(enc)) == (value, len(enc))
    if -(1 << 31) <= value < (1 << 31):
        assert read_s32(s32(value), 0, len(s32(value)))[0] == value


# --- error offsets ---------------------------------------------------------------------------

@pytest.mark.parametrize("data, message, offset", [
    (b"", "magic header", 0),
    (b"\0asn\x01\0\0\0", "magic header", 0),
    (b"\0asm\x01\0", "unexpected end", 4),
    (b"\0asm\x02\0\0\0", "unknown binary version", 4),
    (HEADER + b"\x0e\x00", "malformed section id 14", 8),
    (HEADER + b"\x01\x05\x00", "section size mismatch", 8),          # size past the end
    (HEADER + section(1, b"\x01\x60\x00\x00\x00"), "section size mismatch", 14),
    (HEADER + section(3, b"\x00") + section(1, b"\x00"), "out of order", 11),
    (HEADER + section(1, b"\x00") + section(1, b"\x00"), "out of order", 11),
    (HEADER + section(1, b"\x01\x61\x00\x00"), "malformed function type", 11),
    (HEADER + section(1, b"\x01\x60\x01\x10\x00"), "malformed value type", 13),
    (HEADER + section(1, b"\x85\x80\x80\x80\x10"), "integer too large", 14),
    (HEADER + section(1, b"\x8f\x01"), "vector length 143", 10),
    (HEADER + section(2, vec([name("m") + name("f") + b"\x05\x00"])), "import kind", 15),
    (HEADER + section(5, vec([b"\x09\x00"])), "limits flags", 11),
    (HEADER + TYPES + ONE_FUNC, "inconsistent lengths", 18),
    (HEADER + section(0, b"\x05ab"), "name longer", 10),
    (HEADER + section(0, b"\x02\xff\xfe"), "UTF-8", 11),
])
def test_decode_error_offsets(data: bytes, message: str, offset: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert message in info.value.message
    assert info.value.offset == offset, info.value


def test_body_error_offsets() -> None:
    # Body at module offset 22: 0 local groups, i32.const 1, then an illegal opcode 0xff.
    data = module(TYPES, ONE_FUNC, code(b"\x00\x41\x01\xff\x0b"))
    m = decode(data)
    assert m.functions[0].body_offset == BODY
    with pytest.raises(DecodeError) as info:
        m.functions[0].instrs  # noqa: B018
    assert "illegal opcode 0xff" in info.value.message
    assert info.value.offset == BODY + 3
    # A body that runs off its end without the final `end`.
    m = decode(module(TYPES, ONE_FUNC, code(b"\x00\x01\x01")))
    with pytest.raises(DecodeError, match="END opcode expected"):
        m.functions[0].instrs  # noqa: B018
    # Code after the final end.
    m = decode(module(TYPES, ONE_FUNC, code(b"\x00\x0b\x01")))
    with pytest.raises(DecodeError) as info:
        m.functions[0].instrs  # noqa: B018
    assert info.value.offset == BODY + 2


def test_huge_counts_fail_fast() -> None:
    # A local count of 2**32-1 twice and a vector length far beyond the section:
    # rejected without allocating.
    body = b"\x02" + b"\xff\xff\xff\xff\x0f\x7f" * 2 + b"\x0b"
    m = decode(module(TYPES, ONE_FUNC, code(body)))
    with pytest.raises(DecodeError, match="too many locals"):
        m.functions[0].instrs  # noqa: B018
    br_table = b"\x00\x0e\xff\xff\xff\xff\x0f\x0b"
    m = decode(module(TYPES, ONE_FUNC, code(br_table)))
    with pytest.raises(DecodeError, match="vector length"):
        m.functions[0].instrs  # noqa: B018


# --- rejected proposals ------------------------------------------------------------------------

@pytest.mark.parametrize("data, feature, offset", [
    (module(section(13, b"\x01\x00\x00")), "exceptions", 8),                     # tag section
    (module(TYPES, ONE_FUNC, code(b"\x00\x1f\x40\x00\x0b\x0b")), "exceptions", OP),  # try_table
    (module(TYPES, ONE_FUNC, code(b"\x00\x08\x00\x0b")), "exceptions", OP),      # throw
    (module(section(1, vec([b"\x5f\x01\x7f\x00"]))), "gc", 11),                   # struct type
    (module(section(1, vec([b"\x4e\x01\x60\x00\x00"]))), "gc", 11),               # rec group
    (module(TYPES, ONE_FUNC, code(b"\x00\xfb\x00\x00\x0b")), "gc", OP),           # struct.new
    (module(section(5, vec([b"\x03\x01\x02"]))), "threads", 11),                  # shared memory
    (module(TYPES, ONE_FUNC, code(b"\x00\xfe\x03\x00\x0b")), "threads", OP),      # atomic.fence
    (module(section(5, vec([b"\x04\x01"]))), "memory64", 11),
    (module(section(4, vec([b"\x70\x04\x01"]))), "table64", 12),
    (module(TYPES, ONE_FUNC, code(b"\x00\x12\x00\x0b")), "tail-call", OP),        # return_call
    (module(section(1, vec([b"\x60\x01\x64\x70\x00"]))), "function-references", 13),  # (ref func)
    (module(TYPES, ONE_FUNC, code(b"\x00\xfd\x80\x02\x0b")), "relaxed-simd", OP),
])
def test_unsupported_features(data: bytes, feature: str, offset: int) -> None:
    with pytest.raises(UnsupportedFeature) as info:
        decode(data, lazy=False)
    assert info.value.feature == feature
    assert info.value.offset == offset, info.value


def test_unsupported_from_text() -> None:
    exn = wat_to_wasm('(module (tag $e) (func (try_table (catch $e 0) (throw $e))))')
    with pytest.raises(UnsupportedFeature) as info:
        decode(exn, lazy=False)
    assert info.value.feature == "exceptions"
    gc = wat_to_wasm("(module (type (struct (field i32))) (func (result anyref) ref.null any))")
    with pytest.raises(UnsupportedFeature, match="gc"):
        decode(gc, lazy=False)
    mem64 = wat_to_wasm("(module (memory i64 1))")
    with pytest.raises(UnsupportedFeature, match="memory64"):
        decode(mem64)


# --- whole modules -------------------------------------------------------------------------------

def test_empty_module() -> None:
    m = decode(HEADER)
    assert (m.types, m.imports, m.functions, m.exports, m.customs) == ([], [], [], [], [])
    assert m.start is None and m.data_count is None and m.size == 8
    validate(m)
    assert encode(m) == HEADER
    assert encode(m, verbatim=False) == HEADER


def test_empty_sections_are_kept() -> None:
    data = module(section(1, b"\x00"), section(3, b"\x00"), section(10, b"\x00"))
    assert encode(decode(data)) == data


CUSTOMS = module(
    section(0, name("first") + b"\x01\x02"),
    TYPES,
    section(0, name("after-type") + b"xyz"),
    ONE_FUNC,
    code(b"\x00\x0b"),
    section(0, name("name") + b""),
    section(0, name("last") + b"\xff"),
)


def test_custom_sections_in_place() -> None:
    m = decode(CUSTOMS)
    assert [(c.name, c.data, c.after) for c in m.customs] == [
        ("first", b"\x01\x02", 0), ("after-type", b"xyz", 1), ("name", b"", 10),
        ("last", b"\xff", 10)]
    assert encode(m) == CUSTOMS
    # Re-encoding a body keeps every custom section where it was.
    f = m.functions[0]
    f.replace_body(list(f.instrs))
    assert f.raw is None
    assert encode(m) == CUSTOMS  # the same instructions give the same bytes
    assert [(c.name, c.after) for c in decode(encode(m, verbatim=False)).customs] == [
        (c.name, c.after) for c in m.customs]


def test_padded_section_sizes_are_kept() -> None:
    # Over-long LEB128s in section headers (as in the spec's binary-leb128.wast
    # and some linkers' output) survive a round trip while the contents do not change.
    padded = (HEADER + b"\x01\x84\x80\x80\x80\x00" + vec([VOID])
              + b"\x00\x8a\x00\x01" + b"1" + b"23456789"      # custom size padded
              + b"\x00\x0b\x88\x00" + b"12345678" + b"9")     # custom name length padded
    m = decode(padded)
    assert encode(m) == padded
    # Once a custom section's payload changes, its stale sizes are not reused.
    m.customs[0] = dataclasses.replace(m.customs[0], data=b"other")
    out = encode(m)
    again = decode(out)
    assert [(c.name, c.data) for c in again.customs] == [("1", b"other"), ("12345678", b"9")]
    # verbatim=False writes minimal LEBs everywhere.
    assert len(encode(decode(padded), verbatim=False)) == len(padded) - 4 - 1 - 1


# --- lazy bodies ----------------------------------------------------------------------------

def test_malformed_body_decodes_lazily() -> None:
    good = b"\x00\x41\x07\x1a\x0b"          # i32.const 7; drop; end
    bad = b"\x00\x41\x07\x06\x0b"           # 0x06 (try) is not ours
    worse = b"\x00\x41\x80\x80\x80\x80\x80\x00\x0b"  # over-long LEB
    data = module(section(1, vec([VOID])), section(3, vec([b"\x00"] * 3)),
                  code(good, bad, worse))
    m = decode(data)
    assert [f.decoded for f in m.functions] == [False, False, False]
    assert [i.name for i in m.functions[0].instrs] == ["i32.const", "drop", "end"]
    assert [i.pc for i in m.functions[0].instrs] == [1, 3, 4]
    with pytest.raises(UnsupportedFeature):
        m.functions[1].instrs  # noqa: B018
    with pytest.raises(DecodeError, match="too long"):
        m.functions[2].instrs  # noqa: B018
    assert encode(m) == data  # nothing decoded successfully changed; bytes still verbatim
    with pytest.raises((DecodeError, UnsupportedFeature)):
        decode(data, lazy=False)
    with pytest.raises((DecodeError, UnsupportedFeature)):
        validate(decode(data))


def test_invalid_body_is_a_validation_error() -> None:
    body = b"\x00\x41\x01\x0b"  # leaves an i32 in a [] -> [] function
    with pytest.raises(ValidationError) as info:
        validate(decode(module(TYPES, ONE_FUNC, code(body))))
    assert info.value.func == 0


def test_locations_and_offsets() -> None:
    data = wat_to_wasm("(module (func $f (local i32) i32.const 1 local.set 0))")
    m = decode(data)
    f = m.functions[0]
    first = f.instrs[0]
    assert f.local_groups and first.name == "i32.const" and first.pc == 3
    off = m.offset_of(Location(f.index, first.pc))
    assert data[off] == 0x41
    assert m.location_at(off) == Location(f.index, first.pc)


# --- the name section -----------------------------------------------------------------------------

NAMED = """
(module $mod
  (import "env" "log" (func $log (param i32)))
  (func $add (export "add") (param $x i32) (param $y i32) (result i32)
    (local $tmp i32)
    (local.set $tmp (i32.add (local.get $x) (local.get $y)))
    (call $log (local.get $tmp))
    (local.get $tmp))
  (func (export "anon") (nop))
  (func $helper))
"""


def test_name_section() -> None:
    m = decode(wat_to_wasm(NAMED))
    names = m.names
    assert names.module == "mod"
    assert names.functions[0] == "log" and names.functions[1] == "add"
    assert names.locals[1] == {0: "x", 1: "y", 2: "tmp"}
    assert m.func_name(1) == "add"
    assert m.func_name(2) == "anon"       # no debug name: its export name
    assert m.func_name(3) == "helper"
    assert m.resolve_func("helper") == 3 and m.resolve_func("add") == 1
    assert m.resolve_func("2") == 2
    with pytest.raises(KeyError):
        m.resolve_func("nope")


def test_broken_name_section_is_ignored() -> None:
    names = (b"\x00\x02\x01m"                       # module name "m"
             + b"\x01\x04\x01\x00\x01a"              # function 0 is "a"
             + b"\x02\x06\x01\x00\x01\x00\x05z")      # local names: a name runs past the end
    broken = module(TYPES, ONE_FUNC, code(b"\x00\x0b"), section(0, name("name") + names))
    m = decode(broken)
    assert m.names.module == "m"              # what was read before the fault is kept
    assert m.names.functions == {0: "a"}
    assert encode(m) == broken


def test_custom_section_model_is_frozen() -> None:
    c = CustomSection("x", b"y")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.name = "z"  # type: ignore[misc]
