"""Numbers the text and JSON reports share: per-function rows and coverage totals.

    >>> rows = function_rows(module, profile)       # one dict per function
    >>> coverage_summary(module, profile)["lines"]   # {"hit": 40, "total": 44}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..ir import Location
from ..ir.blocks import counting_blocks
from ._common import entered_functions, func_name, has_branches, has_counts
from .sourcemap import FileCoverage, SourceMap

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

__all__ = ["function_rows", "coverage_summary", "function_times"]


def function_times(profile: ProfileData) -> tuple[dict[int, float], dict[int, float],
                                                  dict[int, int]]:
    """(self ns, total ns, self samples) per function from the calling-context
    tree; a recursive function's total counts its outermost frames once."""
    self_ns: dict[int, float] = {}
    total_ns: dict[int, float] = {}
    samples: dict[int, int] = {}
    for path, node in profile.cct.items():
        f = path[-1]
        self_ns[f] = self_ns.get(f, 0.0) + node.get("self_ns", 0.0)
        samples[f] = samples.get(f, 0) + int(node.get("self_samples", 0))
        if f not in path[:-1]:
            total_ns[f] = total_ns.get(f, 0.0) + node.get("total_ns", 0.0)
    return self_ns, total_ns, samples


def function_rows(module: Module | None, profile: ProfileData,
                  sm: SourceMap | None = None) -> list[dict[str, Any]]:
    """One row per function the profile mentions (every defined function when
    the module is known): index, name, source position, entries,
    instructions executed, instruction coverage and sampled time."""
    per_instr: dict[int, int] = profile.function_counts()
    cov_hit: dict[int, int] = {}
    cov_total: dict[int, int] = {}
    for loc, flag in profile.coverage.items():
        if loc.pc < 0:
            continue
        cov_total[loc.func] = cov_total.get(loc.func, 0) + 1
        cov_hit[loc.func] = cov_hit.get(loc.func, 0) + bool(flag)
    self_ns, total_ns, samples = function_times(profile)
    ran = entered_functions(profile)
    if module is not None:
        funcs = [f.index for f in module.functions]
    else:
        funcs = sorted(set(per_instr) | set(profile.entries) | set(cov_total) | set(self_ns)
                       | set(profile.function_coverage))
    counted = has_counts(profile)
    rows = []
    for f in funcs:
        row: dict[str, Any] = {"index": f, "name": func_name(module, f)}
        if sm is not None and sm.has_lines and sm.kind == "dwarf":
            p = sm.function_position(f)
            row["file"], row["line"] = (p.file, p.line) if p else (None, None)
        row["entries"] = profile.entries.get(f)
        if row["entries"] is None and counted and module is not None:
            first = module.function(f).instrs[0].pc
            row["entries"] = profile.counts.get(Location(f, first), 0)
        row["entered"] = None if ran is None else f in ran
        row["instructions"] = per_instr.get(f, 0) if counted else None
        if module is not None:
            total = len(module.function(f).instrs)
            hit: int | None
            if counted:
                hit = sum(1 for ins in module.function(f).instrs
                          if profile.counts.get(Location(f, ins.pc), 0) > 0)
            elif f in cov_total:
                hit = cov_hit.get(f, 0)
            else:
                hit = None
            row["instrs_total"] = total
            row["instrs_covered"] = hit
        if profile.cct:
            row["self_ns"] = self_ns.get(f, 0.0)
            row["total_ns"] = total_ns.get(f, 0.0)
            row["self_samples"] = samples.get(f, 0)
        rows.append(row)
    return rows


def coverage_summary(module: Module | None, profile: ProfileData,
                     files: list[FileCoverage] | None = None) -> dict[str, dict[str, int]]:
    """{"functions"|"blocks"|"instructions"|"lines"|"branches": {"hit", "total"}}:
    whatever the profile can tell (lines and branches from ``files``)."""
    out: dict[str, dict[str, int]] = {}
    ran = entered_functions(profile)
    if module is not None and ran is not None:
        out["functions"] = {"hit": sum(1 for f in module.functions if f.index in ran),
                            "total": len(module.functions)}
    counted = has_counts(profile)
    instr_cov = any(loc.pc >= 0 for loc in profile.coverage)
    if module is not None and (counted or instr_cov):
        counts, cov = profile.counts, profile.coverage
        ih = it = bh = bt = 0
        for f in module.functions:
            instrs = f.instrs
            hits = [counts.get(Location(f.index, i.pc), 0) > 0 if counted
                    else bool(cov.get(Location(f.index, i.pc))) for i in instrs]
            ih += sum(hits)
            it += len(instrs)
            for b in counting_blocks(instrs):
                bt += 1
                bh += any(hits[b.first:b.last + 1])
        out["blocks"] = {"hit": bh, "total": bt}
        out["instructions"] = {"hit": ih, "total": it}
    if files:
        out["lines"] = {"hit": sum(fc.lines_hit for fc in files),
                        "total": sum(len(fc.lines) for fc in files)}
        if has_branches(profile):
            out["branches"] = {"hit": sum(fc.branches_hit for fc in files),
                               "total": sum(len(fc.branches) for fc in files)}
    elif module is not None and has_branches(profile):
        hit = total = 0
        for f in module.functions:
            for ins in f.instrs:
                name = ins.op.name
                if name in ("br_if", "if", "br_table"):
                    hist = profile.branches.get(Location(f.index, ins.pc), {})
                    n = 2 if name != "br_table" else len(ins.imm[0]) + 1
                    keys = [1, 0] if name != "br_table" else list(range(n))
                    total += n
                    hit += sum(1 for k in keys if hist.get(k, 0) > 0)
        out["branches"] = {"hit": hit, "total": total}
    return out
