"""Hot paths: the heaviest paths through a function's CFG, and across calls.

    >>> for p in hot_paths(module, "main", profile, k=3):
    ...     print(p.count, p.blocks, p.loop_header)
    >>> hot_call_paths(module, profile, k=3)[0].funcs

Edge counts do not say how often a whole path ran, but they bound it: a
path cannot run more often than its least-taken edge. That bound is a
path's ``count`` here, and paths are ranked by it (then by instructions
executed along them). Like Ball and Larus's acyclic paths, a path runs
from the function's entry or a loop header to the exit or a back edge:
cutting every back edge makes the CFG acyclic, and a path that starts at a
header (``loop_header``) is one iteration of that loop.

Across calls (`hot_call_paths`): with a calling-context tree (the
``profile`` monitor), the sampled stacks where the time went, exactly;
otherwise the functions that did the most work, each with its most frequent
route from a root of the dynamic call graph (the chain whose least
frequent call is most frequent).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from ._common import func_name, has_counts
from .calls import callgraph
from .flowgraph import cfg as _cfg
from .loopforest import loop_forest

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

__all__ = ["HotPath", "CallPath", "hot_paths", "hot_call_paths", "widest_paths"]


@dataclass(frozen=True, slots=True)
class HotPath:
    """A path through one function's CFG."""

    func: int
    """The function."""
    blocks: tuple[int, ...]
    """Block ids along the path (the exit block last when it returns)."""
    count: int
    """Upper bound on how often the path ran: its least-taken edge."""
    instructions: int
    """Instructions along the path times `count` (a weight for ranking)."""
    loop_header: int | None = None
    """The loop whose iteration this path is, when it starts at a header."""


@dataclass(frozen=True, slots=True)
class CallPath:
    """A chain of calls."""

    funcs: tuple[int, ...]
    """Function indices, caller first."""
    names: tuple[str, ...]
    """Their display names."""
    count: int
    """The weight of the chain's last function: samples taken in this context,
    or instructions it executed, or calls to it (see `unit`)."""
    unit: str
    """``samples``, ``instructions`` or ``calls``."""
    exact: bool
    """Whether the chain is a sampled calling context (else the most frequent
    route to the function, from the dynamic call graph)."""


def widest_paths(succ: dict[Hashable, list[tuple[Hashable, int]]],
                 sources: Iterable[tuple[Hashable, int]], sinks: set[Hashable], k: int,
                 weight: dict[Hashable, int] | None = None, *, simple: bool = False,
                 limit: int = 200_000) -> list[tuple[int, int, tuple[Hashable, ...]]]:
    """The ``k`` paths from a source to a sink with the largest bottleneck.

    ``succ`` maps a node to (successor, edge count) pairs and ``sources`` gives
    (start node, the count of the edge into it). Best-first search: a path's
    bottleneck only shrinks as it grows, so complete paths come out of the
    queue best first. Returns (bottleneck, weight, nodes) triples, where the
    weight sums ``weight[node]`` times the bottleneck. ``simple`` forbids
    revisiting a node (needed when the graph has cycles); ``limit`` caps the
    work on pathological graphs.
    """
    weight = weight or {}
    heap: list[tuple[int, int, int, tuple[Hashable, ...]]] = []
    tie = 0
    for node, c in sources:
        if c > 0:
            heapq.heappush(heap, (-c, tie, weight.get(node, 0), (node,)))
            tie += 1
    out: list[tuple[int, int, tuple[Hashable, ...]]] = []
    pops = 0
    while heap and len(out) < k and pops < limit:
        neg, _, w, path = heapq.heappop(heap)
        pops += 1
        node = path[-1]
        nexts = [(s, c) for s, c in succ.get(node, ()) if c > 0
                 and not (simple and s in path)]
        if node in sinks or not nexts:
            out.append((-neg, w * -neg, path))
            if node in sinks or not succ.get(node):
                continue
        for s, c in nexts:
            heapq.heappush(heap, (max(neg, -c), tie, w + weight.get(s, 0), path + (s,)))
            tie += 1
    return out


def hot_paths(module: Module | nx.MultiDiGraph, func: int | str | None = None,
              profile: ProfileData | None = None, k: int = 5) -> list[HotPath]:
    """The ``k`` heaviest acyclic paths through ``func`` (a CFG graph with
    counts may be passed instead of module, func and profile)."""
    if isinstance(module, (nx.DiGraph, nx.MultiDiGraph)):
        g = module
    else:
        if func is None or profile is None:
            raise TypeError("hot_paths needs a module, a function and a profile")
        g = _cfg(module, func, profile)
    fn = g.graph.get("func", -1)
    entry, exit_ = g.graph["entry"], g.graph["exit"]
    forest = loop_forest(g)
    back = {e for lp in forest for e in lp.back_edges}
    headers = {lp.header for lp in forest}
    succ: dict[Hashable, list[tuple[Hashable, int]]] = {}
    latch_counts: dict[Hashable, int] = {}
    header_in: dict[Hashable, int] = {}
    for u, v, d in g.edges(data=True):
        c = d.get("count") or 0
        if (u, v) in back:
            latch_counts[u] = latch_counts.get(u, 0) + c
            header_in[v] = header_in.get(v, 0) + c
            continue
        succ.setdefault(u, []).append((v, c))
    # Merge parallel edges (br_table positions to one block).
    for u, lst in succ.items():
        merged: dict[Hashable, int] = {}
        for v, c in lst:
            merged[v] = merged.get(v, 0) + c
        succ[u] = list(merged.items())
    # A path ends at the exit or at a block whose back edge closes an iteration;
    # such a block may also continue, so it is a sink through a pseudo node.
    END = ("end",)
    for u, c in latch_counts.items():
        succ.setdefault(u, []).append((END, c))
    entry_count = g.nodes[entry].get("count") or 0
    sources = [(entry, entry_count)] + [(h, header_in.get(h, 0)) for h in headers
                                        if h != entry]
    weight = {n: g.nodes[n].get("instrs", 0) for n in g.nodes}
    paths = widest_paths(succ, sources, {exit_, END}, k, weight)
    out = []
    for count, w, nodes in paths:
        blocks = tuple(n for n in nodes if n != END)
        start = blocks[0]
        header = start if start in headers and start != entry else None
        out.append(HotPath(fn, blocks, count, w, header))  # type: ignore[arg-type]
    return out


def _widest_tree(g: nx.DiGraph, roots: Iterable[Hashable]) -> dict[Hashable, Hashable | None]:
    """Parent pointers of the widest-path tree from ``roots`` over edge ``count``s
    (Dijkstra with max-min instead of plus)."""
    best: dict[Hashable, float] = {}
    parent: dict[Hashable, Hashable | None] = {}
    heap: list[tuple[float, int, Hashable, Hashable | None]] = []
    tie = 0
    for r in roots:
        heapq.heappush(heap, (-float("inf"), tie, r, None))
        tie += 1
    done: set[Hashable] = set()
    while heap:
        neg, _, n, par = heapq.heappop(heap)
        if n in done:
            continue
        done.add(n)
        parent[n] = par
        for v, d in g.succ[n].items():
            w = min(-neg, d.get("count") or 0)
            if v not in done and w > best.get(v, 0):
                best[v] = w
                heapq.heappush(heap, (-w, tie, v, n))
                tie += 1
    return parent


def hot_call_paths(module: Module | None, profile: ProfileData, k: int = 5
                   ) -> list[CallPath]:
    """The ``k`` hottest call chains.

    With a calling-context tree: the contexts where the most samples were
    taken, exactly. Otherwise: the ``k`` functions that executed the most
    instructions (or, without counts, were called most), each with the most
    frequent chain of calls leading to it from a root of the dynamic call
    graph (the chain whose least frequent call is most frequent).
    """
    if profile.cct:
        ranked = sorted(((int(node.get("self_samples", 0)), path)
                         for path, node in profile.cct.items()),
                        key=lambda x: (-x[0], x[1]))
        return [CallPath(path, tuple(func_name(module, f) for f in path), n, "samples", True)
                for n, path in ranked[:k] if n > 0]
    g = callgraph(module, profile, dynamic=True)
    if has_counts(profile):
        weight, unit = profile.function_counts(), "instructions"
    else:
        weight = {f: n for f, n in profile.entries.items()}
        for (_, b), n in profile.calls.items():
            weight.setdefault(b, 0)
            if b not in profile.entries:
                weight[b] += n
        unit = "calls"
    called = {v for u, v in g.edges if u != v}
    roots = [n for n in g.nodes if n not in called] or sorted(g.nodes)[:1]
    parent = _widest_tree(g, roots)
    out = []
    for f, n in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))[:k]:
        if n <= 0:
            break
        chain = [f]
        while parent.get(chain[-1]) is not None:
            chain.append(parent[chain[-1]])  # type: ignore[arg-type]
        path = tuple(reversed(chain))
        out.append(CallPath(path, tuple(func_name(module, x) for x in path), n, unit, False))
    return out
