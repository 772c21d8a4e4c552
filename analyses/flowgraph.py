"""Per-function control-flow graphs on networkx, annotated from a profile.

    >>> g = cfg(module, "main", profile)
    >>> g.nodes[0]["start"], g.nodes[0]["count"]
    (Location(func=24, pc=3), 1)
    >>> [(u, v, d["kind"], d["count"]) for u, v, d in g.edges(data=True)]

The graph is an `networkx.MultiDiGraph` over the blocks of `probes.ir.cfg`
(same ids: block ``i`` is ``CFG.blocks[i]``; the virtual exit is
``len(blocks)``). Two edges may join the same pair of blocks (``br_table``
positions), so edges are keyed by their position in the source block's
successor list.

Counts. A block's count is the count of its first instruction
(`ProfileData.counts`). Edge counts come from the branch profile
(``br_if``/``if`` taken and not taken, ``br_table`` positions) and from flow
conservation: a block runs as often as control enters it, and leaves it as
often as it ran (calls that never return and traps make the second an
approximation, so exact facts are applied first). When the profile has no
instruction counts, block counts are derived the same way from the branch
profile and the function's entry count, where the equations determine them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import networkx as nx

from ..ir import Location
from ..ir.cfg import CFG, build_cfg
from ._common import func_name, has_branches, has_counts

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

__all__ = ["cfg", "build", "block_counts", "solve_counts", "EdgeKey", "resolve_func"]

EdgeKey = tuple[int, int]
"""(source block id, position in its successor list): names one CFG edge."""


def resolve_func(module: Module, func: int | str) -> int:
    """A defined function's index from an index, debug name or export name."""
    if isinstance(func, str):
        func = module.resolve_func(func)
    module.function(func)  # KeyError for an import
    return func


def build(module: Module, func: int | str) -> CFG:
    """The `probes.ir.cfg.CFG` of a defined function (by index or name)."""
    return build_cfg(module, resolve_func(module, func))


def _branch_edges(c: CFG, profile: ProfileData) -> dict[EdgeKey, int]:
    """Edge counts the branch profile states exactly."""
    out: dict[EdgeKey, int] = {}
    if not has_branches(profile):
        return out
    branches = profile.branches
    for b in c.blocks:
        last = b.last
        name = last.op.name
        if name not in ("br_if", "if", "br_table"):
            continue
        hist = branches.get(Location(c.func, last.pc), {})
        for k, e in enumerate(b.succs):
            if name == "br_table":
                out[(b.id, k)] = hist.get(e.index if e.index is not None else k, 0)
            else:  # succs: [taken (nonzero), fallthrough (zero)]
                out[(b.id, k)] = hist.get(1 if k == 0 else 0, 0)
    return out


def solve_counts(c: CFG, blocks: Mapping[int, int], edges: Mapping[EdgeKey, int],
                 entries: int | None = None) -> tuple[dict[int, int], dict[EdgeKey, int]]:
    """Complete block and edge counts from the known ones by flow conservation.

    ``blocks`` and ``edges`` are the exactly known counts; ``entries`` how
    often the function was entered (when known). Exact equations (a block
    runs as often as control enters it) are applied to a fixpoint first,
    then the approximate ones (it leaves as often as it ran). Counts the
    equations cannot determine stay absent from the result.
    """
    bc = dict(blocks)
    ec = dict(edges)
    exit_id = c.exit.id
    entry_id = c.entry.id
    # Equations: count(node) = extra + sum(edge keys).
    eqs: list[tuple[int, list[EdgeKey], bool]] = []  # (node, keys, is_in_equation)
    ins: dict[int, list[EdgeKey]] = {b.id: [] for b in c.nodes}
    for b in c.blocks:
        for k, e in enumerate(b.succs):
            ins[e.dst].append((b.id, k))
    for node, keys in ins.items():
        eqs.append((node, keys, True))
    out_eqs = [(b.id, [(b.id, k) for k in range(len(b.succs))], False)
               for b in c.blocks if b.succs]
    by_var: dict[object, list[int]] = {}

    def index(eq_list: list[tuple[int, list[EdgeKey], bool]], start: int) -> None:
        for i, (node, keys, _) in enumerate(eq_list, start):
            by_var.setdefault(("b", node), []).append(i)
            for key in keys:
                by_var.setdefault(key, []).append(i)

    def extra(node: int, is_in: bool) -> int | None:
        if is_in and node == entry_id:
            return entries
        return 0

    def settle(all_eqs: list[tuple[int, list[EdgeKey], bool]]) -> None:
        work = list(range(len(all_eqs)))
        queued = set(work)
        while work:
            i = work.pop()
            queued.discard(i)
            node, keys, is_in = all_eqs[i]
            x = extra(node, is_in)
            unknown = [k for k in keys if k not in ec]
            changed: list[object] = []
            if x is None:  # the entry block while the entry count is unknown
                continue
            if node in bc:
                if len(unknown) == 1:
                    known = sum(ec[k] for k in keys if k in ec)
                    ec[unknown[0]] = max(0, bc[node] - x - known)
                    changed.append(unknown[0])
            elif not unknown:
                bc[node] = x + sum(ec[k] for k in keys)
                changed.append(("b", node))
            for var in changed:
                for j in by_var.get(var, ()):
                    if j < len(all_eqs) and j not in queued:
                        queued.add(j)
                        work.append(j)

    index(eqs, 0)
    settle(eqs)
    index(out_eqs, len(eqs))
    settle(eqs + out_eqs)
    if exit_id not in bc and all(k in ec for k in ins[exit_id]):
        bc[exit_id] = sum(ec[k] for k in ins[exit_id])
    return bc, ec


def block_counts(module: Module, func: int | str, profile: ProfileData,
                 c: CFG | None = None) -> tuple[dict[int, int], dict[EdgeKey, int]]:
    """(block id -> count, edge key -> count) for one function from a profile.

    Only what the profile determines is present: with instruction counts
    every block; edges from the branch profile and flow conservation.
    """
    if c is None:
        c = build(module, func)
    known: dict[int, int] = {}
    if has_counts(profile):
        counts = profile.counts
        for b in c.blocks:
            known[b.id] = counts.get(Location(c.func, b.start_pc), 0)
    entries = profile.entries.get(c.func)
    if entries is None and known and not c.entry.preds:
        entries = known[c.entry.id]  # Wasm entry blocks have no predecessors
    if entries is None and not known and ("calls" in profile.monitors
                                          or "profile" in profile.monitors):
        entries = 0
    bc, ec = solve_counts(c, known, _branch_edges(c, profile), entries)
    return bc, ec


def cfg(module: Module, func: int | str, profile: ProfileData | None = None, *,
        c: CFG | None = None) -> nx.MultiDiGraph:
    """The control-flow graph of ``func`` as a ``networkx.MultiDiGraph``.

    Nodes are block ids with attributes ``block`` (the `BasicBlock`),
    ``start``/``end`` (the `Location`s of its first and last instruction,
    None for the exit), ``start_pc``/``end_pc``, ``instrs`` (how many),
    ``exit`` (bool) and, with a profile, ``count`` (None when the profile
    does not determine it) and ``covered``. Edges, keyed by successor
    position, carry ``kind`` (an `EdgeKind` string), ``index`` (``br_table``
    position) and, with a profile, ``count``. Graph attributes: ``func``,
    ``name``, ``entry``, ``exit``, ``profiled``.
    """
    if c is None:
        c = build(module, func)
    g = nx.MultiDiGraph(func=c.func, name=func_name(module, c.func), entry=c.entry.id,
                        exit=c.exit.id, profiled=profile is not None)
    bc: dict[int, int] = {}
    ec: dict[EdgeKey, int] = {}
    cov: Mapping[Location, bool] = {}
    if profile is not None:
        bc, ec = block_counts(module, c.func, profile, c)
        cov = profile.coverage
    nodes = []
    for b in c.nodes:
        attrs: dict[str, Any] = {
            "block": b, "exit": b.is_exit,
            "start": None if b.is_exit else Location(c.func, b.start_pc),
            "end": None if b.is_exit else Location(c.func, b.end_pc),
            "start_pc": b.start_pc, "end_pc": b.end_pc, "instrs": len(b.instrs),
        }
        if profile is not None:
            n = bc.get(b.id)
            attrs["count"] = n
            hit = bool(n) if n is not None else None
            if not b.is_exit:
                flags = [cov.get(Location(c.func, ins.pc)) for ins in b.instrs]
                if any(f is not None for f in flags):
                    hit = bool(hit) or any(bool(f) for f in flags)
            attrs["covered"] = hit
        nodes.append((b.id, attrs))
    g.add_nodes_from(nodes)
    edges = []
    for b in c.blocks:
        for k, e in enumerate(b.succs):
            eattrs: dict[str, Any] = {"kind": str(e.kind), "index": e.index}
            if profile is not None:
                eattrs["count"] = ec.get((b.id, k))
            edges.append((e.src, e.dst, k, eattrs))
    g.add_edges_from(edges)
    return g


def simple_digraph(g: nx.MultiDiGraph | nx.DiGraph) -> nx.DiGraph:
    """The same graph with parallel edges merged (what dominance needs)."""
    if not g.is_multigraph():
        return g
    d = nx.DiGraph()
    d.add_nodes_from(g.nodes)
    d.add_edges_from((u, v) for u, v in g.edges())
    d.graph.update(g.graph)
    return d
