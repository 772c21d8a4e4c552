"""Static and dynamic call graphs, with recursion marked.

    >>> g = callgraph(module, profile)          # static edges, with run counts
    >>> d = callgraph(module, profile, dynamic=True)   # only what ran
    >>> g.nodes[f]["recursive"], g.edges[a, b]["count"]

Nodes are function indices (imports included) with ``name``, ``imported``,
``exported``, ``address_taken``, ``recursive`` and ``scc`` (index into
``graph["sccs"]``, the non-trivial strongly connected components, i.e. the
recursive groups); with a profile also ``entries`` (times entered).

Static edges: every direct ``call``, and for every ``call_indirect`` each
*candidate*: a function that can sit in the table (from the element
segments) and whose type is the one the instruction names. When the table
can change at run time (it is imported or exported, or the code writes to
it) the candidates are all functions whose address is taken (any element
segment or ``ref.func``) with that type. Edge attributes: ``kind``
(``direct``, ``indirect`` or ``both``), ``sites`` (the call Locations),
``static`` (bool), and with a profile ``count`` (calls in the run). The
dynamic graph (``dynamic=True``) has the edges of `ProfileData.calls` only,
weighted by ``count``, static facts attached where known.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import networkx as nx

from ..ir import Location
from ._common import entered_functions, func_name

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

__all__ = ["callgraph", "table_contents", "address_taken", "indirect_candidates",
           "mark_recursion", "roots"]

_TABLE_WRITES = {"table.set": 0, "table.grow": 0, "table.fill": 0, "table.init": 1,
                 "table.copy": 0}
"""Instructions that change a table -> position of the table in the immediate
(None when the immediate is the table index itself)."""


def table_contents(module: Module, table: int) -> dict[int, int]:
    """Slot -> function from constant active element segments (`Module.table_contents`)."""
    return module.table_contents(table)


def _scan(module: Module) -> tuple[set[int], set[int], set[tuple[int, int]]]:
    """One pass over the code: (functions named by ``ref.func``, tables written,
    (type, table) of every ``call_indirect``)."""
    refs: set[int] = set()
    written: set[int] = set()
    indirect: set[tuple[int, int]] = set()
    for _, ins in module.iter_instrs():
        name = ins.op.name
        if name == "ref.func":
            refs.add(ins.imm)
        elif name == "call_indirect":
            indirect.add((ins.imm[0], ins.imm[1]))
        else:
            pos = _TABLE_WRITES.get(name)
            if pos is not None:
                imm = ins.imm
                written.add(imm[pos] if isinstance(imm, tuple) else imm)
    return refs, written, indirect


def address_taken(module: Module, _refs: set[int] | None = None) -> set[int]:
    """Functions named by any element segment or ``ref.func`` (code or globals)."""
    return set(_scan(module)[0] if _refs is None else _refs) | module.funcs_named_by_data()


def indirect_candidates(module: Module, _scanned: tuple[set[int], set[int],
                                                        set[tuple[int, int]]] | None = None
                        ) -> dict[tuple[int, int], list[int]]:
    """(type index, table) -> functions a ``call_indirect`` of that type through
    that table may reach."""
    refs, written, keys = _scan(module) if _scanned is None else _scanned
    mutable = written | set(range(len(module.imports_of("table"))))
    mutable |= {e.index for e in module.exports if e.kind == "table"}
    taken = address_taken(module, refs)
    sigs = [module.func_type(f) for f in range(module.num_funcs)]
    contents: dict[int, set[int]] = {}
    out: dict[tuple[int, int], list[int]] = {}
    for key in sorted(keys):
        type_index, table = key
        want = module.types[type_index]
        if table not in contents:
            contents[table] = set(table_contents(module, table).values())
        pool = contents[table] | taken if table in mutable else contents[table]
        out[key] = sorted(f for f in pool if 0 <= f < len(sigs) and sigs[f] == want)
    return out


def mark_recursion(g: nx.DiGraph) -> list[list[int]]:
    """Set ``recursive`` and ``scc`` on every node; return the recursive groups
    (components with a cycle), largest first, each sorted."""
    sccs = [sorted(c) for c in nx.strongly_connected_components(g)
            if len(c) > 1 or g.has_edge(next(iter(c)), next(iter(c)))]
    sccs.sort(key=lambda c: (-len(c), c))
    for n in g.nodes:
        g.nodes[n]["recursive"] = False
        g.nodes[n]["scc"] = None
    for i, comp in enumerate(sccs):
        for n in comp:
            g.nodes[n]["recursive"] = True
            g.nodes[n]["scc"] = i
    g.graph["sccs"] = sccs
    return sccs


def roots(module: Module) -> set[int]:
    """Functions the outside world can start from: exports, the start function
    and everything whose address is taken (a host may call through a table)."""
    out = {e.index for e in module.exports if e.kind == "func"}
    if module.start is not None:
        out.add(module.start)
    return out | address_taken(module)


def _add_node(g: nx.DiGraph, module: Module | None, f: int, exported: set[int],
              taken: set[int]) -> None:
    imported = module is not None and f < module.num_imported_funcs
    g.add_node(f, name=func_name(module, f), imported=imported, exported=f in exported,
               address_taken=f in taken)


def callgraph(module: Module | None, profile: ProfileData | None = None, *,
              dynamic: bool = False) -> nx.DiGraph:
    """The static call graph of ``module`` (with run counts from ``profile``),
    or with ``dynamic=True`` the dynamic one (``profile`` required; ``module``
    only adds names and static facts)."""
    # Building a million small edge dicts sets off the cyclic garbage collector
    # over and over (a third of the time); nothing here makes cycles.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _callgraph(module, profile, dynamic)
    finally:
        if enabled:
            gc.enable()


def _callgraph(module: Module | None, profile: ProfileData | None, dynamic: bool
               ) -> nx.DiGraph:
    g = nx.DiGraph(dynamic=dynamic)
    exported: set[int] = set()
    taken: set[int] = set()
    static_edges: dict[tuple[int, int], dict[str, Any]] = {}
    if module is not None:
        exported = {e.index for e in module.exports if e.kind == "func"}
        scanned = _scan(module)
        taken = address_taken(module, scanned[0])
        cands = indirect_candidates(module, scanned)
        for f in module.functions:
            a = f.index
            by_key: dict[tuple[int, int], list[Location]] = {}
            for ins in f.instrs:
                name = ins.op.name
                if name == "call":
                    e = static_edges.get((a, ins.imm))
                    if e is None:
                        static_edges[(a, ins.imm)] = {"kind": "direct",
                                                      "sites": [Location(a, ins.pc)]}
                    else:
                        e["sites"] = [*e["sites"], Location(a, ins.pc)]
                elif name == "call_indirect":
                    by_key.setdefault((ins.imm[0], ins.imm[1]), []).append(Location(a, ins.pc))
            for key, sites in by_key.items():
                for t in cands.get(key, ()):
                    e = static_edges.get((a, t))
                    if e is None:  # the candidates of one site share its list
                        static_edges[(a, t)] = {"kind": "indirect", "sites": sites}
                    else:
                        e["kind"] = "both" if e["kind"] == "direct" else e["kind"]
                        e["sites"] = [*e["sites"], *sites]
    if dynamic:
        if profile is None:
            raise ValueError("the dynamic call graph needs a profile")
        funcs = {f for edge in profile.calls for f in edge} | set(profile.entries)
        for fi in sorted(funcs):
            _add_node(g, module, fi, exported, taken)
        for (a, b), calls in sorted(profile.calls.items()):
            if calls <= 0:
                continue
            st = static_edges.get((a, b))
            g.add_edge(a, b, count=calls, static=st is not None,
                       kind=st["kind"] if st else "unknown",
                       sites=list(st["sites"]) if st else [])
    else:
        if module is None:
            raise ValueError("the static call graph needs a module")
        for fi in range(module.num_funcs):
            _add_node(g, module, fi, exported, taken)
        # A million edges is common (call_indirect through a big table): fill the
        # adjacency of this new graph directly instead of through add_edges_from,
        # which costs twice as much. Every node already exists.
        succ, pred = g._succ, g._pred
        for (a, b), attrs in static_edges.items():
            d = {"static": True, "kind": attrs["kind"], "sites": attrs["sites"]}
            succ[a][b] = d
            pred[b][a] = d
        if profile is not None:
            for (a, b), calls in profile.calls.items():
                if g.has_edge(a, b):
                    g.edges[a, b]["count"] = calls
                elif calls > 0:  # a call the static analysis did not predict
                    g.add_edge(a, b, static=False, kind="unknown", sites=[], count=calls)
            for _, _, d in g.edges(data=True):
                d.setdefault("count", 0)
    if profile is not None:
        ran = entered_functions(profile)
        imported = module.num_imported_funcs if module is not None else 0
        for f in g.nodes:
            n = profile.entries.get(f)
            if f < imported and profile.calls:  # imports have no entry probes
                n = sum(d.get("count") or 0 for _, _, d in g.in_edges(f, data=True))
                if n and ran is not None:
                    ran = ran | {f}
            elif n is None and ran is not None and f not in ran:
                n = 0
            g.nodes[f]["entries"] = n
            if ran is not None:
                g.nodes[f]["entered"] = f in ran
    mark_recursion(g)
    return g
