"""Source positions of Locations, and coverage and hotness per source line.

    >>> sm = source_map(module)               # DWARF .debug_line when present
    >>> sm.kind, sm.position(Location(24, 40))
    ('dwarf', SourcePos(file='/src/cov.c', line=36, column=16))
    >>> files = source_coverage(module, profile, sm)   # lines, functions, branches

With DWARF (C built with ``-g``) every instruction maps to the file and line
of the line-table row covering its address (``module.offset_of(loc) -
module.code_offset``); rows with line 0 (compiler-generated code) map to
nothing. Without DWARF the map is of kind ``names``: nothing maps to a line
and reports fall back to functions (from the name section), or, for
formats that need a source file, to a disassembly listing
(`SourceMap.listing`) whose lines stand in for source lines.

A line's count is the largest count of the instructions on it (the number
of times execution reached its most executed part: a ``for`` header counts
its condition); its coverage is whether any of them ran.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..ir import Location
from ..ir.printer import format_instr
from ._common import func_name, has_branches, has_counts
from .dwarf import DwarfError, LineTable, read_line_table

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

__all__ = ["SourcePos", "SourceMap", "source_map", "FileCoverage", "source_coverage",
           "resolve_source", "TOOLCHAIN_PATTERNS"]

TOOLCHAIN_PATTERNS: tuple[str, ...] = (
    "*/ziglang/lib/*", "*/zig/lib/*", "*/lib/zig/*", "*/wasi-libc/*", "*/wasi-sysroot/*",
    "*/libc/wasi/*", "/usr/include/*", "/usr/lib/*", "/usr/local/include/*", "*/rustc/*",
    "*/.cargo/registry/*", "*/.rustup/toolchains/*", "*/emscripten/system/*",
    "*/wasi-sdk/*",
)
"""Sources of the C library and language runtimes (left out of reports by
default, like coverage.py leaves out the standard library)."""


@dataclass(frozen=True, slots=True, order=True)
class SourcePos:
    """A position in a source file."""

    file: str
    """The path the debug info names (or the listing's path)."""
    line: int
    """1-based line."""
    column: int = 0
    """1-based column, 0 when unknown."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class SourceMap:
    """Location -> source position for one module."""

    def __init__(self, module: Module, table: LineTable | None, kind: str,
                 error: str | None = None) -> None:
        self.module = module
        """The module."""
        self.table = table
        """The DWARF line table (None without DWARF)."""
        self.kind = kind
        """``dwarf`` (line table), ``listing`` (disassembly lines) or ``names``."""
        self.error = error
        """Why the DWARF present could not be read, if it could not."""
        self._cache: dict[int, dict[int, SourcePos]] = {}
        self.listing: str | None = None
        """For kind ``listing``: the text whose lines positions refer to."""

    @property
    def has_lines(self) -> bool:
        """Whether Locations map to lines."""
        return self.kind != "names"

    def positions(self, func: int) -> dict[int, SourcePos]:
        """pc -> position for every mapped instruction of defined function ``func``."""
        got = self._cache.get(func)
        if got is not None:
            return got
        out: dict[int, SourcePos] = {}
        table = self.table
        if table is not None:
            m = self.module
            f = m.function(func)
            base = f.body_offset - m.code_offset
            for ins in f.instrs:
                row = table.lookup(base + ins.pc)
                if row is not None and row.line > 0:
                    out[ins.pc] = SourcePos(row.file, row.line, row.column)
        self._cache[func] = out
        return out

    def position(self, loc: Location) -> SourcePos | None:
        """The source position of one instruction (None when unmapped)."""
        if loc.pc < 0 or loc.func < self.module.num_imported_funcs:
            return None
        return self.positions(loc.func).get(loc.pc)

    def function_position(self, func: int) -> SourcePos | None:
        """Where a function starts: its first mapped instruction (for code built
        without optimization, the line of its declaration)."""
        if func < self.module.num_imported_funcs:
            return None
        pos = self.positions(func)
        if not pos:
            return None
        return pos[min(pos)]

    def functions_in(self, path: str) -> list[int]:
        """Defined functions whose start maps to file ``path``."""
        out = []
        for f in self.module.functions:
            p = self.function_position(f.index)
            if p is not None and p.file == path:
                out.append(f.index)
        return out

    def files(self) -> list[str]:
        """Every file some instruction maps to, sorted."""
        seen: set[str] = set()
        for f in self.module.functions:
            seen.update(p.file for p in self.positions(f.index).values())
        return sorted(seen)

    def lines(self) -> dict[tuple[str, int], list[Location]]:
        """(file, line) -> the instructions on it, in module order."""
        out: dict[tuple[str, int], list[Location]] = {}
        for f in self.module.functions:
            for pc, p in self.positions(f.index).items():
                out.setdefault((p.file, p.line), []).append(Location(f.index, pc))
        return out

    def line_counts(self, profile: ProfileData) -> dict[tuple[str, int], int]:
        """(file, line) -> count (the most executed instruction on it; 1/0 from
        coverage flags when the profile has no counts)."""
        counts = profile.counts
        cov = profile.coverage
        use_counts = has_counts(profile)
        out: dict[tuple[str, int], int] = {}
        for key, locs in self.lines().items():
            if use_counts:
                out[key] = max(counts.get(loc, 0) for loc in locs)
            else:
                out[key] = int(any(cov.get(loc, False) for loc in locs))
        return out

    @classmethod
    def from_listing(cls, module: Module, path: str) -> SourceMap:
        """A map onto a disassembly listing of the module, for modules without
        DWARF; the listing text is in `listing`, to be written at ``path``."""
        sm = cls(module, None, "listing")
        lines = [f";; {os.path.basename(path)}: disassembly of the module's code "
                 "(it has no DWARF line table), one instruction per line"]
        for f in module.functions:
            lines.append("")
            lines.append(f"func {f.index} {func_name(module, f.index)}")
            pos: dict[int, SourcePos] = {}
            for ins in f.instrs:
                lines.append(f"  {ins.pc:>6}  {format_instr(ins, module)}")
                pos[ins.pc] = SourcePos(path, len(lines), 0)
            sm._cache[f.index] = pos
        sm.listing = "\n".join(lines) + "\n"
        return sm


def source_map(module: Module) -> SourceMap:
    """The module's source map: from ``.debug_line`` when present and readable,
    else of kind ``names`` (functions only)."""
    if not any(c.name == ".debug_line" for c in module.customs):
        return SourceMap(module, None, "names")
    try:
        table = read_line_table(module)
    except DwarfError as e:
        return SourceMap(module, None, "names", error=str(e))
    if table is None or len(table) == 0:
        return SourceMap(module, None, "names")
    return SourceMap(module, table, "dwarf")


def resolve_source(path: str, search: Sequence[str | os.PathLike[str]] = ()) -> str | None:
    """An existing file for a path the debug info names: its trailing components
    under each ``search`` directory first (the program's own directory comes
    first, so a copy of a checkout resolves to its own sources, not to the
    tree it was built in), else the path itself."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    for d in search:
        for k in range(len(parts)):
            cand = os.path.join(os.fspath(d), *parts[k:])
            if os.path.isfile(cand):
                return cand
    if os.path.isfile(path):
        return path
    return None


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) for p in patterns)


@dataclass
class FileCoverage:
    """Coverage and counts of one source file."""

    path: str
    """The file as the debug info names it."""
    lines: dict[int, int] = field(default_factory=dict)
    """Line -> count, for every line with code."""
    functions: list[tuple[str, int, int]] = field(default_factory=list)
    """(name, first line, times entered) for the functions starting here."""
    branches: list[tuple[int, int, int, int | None]] = field(default_factory=list)
    """(line, block, branch, times taken or None when the site never ran): one
    block per branch instruction on the line, one branch per outcome (for
    ``br_if``/``if``: 0 taken, 1 not taken; for ``br_table``: the position)."""

    @property
    def lines_hit(self) -> int:
        return sum(1 for n in self.lines.values() if n)

    @property
    def functions_hit(self) -> int:
        return sum(1 for _, _, n in self.functions if n)

    @property
    def branches_hit(self) -> int:
        return sum(1 for *_, n in self.branches if n)


def _entries(module: Module, profile: ProfileData, func: int) -> int:
    if func in profile.entries:
        return profile.entries[func]
    f = module.function(func)
    first = Location(func, f.instrs[0].pc)
    if has_counts(profile):
        return profile.counts.get(first, 0)
    if profile.coverage.get(first) or profile.function_coverage.get(func):
        return 1
    return 0


def source_coverage(module: Module, profile: ProfileData, sm: SourceMap | None = None, *,
                    include: Sequence[str] = (), omit: Sequence[str] | None = None
                    ) -> list[FileCoverage]:
    """Per source file: line counts, functions and branch outcomes.

    ``include`` keeps only files matching one of its glob patterns; ``omit``
    drops matching files (default `TOOLCHAIN_PATTERNS`; pass ``()`` to keep
    them). Empty for a map without lines.
    """
    if sm is None:
        sm = source_map(module)
    if not sm.has_lines:
        return []
    omit = TOOLCHAIN_PATTERNS if omit is None else omit

    def keep(path: str) -> bool:
        if include and not _matches(path, include):
            return False
        return not _matches(path, omit)

    files: dict[str, FileCoverage] = {}

    def file(path: str) -> FileCoverage:
        fc = files.get(path)
        if fc is None:
            fc = files[path] = FileCoverage(path)
        return fc

    for (path, line), n in sm.line_counts(profile).items():
        if keep(path):
            file(path).lines[line] = n
    for f in module.functions:
        p = sm.function_position(f.index)
        if p is not None and keep(p.file):
            file(p.file).functions.append((func_name(module, f.index), p.line,
                                           _entries(module, profile, f.index)))
    if has_branches(profile):
        counts = profile.counts if has_counts(profile) else None
        blocks: dict[tuple[str, int], int] = {}
        for f in module.functions:
            pos = sm.positions(f.index)
            for ins in f.instrs:
                name = ins.op.name
                if name not in ("br_if", "if", "br_table"):
                    continue
                p = pos.get(ins.pc)
                if p is None or not keep(p.file):
                    continue
                loc = Location(f.index, ins.pc)
                hist = profile.branches.get(loc)
                ran = bool(hist) or (counts is not None and counts.get(loc, 0) > 0) or \
                    bool(profile.coverage.get(loc))
                key = (p.file, p.line)
                block = blocks.get(key, 0)
                blocks[key] = block + 1
                outcomes = ([1, 0] if name != "br_table"
                            else list(range(len(ins.imm[0]) + 1)))
                for k, value in enumerate(outcomes):
                    taken = (hist or {}).get(value, 0) if ran else None
                    file(p.file).branches.append((p.line, block, k, taken))
    for fc in files.values():
        fc.functions.sort(key=lambda t: (t[1], t[0]))
        fc.branches.sort()
    return [files[p] for p in sorted(files)]
