"""A small DWARF reader: line-number programs (DWARF 2-5) and compile-unit names.

Only what source-level reports need: the ``.debug_line`` state machine
(DWARF 5 section 6.2, the same in substance since DWARF 2), and from
``.debug_info`` the first DIE of each compile unit (its name, compilation
directory and line-program offset), because before DWARF 5 the line program
does not name the compilation directory its relative paths start from.

In WebAssembly, DWARF addresses are byte offsets from the start of the code
section's payload (`Module.code_offset`); wasm-ld marks the code of functions
it dropped with a tombstone address (0, -1 or -2), whose sequences are
skipped here.

    >>> table = read_line_table(module)
    >>> table.lookup(module.offset_of(loc) - module.code_offset)
    LineRow(address=..., file='/src/cov.c', line=14, column=5)

Malformed input raises `DwarfError`; callers treat a module whose DWARF
cannot be read like a module without DWARF.
"""

from __future__ import annotations

import bisect
import posixpath
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..ir import Module

__all__ = ["DwarfError", "LineRow", "LineTable", "CompileUnit", "read_line_table",
           "parse_line_programs", "parse_compile_units", "debug_sections"]


class DwarfError(ValueError):
    """The debug sections are malformed (message plus section offset)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at offset 0x{offset:x})")
        self.offset = offset


@dataclass(frozen=True, slots=True)
class LineRow:
    """One row of the line table: the source position of the code at ``address``."""

    address: int
    """Code-section-relative address of the first byte the row covers."""
    file: str
    """Source path (absolute when the DWARF allows; else as written)."""
    line: int
    """1-based line; 0 means "no source line" (compiler-generated code)."""
    column: int
    """1-based column, 0 when unknown."""


@dataclass(slots=True)
class _Sequence:
    start: int
    end: int
    addrs: list[int]
    files: list[int]
    lines: list[int]
    cols: list[int]


@dataclass
class LineTable:
    """Address -> source position, over every line program of the module."""

    files: list[str] = field(default_factory=list)
    """Every source path the programs name (rows refer to them by index)."""
    versions: set[int] = field(default_factory=set)
    """DWARF versions of the line programs read."""
    _seqs: list[_Sequence] = field(default_factory=list, repr=False)
    _starts: list[int] = field(default_factory=list, repr=False)

    def _finish(self) -> None:
        self._seqs.sort(key=lambda s: s.start)
        self._starts = [s.start for s in self._seqs]

    def __len__(self) -> int:
        return sum(len(s.addrs) for s in self._seqs)

    def lookup(self, address: int) -> LineRow | None:
        """The row covering ``address`` (None outside every sequence)."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0:
            return None
        s = self._seqs[i]
        if address >= s.end:
            return None
        k = bisect.bisect_right(s.addrs, address) - 1
        return LineRow(s.addrs[k], self.files[s.files[k]], s.lines[k], s.cols[k])

    def rows(self) -> list[LineRow]:
        """Every row, in address order (end-of-sequence rows left out)."""
        return [LineRow(a, self.files[f], ln, c) for s in self._seqs
                for a, f, ln, c in zip(s.addrs, s.files, s.lines, s.cols, strict=True)]


@dataclass(frozen=True, slots=True)
class CompileUnit:
    """The facts of a compile unit's first DIE that locate its sources."""

    name: str
    """``DW_AT_name``: the primary source file, often relative."""
    comp_dir: str
    """``DW_AT_comp_dir``: the directory the compiler ran in."""
    stmt_list: int | None
    """``DW_AT_stmt_list``: offset of its line program in ``.debug_line``."""
    producer: str
    """``DW_AT_producer``: the compiler."""


# -- a bounds-checked reader ----------------------------------------------------------
class _Reader:
    __slots__ = ("data", "pos", "end", "offset_size")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.offset_size = 4

    def need(self, n: int) -> int:
        p = self.pos
        if n < 0 or p + n > self.end:
            raise DwarfError("unexpected end of data", p)
        self.pos = p + n
        return p

    def u8(self) -> int:
        return self.data[self.need(1)]

    def u16(self) -> int:
        return int.from_bytes(self.data[(p := self.need(2)):p + 2], "little")

    def u24(self) -> int:
        return int.from_bytes(self.data[(p := self.need(3)):p + 3], "little")

    def u32(self) -> int:
        return int.from_bytes(self.data[(p := self.need(4)):p + 4], "little")

    def u64(self) -> int:
        return int.from_bytes(self.data[(p := self.need(8)):p + 8], "little")

    def uint(self, size: int) -> int:
        return int.from_bytes(self.data[(p := self.need(size)):p + size], "little")

    def offset(self) -> int:
        return self.uint(self.offset_size)

    def uleb(self) -> int:
        result = shift = 0
        data, pos, end = self.data, self.pos, self.end
        while True:
            if pos >= end:
                raise DwarfError("unterminated LEB128", pos)
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                self.pos = pos
                return result
            if shift > 70:
                raise DwarfError("LEB128 too long", pos)

    def sleb(self) -> int:
        result = shift = 0
        data, pos, end = self.data, self.pos, self.end
        while True:
            if pos >= end:
                raise DwarfError("unterminated LEB128", pos)
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                self.pos = pos
                if b & 0x40:
                    result -= 1 << shift
                return result
            if shift > 70:
                raise DwarfError("LEB128 too long", pos)

    def cstr(self) -> str:
        z = self.data.find(b"\0", self.pos, self.end)
        if z < 0:
            raise DwarfError("unterminated string", self.pos)
        s = self.data[self.pos:z].decode("utf-8", errors="replace")
        self.pos = z + 1
        return s

    def unit_length(self) -> int:
        """Read an initial length; sets the 32/64-bit format; returns the unit end."""
        n = self.u32()
        if n == 0xFFFFFFFF:
            self.offset_size = 8
            n = self.u64()
        elif n >= 0xFFFFFFF0:
            raise DwarfError(f"reserved unit length 0x{n:x}", self.pos - 4)
        else:
            self.offset_size = 4
        end = self.pos + n
        if end > self.end:
            raise DwarfError("unit extends past the end of its section", self.pos)
        return end


def _cstr_at(data: bytes, offset: int, section: str) -> str:
    if not 0 <= offset < len(data):
        raise DwarfError(f"string offset outside {section}", offset)
    z = data.find(b"\0", offset)
    return data[offset:z if z >= 0 else len(data)].decode("utf-8", errors="replace")


# -- forms (DWARF 5 section 7.5.6, plus the GNU extensions clang may emit) ----------------
_FIXED_FORM_SIZES = {
    0x0B: 1, 0x05: 2, 0x06: 4, 0x07: 8, 0x1E: 16,   # data1/2/4/8/16
    0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8, 0x20: 8,    # ref1/2/4/8, ref_sig8
    0x0C: 1, 0x19: 0, 0x21: 0,                       # flag, flag_present, implicit_const
    0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4,              # strx1-4
    0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4,              # addrx1-4
    0x1C: 4, 0x24: 8,                                # ref_sup4, ref_sup8
}
_ULEB_FORMS = frozenset([0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02])
_OFFSET_FORMS = frozenset([0x0E, 0x17, 0x1F, 0x1D, 0x1F20, 0x1F21])  # strp, sec_offset, ...
_STRX_FORMS = {0x1A: 0, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x1F02: 0}


@dataclass(frozen=True, slots=True)
class _Strings:
    """The string sections a form may point into."""

    debug_str: bytes = b""
    debug_line_str: bytes = b""
    debug_str_offsets: bytes = b""


def _read_form(r: _Reader, form: int, version: int, addr_size: int, implicit: int,
               strings: _Strings, str_offsets_base: int | None = None) -> object:
    """A form's value: int, str, bytes, or ("strx", index) for later resolution."""
    if form == 0x16:  # indirect
        form = r.uleb()
    if form == 0x08:
        return r.cstr()
    if form == 0x0E:
        return _cstr_at(strings.debug_str, r.offset(), ".debug_str")
    if form == 0x1F:
        return _cstr_at(strings.debug_line_str, r.offset(), ".debug_line_str")
    if form in _STRX_FORMS:
        size = _STRX_FORMS[form]
        idx = r.uleb() if size == 0 else r.uint(size)
        return ("strx", idx)
    if form == 0x21:
        return implicit
    if form == 0x0D:
        return r.sleb()
    if form in _ULEB_FORMS:
        return r.uleb()
    if form in _OFFSET_FORMS:
        return r.offset()
    if form == 0x10:  # ref_addr: an address before DWARF 3, an offset after
        return r.uint(addr_size) if version <= 2 else r.offset()
    if form == 0x01:
        return r.uint(addr_size)
    if form in (0x0A, 0x03, 0x04, 0x09, 0x18):  # block1/2/4, block, exprloc
        n = {0x0A: r.u8, 0x03: r.u16, 0x04: r.u32}.get(form, r.uleb)()
        p = r.need(n)
        return r.data[p:p + n]
    fixed = _FIXED_FORM_SIZES.get(form)
    if fixed is None:
        raise DwarfError(f"unknown attribute form 0x{form:x}", r.pos)
    return r.uint(fixed) if fixed else True


def _resolve_strx(value: object, strings: _Strings, base: int | None,
                  offset_size: int) -> object:
    if not (isinstance(value, tuple) and value and value[0] == "strx"):
        return value
    if base is None:
        base = 8 if offset_size == 4 else 16  # just past the table header
    at = base + value[1] * offset_size
    data = strings.debug_str_offsets
    if at + offset_size > len(data):
        raise DwarfError("string index outside .debug_str_offsets", at)
    return _cstr_at(strings.debug_str, int.from_bytes(data[at:at + offset_size], "little"),
                    ".debug_str")


# -- .debug_info: compile units ------------------------------------------------------------
_DW_AT_NAME, _DW_AT_STMT_LIST, _DW_AT_COMP_DIR, _DW_AT_PRODUCER = 0x03, 0x10, 0x1B, 0x25
_DW_AT_STR_OFFSETS_BASE = 0x72


def _abbrev(data: bytes, offset: int, code: int) -> tuple[int, list[tuple[int, int, int]]]:
    """(tag, [(attribute, form, implicit const)]) of abbreviation ``code`` in the
    table at ``offset``."""
    r = _Reader(data, offset)
    while True:
        c = r.uleb()
        if c == 0:
            raise DwarfError(f"abbreviation {code} not found", offset)
        tag = r.uleb()
        r.u8()  # has_children
        specs = []
        while True:
            at, form = r.uleb(), r.uleb()
            if at == 0 and form == 0:
                break
            implicit = r.sleb() if form == 0x21 else 0
            specs.append((at, form, implicit))
        if c == code:
            return tag, specs


def parse_compile_units(sections: dict[str, bytes]) -> list[CompileUnit]:
    """The first DIE of every unit in ``.debug_info`` (DWARF 2-5)."""
    info = sections.get(".debug_info", b"")
    abbrev = sections.get(".debug_abbrev", b"")
    strings = _Strings(sections.get(".debug_str", b""), sections.get(".debug_line_str", b""),
                       sections.get(".debug_str_offsets", b""))
    out = []
    r = _Reader(info)
    while r.pos < len(info):
        end = r.unit_length()
        version = r.u16()
        if not 2 <= version <= 5:
            raise DwarfError(f"unsupported .debug_info version {version}", r.pos - 2)
        if version >= 5:
            unit_type = r.u8()
            addr_size = r.u8()
            abbrev_off = r.offset()
            if unit_type in (4, 5):      # skeleton, split_compile: dwo_id
                r.u64()
            elif unit_type in (2, 6):    # type, split_type: signature + type offset
                r.u64()
                r.offset()
        else:
            abbrev_off = r.offset()
            addr_size = r.u8()
        code = r.uleb()
        if code:
            _, specs = _abbrev(abbrev, abbrev_off, code)
            attrs: dict[int, object] = {}
            for at, form, implicit in specs:
                attrs[at] = _read_form(r, form, version, addr_size, implicit, strings)
            base = attrs.get(_DW_AT_STR_OFFSETS_BASE)
            base_i = base if isinstance(base, int) else None
            vals = {k: _resolve_strx(v, strings, base_i, r.offset_size)
                    for k, v in attrs.items()
                    if k in (_DW_AT_NAME, _DW_AT_COMP_DIR, _DW_AT_PRODUCER)}
            stmt = attrs.get(_DW_AT_STMT_LIST)
            out.append(CompileUnit(
                name=str(vals.get(_DW_AT_NAME, "")), comp_dir=str(vals.get(_DW_AT_COMP_DIR, "")),
                stmt_list=stmt if isinstance(stmt, int) else None,
                producer=str(vals.get(_DW_AT_PRODUCER, ""))))
        r.pos = end
    return out


# -- .debug_line: line programs --------------------------------------------------------------
_TOMBSTONES = (0, 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE)
_DW_LNCT_PATH, _DW_LNCT_DIRECTORY_INDEX = 1, 2


def _join(base: str, path: str) -> str:
    if not path or path.startswith("/") or (len(path) > 2 and path[1] == ":"):
        return path or base
    return posixpath.normpath(posixpath.join(base, path)) if base else path


def _entry_formats(r: _Reader, version: int, strings: _Strings
                   ) -> list[dict[int, object]]:
    """A DWARF 5 directory or file-name table."""
    nfmt = r.u8()
    fmts = [(r.uleb(), r.uleb()) for _ in range(nfmt)]
    count = r.uleb()
    if count > r.end - r.pos:
        raise DwarfError("entry count exceeds the header", r.pos)
    out = []
    for _ in range(count):
        entry: dict[int, object] = {}
        for ctype, form in fmts:
            entry[ctype] = _read_form(r, form, version, 4, 0, strings)
        out.append(entry)
    return out


class _LineMachine:
    """The line-number state machine's registers and the sequence being built."""

    def __init__(self, min_inst: int, max_ops: int, ids: list[int], file_base: int,
                 file_id: Callable[[str], int]) -> None:
        self.min_inst = min_inst
        self.max_ops = max_ops
        self.ids = ids
        self.file_base = file_base
        self.file_id = file_id
        self.seq: _Sequence | None = None
        self.seq_ok = True
        self.reset()

    def reset(self) -> None:
        self.address = self.op_index = 0
        self.file, self.line, self.column = 1, 1, 0

    def fid(self) -> int:
        k = self.file - self.file_base
        if 0 <= k < len(self.ids):
            return self.ids[k]
        return self.file_id(f"<file {self.file}>")

    def emit(self) -> None:
        """Append a row (a later row for the same address replaces it)."""
        seq = self.seq
        if seq is None:
            seq = self.seq = _Sequence(self.address, self.address, [], [], [], [])
        if seq.addrs and seq.addrs[-1] == self.address:
            seq.files[-1], seq.lines[-1], seq.cols[-1] = self.fid(), self.line, self.column
            return
        seq.addrs.append(self.address)
        seq.files.append(self.fid())
        seq.lines.append(self.line)
        seq.cols.append(self.column)

    def advance(self, operation_advance: int) -> None:
        if self.max_ops <= 1:
            self.address += self.min_inst * operation_advance
        else:
            total = self.op_index + operation_advance
            self.address += self.min_inst * (total // self.max_ops)
            self.op_index = total % self.max_ops

    def set_address(self, address: int) -> None:
        seq = self.seq
        if seq is not None and seq.addrs and address < seq.addrs[-1]:
            self.seq_ok = False  # addresses must not go backwards within a sequence
        self.address = address
        self.op_index = 0

    def end_sequence(self) -> _Sequence | None:
        """Close the sequence at the current address; it, if well-formed and not empty."""
        seq, ok = self.seq, self.seq_ok
        end = self.address
        self.seq = None
        self.seq_ok = True
        self.reset()
        if seq is None or not ok or end <= seq.start:
            return None
        seq.end = end
        return seq


def parse_line_programs(sections: dict[str, bytes], comp_dirs: dict[int, str] | None = None,
                        code_size: int | None = None) -> LineTable:
    """Run every line program in ``.debug_line`` (DWARF 2-5).

    ``comp_dirs`` maps a program's offset to its unit's compilation directory
    (needed before DWARF 5); sequences starting at a tombstone address or past
    ``code_size`` are dropped.
    """
    data = sections.get(".debug_line", b"")
    strings = _Strings(sections.get(".debug_str", b""), sections.get(".debug_line_str", b""),
                       sections.get(".debug_str_offsets", b""))
    comp_dirs = comp_dirs or {}
    table = LineTable()
    file_ids: dict[str, int] = {}

    def file_id(path: str) -> int:
        i = file_ids.get(path)
        if i is None:
            i = file_ids[path] = len(table.files)
            table.files.append(path)
        return i

    r = _Reader(data)
    while r.pos < len(data):
        unit_start = r.pos
        end = r.unit_length()
        version = r.u16()
        if not 2 <= version <= 5:
            raise DwarfError(f"unsupported .debug_line version {version}", r.pos - 2)
        table.versions.add(version)
        addr_size = 4
        if version >= 5:
            addr_size = r.u8()
            r.u8()  # segment selector size
        header_length = r.offset()
        program_start = r.pos + header_length
        if program_start > end:
            raise DwarfError("line program header past the end of its unit", r.pos)
        hr = _Reader(data, r.pos, program_start)
        hr.offset_size = r.offset_size
        min_inst = hr.u8()
        max_ops = hr.u8() if version >= 4 else 1
        hr.u8()  # default_is_stmt: every row maps its addresses, statement or not
        line_base = struct.unpack("b", bytes([hr.u8()]))[0]
        line_range = hr.u8()
        opcode_base = hr.u8()
        if line_range == 0:
            raise DwarfError("line_range is 0", hr.pos - 2)
        std_lengths = [0] + [hr.u8() for _ in range(max(opcode_base - 1, 0))]
        comp_dir = comp_dirs.get(unit_start, "")
        files: list[str] = []
        file_base = 1  # the first file's number: 0 from DWARF 5 on
        if version >= 5:
            dirs_raw = _entry_formats(hr, version, strings)
            dirs = [str(d.get(_DW_LNCT_PATH, "")) for d in dirs_raw]
            if dirs:
                dirs[0] = _join(comp_dir, dirs[0]) if comp_dir else dirs[0]
                dirs = [dirs[0]] + [_join(dirs[0], d) for d in dirs[1:]]
            for f in _entry_formats(hr, version, strings):
                d = f.get(_DW_LNCT_DIRECTORY_INDEX, 0)
                base = dirs[d] if isinstance(d, int) and d < len(dirs) else ""
                files.append(_join(base, str(f.get(_DW_LNCT_PATH, ""))))
            file_base = 0
        else:
            inc = []
            while True:
                s = hr.cstr()
                if not s:
                    break
                inc.append(_join(comp_dir, s))
            while True:
                name = hr.cstr()
                if not name:
                    break
                d = hr.uleb()
                hr.uleb()  # mtime
                hr.uleb()  # length
                base = inc[d - 1] if 0 < d <= len(inc) else comp_dir
                files.append(_join(base, name))
        ids = [file_id(f) for f in files]
        pr = _Reader(data, program_start, end)
        pr.offset_size = r.offset_size
        m = _LineMachine(min_inst, max_ops, ids, file_base, file_id)
        while pr.pos < end:
            op = pr.u8()
            if op >= opcode_base:  # special opcode
                adj = op - opcode_base
                m.advance(adj // line_range)
                m.line += line_base + adj % line_range
                m.emit()
            elif op == 0:  # extended
                n = pr.uleb()
                ext_end = pr.pos + n
                if n == 0 or ext_end > end:
                    raise DwarfError("bad extended opcode length", pr.pos)
                sub = pr.u8()
                if sub == 1:  # end_sequence
                    seq = m.end_sequence()
                    if seq is not None and seq.start not in _TOMBSTONES and (
                            code_size is None or seq.start < code_size):
                        table._seqs.append(seq)
                elif sub == 2:  # set_address
                    m.set_address(pr.uint(n - 1) if n - 1 in (1, 2, 4, 8)
                                  else pr.uint(addr_size))
                elif sub == 3 and version <= 4:  # define_file
                    name = pr.cstr()
                    d = pr.uleb()
                    pr.uleb()
                    pr.uleb()
                    ids.append(file_id(_join(comp_dir if d == 0 else "", name)))
                pr.pos = ext_end  # skips set_discriminator and unknown ones
            elif op == 1:  # copy
                m.emit()
            elif op == 2:  # advance_pc
                m.advance(pr.uleb())
            elif op == 3:  # advance_line
                m.line += pr.sleb()
            elif op == 4:  # set_file
                m.file = pr.uleb()
            elif op == 5:  # set_column
                m.column = pr.uleb()
            elif op in (6, 7, 10, 11):  # negate_stmt, basic_block, prologue/epilogue
                pass
            elif op == 8:  # const_add_pc
                m.advance((255 - opcode_base) // line_range)
            elif op == 9:  # fixed_advance_pc
                m.address += pr.u16()
                m.op_index = 0
            elif op == 12:  # set_isa
                pr.uleb()
            else:  # an opcode this reader does not know: skip its operands
                for _ in range(std_lengths[op] if op < len(std_lengths) else 0):
                    pr.uleb()
        r.pos = end
    table._finish()
    return table


def debug_sections(module: Module) -> dict[str, bytes]:
    """The module's ``.debug_*`` custom sections by name (the first of each)."""
    out: dict[str, bytes] = {}
    for c in module.customs:
        if c.name.startswith(".debug_") and c.name not in out:
            out[c.name] = c.data
    return out


def read_line_table(module: Module) -> LineTable | None:
    """The module's line table, or None when it has no ``.debug_line``."""
    sections = debug_sections(module)
    if ".debug_line" not in sections:
        return None
    comp_dirs: dict[int, str] = {}
    if ".debug_info" in sections:
        for cu in parse_compile_units(sections):
            if cu.stmt_list is not None:
                comp_dirs[cu.stmt_list] = cu.comp_dir
    return parse_line_programs(sections, comp_dirs, module.code_size)
