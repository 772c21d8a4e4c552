"""DWARF line tables (2 to 5, 32- and 64-bit) and source maps: hand-assembled
debug sections checked row by row, and a real -g build checked line by line."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import probes
from probes.analyses import source_map
from probes.analyses.dwarf import DwarfError, parse_compile_units, parse_line_programs
from probes.analyses.sourcemap import SourceMap, resolve_source
from probes.ir import Location, decode
from probes.ir.leb import u32 as uleb

DATA = Path(__file__).resolve().parent / "data"
COV = DATA / "cov-g.wasm"

LINE_BASE, LINE_RANGE, OPCODE_BASE = -5, 14, 13
STD_LENGTHS = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])


# -- a tiny DWARF assembler (DWARF 5 sections 6.2 and 7.5, as in the spec) -----------------
def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def unit(version_and_body: bytes, dwarf64: bool) -> bytes:
    if dwarf64:
        return b"\xff\xff\xff\xff" + struct.pack("<Q", len(version_and_body)) + version_and_body
    return struct.pack("<I", len(version_and_body)) + version_and_body


def offset(n: int, dwarf64: bool) -> bytes:
    return struct.pack("<Q" if dwarf64 else "<I", n)


def set_address(addr: int) -> bytes:
    return b"\x00\x05\x02" + struct.pack("<I", addr)


def special(addr_adv: int, line_adv: int) -> bytes:
    op = OPCODE_BASE + (line_adv - LINE_BASE) + LINE_RANGE * addr_adv
    assert OPCODE_BASE <= op <= 255
    return bytes([op])


END_SEQUENCE = b"\x00\x01\x01"


def line_unit(version: int, program: bytes, *, dwarf64: bool = False,
              dirs: list[str] = (), files: list[tuple[str, int]] = (),  # type: ignore
              line_str: bytearray | None = None) -> bytes:
    """A line-number program unit; v5 names its files through .debug_line_str."""
    hdr = bytearray([1])                       # minimum_instruction_length
    if version >= 4:
        hdr.append(1)                          # maximum_operations_per_instruction
    hdr += bytes([1, LINE_BASE & 0xFF, LINE_RANGE, OPCODE_BASE]) + STD_LENGTHS
    if version >= 5:
        assert line_str is not None

        def strp(s: str) -> bytes:
            off = len(line_str)
            line_str.extend(s.encode() + b"\0")
            return offset(off, dwarf64)
        hdr += bytes([1]) + uleb(1) + uleb(0x1F)          # dirs: DW_LNCT_path, line_strp
        hdr += uleb(len(dirs)) + b"".join(strp(d) for d in dirs)
        # files: path (string), directory_index (udata), MD5 (data16)
        hdr += bytes([3]) + uleb(1) + uleb(0x08) + uleb(2) + uleb(0x0F) + uleb(5) + uleb(0x1E)
        hdr += uleb(len(files))
        for name, d in files:
            hdr += name.encode() + b"\0" + uleb(d) + bytes(16)
    else:
        for d in dirs:
            hdr += d.encode() + b"\0"
        hdr += b"\0"
        for name, d in files:
            hdr += name.encode() + b"\0" + uleb(d) + uleb(0) + uleb(0)
        hdr += b"\0"
    head = struct.pack("<H", version)
    if version >= 5:
        head += bytes([4, 0])  # address_size, segment_selector_size
    body = head + offset(len(hdr), dwarf64) + bytes(hdr) + program
    return unit(body, dwarf64)


def custom(name: str, payload: bytes) -> bytes:
    inner = uleb(len(name.encode())) + name.encode() + payload
    return b"\x00" + uleb(len(inner)) + inner


def base_module(wat_module) -> tuple[bytes, probes.Module]:  # type: ignore[no-untyped-def]
    from probes.ir import encode
    m = wat_module("""(module (func $f (param i32) (result i32)
        (local.get 0) (i32.const 1) (i32.add) (i32.const 2) (i32.mul)))""")
    return encode(m), m


def addresses(m: probes.Module) -> list[int]:
    f = m.functions[0]
    return [f.body_offset - m.code_offset + ins.pc for ins in f.instrs]


@pytest.mark.parametrize("version,dwarf64", [(2, False), (3, False), (4, False), (5, False),
                                             (4, True), (5, True)])
def test_line_programs_of_every_version(wat_module, version: int,  # type: ignore
                                        dwarf64: bool) -> None:
    data, m = base_module(wat_module)
    a = addresses(m)  # local.get, i32.const, i32.add, i32.const, i32.mul, end
    first = 0 if version >= 5 else 1  # file numbers start at 0 in DWARF 5
    prog = (b"\x04" + uleb(first) + set_address(a[0])
            + b"\x03" + sleb(9) + b"\x01"                         # line 10 at a0
            + special(a[1] - a[0], 1)                              # line 11 at a1
            + b"\x05" + uleb(7)                                    # column 7
            + b"\x02" + uleb(a[2] - a[1]) + b"\x01"               # line 11 col 7 at a2
            + b"\x04" + uleb(first + 1)                           # second file
            + b"\x09" + struct.pack("<H", a[3] - a[2])            # fixed_advance_pc
            + b"\x03" + sleb(-6) + b"\x01"                         # line 5 at a3
            + b"\x03" + sleb(-5) + special(a[4] - a[3], 0)         # line 0 at a4 (no line)
            + b"\x02" + uleb(a[5] + 1 - a[4]) + END_SEQUENCE
            # A sequence of a function the linker dropped: tombstone address.
            + set_address(0xFFFFFFFF) + b"\x01" + b"\x02\x04" + END_SEQUENCE)
    line_str = bytearray()
    if version >= 5:
        unit_bytes = line_unit(version, prog, dwarf64=dwarf64, dirs=["/build", "inc"],
                               files=[("main.c", 0), ("util.h", 1)], line_str=line_str)
    else:
        unit_bytes = line_unit(version, prog, dwarf64=dwarf64, dirs=["inc"],
                               files=[("main.c", 0), ("util.h", 1)])
    extra = custom(".debug_line", unit_bytes)
    if version >= 5:
        extra += custom(".debug_line_str", bytes(line_str))
    else:
        # The compile unit names the compilation directory relative paths start from.
        abbrev = bytes([1, 0x11, 0, 0x03, 0x08, 0x1B, 0x0E, 0x10,
                        0x17 if version >= 4 else 0x06, 0, 0, 0])
        strs = b"/build\0"
        cu = (struct.pack("<H", version) + offset(0, dwarf64 and version >= 3) + bytes([4])
              + uleb(1) + b"main.c\0" + offset(0, dwarf64 and version >= 3)
              + offset(0, dwarf64 and version >= 3))
        extra += custom(".debug_abbrev", abbrev) + custom(".debug_str", strs)
        extra += custom(".debug_info", unit(cu, dwarf64 and version >= 3))
    mod = decode(data + extra)
    sm = source_map(mod)
    assert sm.kind == "dwarf", sm.error
    assert sm.table is not None and sm.table.versions == {version}
    f = mod.functions[0].index
    pcs = [i.pc for i in mod.functions[0].instrs]
    got = [sm.position(Location(f, pc)) for pc in pcs]
    assert [(p.file, p.line, p.column) if p else None for p in got] == [
        ("/build/main.c", 10, 0), ("/build/main.c", 11, 0), ("/build/main.c", 11, 7),
        ("/build/inc/util.h", 5, 7), None, None]
    assert sm.function_position(f).line == 10  # type: ignore[union-attr]
    assert sm.files() == ["/build/inc/util.h", "/build/main.c"]


def test_compile_units_with_indexed_strings() -> None:
    """DWARF 5 .debug_info naming strings through .debug_str_offsets (strx1)."""
    abbrev = bytes([1, 0x11, 0, 0x03, 0x25, 0x1B, 0x25, 0x72, 0x17, 0x10, 0x17, 0, 0, 0])
    strs = b"cov.c\0/src\0"
    offsets = struct.pack("<IHH", 4 + 8, 5, 0) + struct.pack("<II", 0, 6)
    cu = (struct.pack("<H", 5) + bytes([1, 4]) + struct.pack("<I", 0) + uleb(1)
          + bytes([0, 1]) + struct.pack("<I", 8) + struct.pack("<I", 0x40))
    units = parse_compile_units({".debug_info": unit(cu, False), ".debug_abbrev": abbrev,
                                 ".debug_str": strs, ".debug_str_offsets": offsets})
    assert [(u.name, u.comp_dir, u.stmt_list) for u in units] == [("cov.c", "/src", 0x40)]


def test_malformed_dwarf_falls_back_to_names(wat_module) -> None:  # type: ignore
    data, _ = base_module(wat_module)
    with pytest.raises(DwarfError, match="offset"):
        parse_line_programs({".debug_line": struct.pack("<IH", 100, 4)})
    with pytest.raises(DwarfError):
        parse_line_programs({".debug_line": unit(struct.pack("<H", 9) + bytes(8), False)})
    mod = decode(data + custom(".debug_line", b"\x10\x00\x00"))
    sm = source_map(mod)
    assert sm.kind == "names" and sm.error and not sm.has_lines
    assert sm.position(Location(mod.functions[0].index, 0)) is None


def test_module_without_dwarf(wat_module) -> None:  # type: ignore[no-untyped-def]
    _, m = base_module(wat_module)
    sm = source_map(m)
    assert sm.kind == "names" and sm.files() == [] and sm.function_position(0) is None
    listing = SourceMap.from_listing(m, "/tmp/x.listing")
    assert listing.kind == "listing" and listing.listing is not None
    text = listing.listing.splitlines()
    for ins in m.functions[0].instrs:
        p = listing.position(Location(0, ins.pc))
        assert p is not None and p.file == "/tmp/x.listing"
        assert text[p.line - 1].split()[0] == str(ins.pc)


def test_real_build_maps_to_source_lines() -> None:
    m = probes.load(COV)
    sm = source_map(m)
    assert sm.kind == "dwarf" and sm.table is not None and sm.table.versions <= {4, 5}
    cov_c = next(f for f in sm.files() if f.endswith("/cov.c"))
    starts = {m.func_name(f): sm.function_position(f).line  # type: ignore[union-attr]
              for f in sm.functions_in(cov_c)}
    assert starts == {"square": 17, "never_called": 21, "classify": 25, "put_int": 33,
                      "put_str": 45, "main": 51}
    main = m.resolve_func("main")
    lines = {p.line for p in sm.positions(main).values()}
    assert min(lines) == 51 and max(lines) in (74, 75)
    # Instructions of a line lie in the function that holds it.
    by_line = sm.lines()
    assert {loc.func for loc in by_line[(cov_c, 58)]} == {main}
    assert {loc.func for loc in by_line[(cov_c, 18)]} == {m.resolve_func("square")}


def test_resolve_source_after_a_move(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.c").write_text("int x;\n")
    assert resolve_source("/nowhere/at/all/src/a.c", [tmp_path]) == str(tmp_path / "src" / "a.c")
    assert resolve_source("/nowhere/b.c", [tmp_path]) is None
    assert resolve_source(str(COV)) == str(COV)
