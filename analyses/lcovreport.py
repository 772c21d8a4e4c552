"""lcov tracefiles (``.info``), the input of ``genhtml`` and of most coverage UIs.

    >>> result = lcov_report(module, profile, search=["."])
    >>> open("coverage.info", "w").write(result.text)
    >>> result.skipped          # sources that could not be found on disk

One record per source file (the format of lcov's geninfo(1)):

    TN:<test name>
    SF:<absolute path of the source>
    FN:<line>,<function>            one per function starting in the file
    FNDA:<times entered>,<function>
    FNF:<functions>  FNH:<functions entered>
    BRDA:<line>,<block>,<branch>,<times taken | ->   "-": the branch never ran
    BRF:<branches>   BRH:<branches taken>
    DA:<line>,<count>
    LF:<lines with code>  LH:<lines run>
    end_of_record

Sources come from the DWARF line table (`probes.analyses.sourcemap`), with
the C library and runtime sources left out by default. A module without
DWARF is reported against a disassembly listing instead, one instruction
per line, which the caller writes next to the tracefile (`LcovResult.listing`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .sourcemap import SourceMap, resolve_source, source_coverage, source_map

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

__all__ = ["LcovResult", "lcov_report"]


@dataclass
class LcovResult:
    """A tracefile and what it left out."""

    text: str
    """The ``.info`` contents."""
    files: list[str] = field(default_factory=list)
    """The source files it covers (as written in ``SF:``)."""
    skipped: list[str] = field(default_factory=list)
    """Sources the debug info names that could not be found (left out)."""
    listing: tuple[str, str] | None = None
    """(path, text) of the disassembly listing to write, for modules without DWARF."""


def _name(name: str) -> str:
    return name.replace(",", ";").replace("\n", " ").strip() or "?"


def lcov_report(module: Module, profile: ProfileData, *, sm: SourceMap | None = None,
                search: Sequence[str | os.PathLike[str]] = (), include: Sequence[str] = (),
                omit: Sequence[str] | None = None, test_name: str = "",
                listing_path: str | None = None) -> LcovResult:
    """The lcov tracefile of ``profile`` over ``module``'s sources.

    ``search``: directories to look for sources the debug info names with
    paths that do not exist here (a moved checkout); the program's own
    directory is searched last. ``include``/``omit``:
    glob patterns over source paths (see `source_coverage`). Without DWARF,
    ``listing_path`` is where the disassembly listing will live (default:
    ``<program>.listing`` in the current directory).
    """
    if sm is None:
        sm = source_map(module)
    result = LcovResult("")
    if not sm.has_lines:
        stem = os.path.splitext(os.path.basename(profile.program or "module"))[0] or "module"
        path = os.path.abspath(listing_path or f"{stem}.listing")
        sm = SourceMap.from_listing(module, path)
        assert sm.listing is not None
        result.listing = (path, sm.listing)
        omit = ()
    files = source_coverage(module, profile, sm, include=include, omit=omit)
    dirs = list(search)
    if profile.program and not profile.program.startswith("<"):
        dirs.append(os.path.dirname(os.path.abspath(profile.program)))
    out: list[str] = []
    tn = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in test_name)
    for fc in files:
        if result.listing is not None:
            real: str | None = fc.path
        else:
            real = resolve_source(fc.path, dirs)
        if real is None:
            result.skipped.append(fc.path)
            continue
        real = os.path.abspath(real)
        result.files.append(real)
        out.append(f"TN:{tn}")
        out.append(f"SF:{real}")
        seen: dict[str, int] = {}
        funcs = []
        for name, line, n in fc.functions:
            name = _name(name)
            k = seen.get(name, 0)
            seen[name] = k + 1
            funcs.append((f"{name}#{k}" if k else name, line, n))
        for name, line, _ in funcs:
            out.append(f"FN:{line},{name}")
        for name, _, n in funcs:
            out.append(f"FNDA:{n},{name}")
        out.append(f"FNF:{len(funcs)}")
        out.append(f"FNH:{sum(1 for *_, n in funcs if n)}")
        if fc.branches:
            for line, block, branch, taken in fc.branches:
                out.append(f"BRDA:{line},{block},{branch},{'-' if taken is None else taken}")
            out.append(f"BRF:{len(fc.branches)}")
            out.append(f"BRH:{fc.branches_hit}")
        for line in sorted(fc.lines):
            out.append(f"DA:{line},{fc.lines[line]}")
        out.append(f"LF:{len(fc.lines)}")
        out.append(f"LH:{fc.lines_hit}")
        out.append("end_of_record")
    result.text = "\n".join(out) + ("\n" if out else "")
    return result
