"""Plain-text tables: top functions, top source lines, coverage summary.

    >>> print(text_report(profile, module))
    program examples/sort-g.wasm  backend wasm  1 run  exit code 0
    monitors: branches, coverage, icount

    top functions (by instructions executed)
    function        instructions  share  calls
    --------------  ------------  -----  -----
    quick_sort           1203340  41.2%    127
    ...

    top lines
    line         count  source
    sort.c:23   512020  while (j >= lo && a[j] > v) {
    ...

    coverage
    functions      12/56  21.4%
    ...
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._common import has_counts
from .sourcemap import resolve_source, source_coverage, source_map
from .summary import coverage_summary, function_rows

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData
    from .sourcemap import SourceMap

__all__ = ["text_report", "table", "cfg_text"]


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Columns padded to width; numbers right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [all(_is_num(r[i]) for r in cells[1:]) and len(cells) > 1
               for i in range(len(header))]
    lines = []
    for k, r in enumerate(cells):
        parts = [c.rjust(w) if numeric[i] else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _is_num(s: str) -> bool:
    t = s.rstrip("%")
    if t in ("-", ""):
        return True
    try:
        float(t)
    except ValueError:
        return False
    return True


def _pct(a: float, b: float) -> str:
    return f"{100.0 * a / b:.1f}%" if b else "-"


def _source_line(path: str, line: int, search: Sequence[str],
                 cache: dict[str, list[str] | None]) -> str:
    if path not in cache:
        real = resolve_source(path, search)
        try:
            with open(real or path, encoding="utf-8", errors="replace") as fh:
                cache[path] = fh.read().splitlines()
        except OSError:
            cache[path] = None
    text = cache[path]
    if text is None or not 0 < line <= len(text):
        return ""
    s = text[line - 1].strip()
    return s if len(s) <= 60 else s[:57] + "..."


def text_report(profile: ProfileData, module: Module | None = None, *, top: int = 15,
                sm: SourceMap | None = None, include: Sequence[str] = (),
                omit: Sequence[str] | None = None, search: Sequence[str] = ()) -> str:
    """The summary tables of a profile (names and source lines need the module)."""
    out: list[str] = []
    head = [f"program {profile.program or '?'}"]
    if profile.backend:
        head.append(f"backend {profile.backend}")
    head.append(f"{profile.runs} run{'s' if profile.runs != 1 else ''}")
    if profile.trap:
        head.append(f"trapped: {profile.trap.get('kind')}")
    elif profile.exit_code is not None:
        head.append(f"exit code {profile.exit_code}")
    out.append("  ".join(head))
    out.append(f"monitors: {', '.join(profile.monitors) or '-'}")

    if module is not None and sm is None:
        sm = source_map(module)
    rows = function_rows(module, profile, sm)
    counted = has_counts(profile)
    timed = bool(profile.cct)
    total_instr = profile.total_instructions
    if counted:
        key, what = "instructions", "instructions executed"
        rows.sort(key=lambda r: (-(r["instructions"] or 0), r["index"]))
    elif timed:
        key, what = "self_ns", "self time"
        rows.sort(key=lambda r: (-r["self_ns"], r["index"]))
    else:
        key, what = "entries", "calls"
        rows.sort(key=lambda r: (-(r["entries"] or 0), r["index"]))
    shown = [r for r in rows if r.get(key)][:top]
    if shown:
        header = ["function"]
        if counted:
            header += ["instructions", "share"]
        header.append("calls")
        if timed:
            all_ns = sum(r["self_ns"] for r in rows)
            header += ["self ms", "self", "total ms"]
        if sm is not None and sm.kind == "dwarf":
            header.append("source")
        table_rows = []
        for r in shown:
            row: list[Any] = [r["name"]]
            if counted:
                row += [r["instructions"], _pct(r["instructions"], total_instr)]
            row.append("-" if r["entries"] is None else r["entries"])
            if timed:
                row += [f"{r['self_ns'] / 1e6:.2f}", _pct(r["self_ns"], all_ns),
                        f"{r['total_ns'] / 1e6:.2f}"]
            if sm is not None and sm.kind == "dwarf":
                row.append(f"{os.path.basename(r['file'])}:{r['line']}" if r.get("file")
                           else "")
            table_rows.append(row)
        out += ["", f"top functions (by {what})", table(table_rows, header)]

    files = None
    if module is not None and sm is not None and sm.has_lines:
        files = source_coverage(module, profile, sm, include=include, omit=omit)
        if counted and files:
            lines = [(n, fc.path, line) for fc in files for line, n in fc.lines.items() if n]
            lines.sort(key=lambda t: (-t[0], t[1], t[2]))
            dirs = list(search)
            if profile.program and not profile.program.startswith("<"):
                dirs.append(os.path.dirname(os.path.abspath(profile.program)))
            cache: dict[str, list[str] | None] = {}
            trows = [(f"{os.path.basename(path)}:{line}", n,
                      _source_line(path, line, dirs, cache)) for n, path, line in lines[:top]]
            if trows:
                out += ["", "top lines (count of the line's most executed instruction)",
                        table(trows, ("line", "count", "source"))]

    summary = coverage_summary(module, profile, files)
    if summary:
        out += ["", "coverage"]
        labels = {"functions": "functions entered", "blocks": "basic blocks",
                  "instructions": "instructions", "lines": "source lines",
                  "branches": "branch outcomes"}
        srows = [(labels[k], f"{v['hit']}/{v['total']}", _pct(v["hit"], v["total"]))
                 for k, v in summary.items()]
        out.append(table(srows, ("what", "covered", "")))
        if files:
            frows = [(os.path.basename(fc.path), f"{fc.lines_hit}/{len(fc.lines)}",
                      _pct(fc.lines_hit, len(fc.lines)),
                      f"{fc.functions_hit}/{len(fc.functions)}") for fc in files]
            out += ["", table(frows, ("file", "lines", "covered", "functions"))]
    return "\n".join(out) + "\n"


def cfg_text(g: Any, module: Module | None = None) -> str:
    """A CFG graph from `probes.analyses.cfg` as a listing with counts: each
    block with its pc range and count, its successors with edge counts, and
    its instructions."""
    from ..ir.printer import format_instr

    profiled = g.graph.get("profiled", False)

    def cnt(x: int | None) -> str:
        return "?" if x is None else str(x)

    real = [n for n, d in g.nodes(data=True) if not d.get("exit")]
    head = f"func {g.graph['func']} {g.graph.get('name', '')}".rstrip()
    lines = [f"{head}: {len(real)} blocks, {g.number_of_edges()} edges"]
    for n in sorted(real):
        d = g.nodes[n]
        succs = []
        for _, v, _, e in sorted(g.out_edges(n, keys=True, data=True), key=lambda t: t[2]):
            name = "exit" if g.nodes[v].get("exit") else f"B{v}"
            idx = "" if e.get("index") is None else f" {e['index']}"
            extra = f" x{cnt(e.get('count'))}" if profiled else ""
            succs.append(f"{name} ({e['kind']}{idx}){extra}")
        count = f"  count {cnt(d.get('count'))}" if profiled else ""
        lines.append(f"B{n}  pc {d['start_pc']}..{d['end_pc']}{count}  "
                     f"succs: {', '.join(succs) or '-'}")
        for ins in d["block"].instrs:
            lines.append(f"  {ins.pc:>6}  {format_instr(ins, module)}")
    ex = g.graph["exit"]
    if profiled:
        lines.append(f"exit  count {cnt(g.nodes[ex].get('count'))}")
    return "\n".join(lines) + "\n"
