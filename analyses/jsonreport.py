"""JSON for everything: the analyses of a profile in one document.

    >>> doc = json_report(profile, module)               # whole program
    >>> doc = json_report(profile, module, func="main")  # plus one function's graphs

Top level (keys present when the profile and module can fill them)::

    {"format": "probes-report", "version": 1, "program", "module_sha256",
     "backend", "runs", "exit_code", "trap", "monitors",
     "coverage": {"functions"|"blocks"|"instructions"|"lines"|"branches":
                  {"hit", "total"}},
     "functions": [{"index", "name", "file", "line", "entries", "entered",
                    "instructions", "instrs_covered", "instrs_total",
                    "self_ns", "total_ns", "self_samples"}],
     "files": [{"path", "lines": [[line, count]], "functions": [[name, line,
                entries]], "branches": [[line, block, branch, taken|null]]}],
     "callgraph": {"dynamic": true, "nodes": [{"index", "name", "entries",
                   "recursive"}], "edges": [{"caller", "callee", "count",
                   "kind", "static"}], "recursive": [[f, ...]]},
     "loops": [{"func", "pc", "entries", "iterations"}],
     "hot_call_paths": [{"funcs", "names", "count", "exact"}],
     "dead_code": {"static_functions", "unexecuted_functions"},
     "function": {"index", "name",
                  "cfg": {"entry", "exit", "nodes": [{"id", "start_pc", "end_pc",
                          "instrs", "count", "covered"}], "edges": [{"src", "dst",
                          "key", "kind", "index", "count"}]},
                  "dominators": [[node, idom]], "post_dominators": [[node, ipdom]],
                  "loops": [{"header", "entries", "body", "back_edges", "depth",
                             "parent", "reducible", "pc", "iterations", "entered"}],
                  "hot_paths": [{"blocks", "count", "instructions", "loop_header"}]}}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .calls import callgraph
from .deadcode import dead_code
from .dominance import dominators, post_dominators
from .flowgraph import cfg
from .hotpaths import hot_call_paths, hot_paths
from .loopforest import loops
from .sourcemap import source_coverage, source_map
from .summary import coverage_summary, function_rows

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData
    from .sourcemap import SourceMap

__all__ = ["json_report", "function_json", "REPORT_VERSION"]

REPORT_VERSION = 1
"""Bumped when the report layout changes incompatibly."""


def function_json(module: Module, func: int | str, profile: ProfileData | None = None
                  ) -> dict[str, Any]:
    """One function's CFG (with counts), dominator trees, loops and hot paths."""
    g = cfg(module, func, profile)
    fn = g.graph["func"]
    dom = dominators(g)
    pdom = post_dominators(g)
    forest = loops(g, profile=profile)
    nodes = []
    for n, d in g.nodes(data=True):
        node = {"id": n, "start_pc": d["start_pc"], "end_pc": d["end_pc"],
                "instrs": d["instrs"]}
        if profile is not None:
            node["count"] = d.get("count")
            node["covered"] = d.get("covered")
        nodes.append(node)
    edges = []
    for u, v, k, d in g.edges(keys=True, data=True):
        e = {"src": u, "dst": v, "key": k, "kind": d["kind"], "index": d["index"]}
        if profile is not None:
            e["count"] = d.get("count")
        edges.append(e)
    out: dict[str, Any] = {
        "index": fn, "name": g.graph["name"],
        "cfg": {"entry": g.graph["entry"], "exit": g.graph["exit"], "nodes": nodes,
                "edges": edges},
        "dominators": sorted([n, i] for n, i in dom.graph["idom"].items()),
        "post_dominators": sorted([n, i] for n, i in pdom.graph["idom"].items()),
        "loops": [{"header": lp.header, "entries": sorted(lp.entries),  # type: ignore
                   "body": sorted(lp.body),  # type: ignore[type-var]
                   "back_edges": [list(e) for e in lp.back_edges], "depth": lp.depth,
                   "parent": lp.parent, "reducible": lp.reducible,
                   "pc": lp.location.pc if lp.location else None,
                   "iterations": lp.iterations, "entered": lp.entered}
                  for lp in forest],
    }
    if profile is not None:
        out["hot_paths"] = [{"blocks": list(p.blocks), "count": p.count,
                             "instructions": p.instructions, "loop_header": p.loop_header}
                            for p in hot_paths(g, k=5)]
    return out


def json_report(profile: ProfileData, module: Module | None = None, *,
                func: int | str | None = None, sm: SourceMap | None = None,
                include: Sequence[str] = (), omit: Sequence[str] | None = None
                ) -> dict[str, Any]:
    """The report document (a dict for ``json.dump``)."""
    doc: dict[str, Any] = {
        "format": "probes-report", "version": REPORT_VERSION,
        "program": profile.program, "module_sha256": profile.module_sha256,
        "backend": profile.backend, "runs": profile.runs, "exit_code": profile.exit_code,
        "trap": profile.trap, "monitors": profile.monitors,
    }
    files = None
    if module is not None:
        sm = sm or source_map(module)
        files = source_coverage(module, profile, sm, include=include, omit=omit)
    doc["coverage"] = coverage_summary(module, profile, files)
    doc["functions"] = function_rows(module, profile, sm)
    if files:
        doc["files"] = [{"path": fc.path, "lines": sorted([k, v] for k, v in fc.lines.items()),
                         "functions": [list(t) for t in fc.functions],
                         "branches": [list(t) for t in fc.branches]} for fc in files]
    if profile.calls:
        g = callgraph(module, profile, dynamic=True)
        doc["callgraph"] = {
            "dynamic": True,
            "nodes": [{"index": n, "name": d["name"], "entries": d.get("entries"),
                       "recursive": d["recursive"]} for n, d in sorted(g.nodes(data=True))],
            "edges": [{"caller": u, "callee": v, "count": d["count"], "kind": d["kind"],
                       "static": d["static"]} for u, v, d in sorted(g.edges(data=True))],
            "recursive": g.graph["sccs"],
        }
    if profile.loops:
        doc["loops"] = [{"func": loc.func, "pc": loc.pc, **v}
                        for loc, v in sorted(profile.loops.items())]
    if profile.calls or profile.cct:
        doc["hot_call_paths"] = [{"funcs": list(p.funcs), "names": list(p.names),
                                  "count": p.count, "unit": p.unit, "exact": p.exact}
                                 for p in hot_call_paths(module, profile)]
    if module is not None:
        dead = dead_code(module, profile)
        doc["dead_code"] = {"static_functions": dead.static_functions,
                            "unexecuted_functions": dead.unexecuted_functions}
        if func is not None:
            doc["function"] = function_json(module, func, profile)
    return doc
