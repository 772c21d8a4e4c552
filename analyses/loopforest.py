"""Loops and the loop-nesting forest, irreducible loops included.

    >>> forest = loops(module, "main", profile)
    >>> for lp in forest:
    ...     print(lp.header, sorted(lp.body), lp.depth, lp.iterations)

The forest is Steensgaard's: the loops are the strongly connected parts of
the CFG (reachable from the entry) that contain a cycle; a loop's *entries*
are its nodes with a predecessor outside it, its back edges the edges from
inside it to an entry; removing the back edges and repeating inside each
loop finds the loops nested in it. A loop with one entry is reducible: the
entry is its header, it dominates the body, and the loop is exactly the
natural loop of that header (the union of the natural loops of its back
edges, `natural_loops`). A loop with several entries is irreducible (never
the case for CFGs of structured Wasm code, but hand-built graphs have them);
its `header` is the entry first reached by a depth-first walk.

With a profile, a Wasm loop (its header is the instruction after a
``loop``) gets ``iterations`` (times the header ran: entries plus back
edges taken) and ``entered`` (times control came in from outside), from
`ProfileData.loops` or else from block and edge counts.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx

from ..ir import Location
from .dominance import immediate_dominators
from .flowgraph import cfg as _cfg

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

__all__ = ["Loop", "LoopForest", "loops", "loop_forest", "natural_loops"]


@dataclass
class Loop:
    """One loop of the nesting forest."""

    header: Hashable
    """The single entry of a reducible loop; the first-reached entry otherwise."""
    entries: frozenset[Hashable]
    """Nodes of the body with a predecessor outside it (the function entry counts)."""
    body: frozenset[Hashable]
    """Every node of the loop, nested loops included."""
    back_edges: tuple[tuple[Hashable, Hashable], ...]
    """Edges from inside the body to an entry."""
    parent: int | None = None
    """Index of the innermost enclosing loop in `LoopForest.loops`."""
    children: list[int] = field(default_factory=list)
    """Indices of the loops directly nested in this one."""
    depth: int = 1
    """Nesting depth: 1 for an outermost loop."""
    location: Location | None = None
    """The Wasm ``loop`` instruction whose label the header is, if any."""
    iterations: int | None = None
    """Times the header ran (from a profile)."""
    entered: int | None = None
    """Times control entered the loop from outside (from a profile)."""

    @property
    def reducible(self) -> bool:
        """Whether the loop has a single entry."""
        return len(self.entries) == 1

    @property
    def back_edges_taken(self) -> int | None:
        """Iterations that came round a back edge (from a profile)."""
        if self.iterations is None or self.entered is None:
            return None
        return self.iterations - self.entered


@dataclass
class LoopForest:
    """The loop-nesting forest of one function (or graph)."""

    func: int | None
    """The function, when built from a module."""
    loops: list[Loop]
    """Every loop, outer loops before the loops they contain."""

    @property
    def roots(self) -> list[int]:
        """Indices of the outermost loops."""
        return [i for i, lp in enumerate(self.loops) if lp.parent is None]

    @property
    def irreducible(self) -> list[Loop]:
        """The loops with more than one entry."""
        return [lp for lp in self.loops if not lp.reducible]

    def __iter__(self) -> Iterator[Loop]:
        return iter(self.loops)

    def __len__(self) -> int:
        return len(self.loops)

    def innermost(self, node: Hashable) -> int | None:
        """Index of the innermost loop containing ``node`` (None: not in a loop)."""
        best: int | None = None
        for i, lp in enumerate(self.loops):
            if node in lp.body and (best is None or lp.depth > self.loops[best].depth):
                best = i
        return best

    def graph(self) -> nx.DiGraph:
        """The forest as a ``networkx.DiGraph``: loop index -> nested loop index,
        with each `Loop`'s fields as node attributes."""
        g = nx.DiGraph(func=self.func)
        for i, lp in enumerate(self.loops):
            g.add_node(i, header=lp.header, entries=lp.entries, body=lp.body,
                       depth=lp.depth, reducible=lp.reducible, location=lp.location,
                       iterations=lp.iterations, entered=lp.entered)
        for i, lp in enumerate(self.loops):
            if lp.parent is not None:
                g.add_edge(lp.parent, i)
        return g


def _sccs(nodes: set[Hashable], succ: Any, removed: set[tuple[Hashable, Hashable]]
          ) -> list[set[Hashable]]:
    """Cyclic strongly connected components of the subgraph on ``nodes`` without
    the ``removed`` edges (Tarjan's algorithm, iterative)."""
    index: dict[Hashable, int] = {}
    low: dict[Hashable, int] = {}
    on: set[Hashable] = set()
    stack: list[Hashable] = []
    out: list[set[Hashable]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[Hashable, Iterator[Hashable]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        work.append((root, iter(succ[root])))
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in nodes or (v, w) in removed:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(succ[w])))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1 or any(x == v and (v, v) not in removed for x in succ[v]):
                    out.append(comp)
    return out


def loop_forest(g: nx.DiGraph | nx.MultiDiGraph, entry: Hashable | None = None
                ) -> LoopForest:
    """The loop-nesting forest of any digraph, over the nodes reachable from
    ``entry`` (default ``g.graph["entry"]``)."""
    root = g.graph.get("entry") if entry is None else entry
    succ = g.succ
    pred = g.pred
    reach = set(nx.descendants(g, root)) | {root}
    # DFS preorder, to pick the header of an irreducible loop deterministically.
    order: dict[Hashable, int] = {}
    stack = [root]
    while stack:
        n = stack.pop()
        if n in order:
            continue
        order[n] = len(order)
        stack.extend(reversed([s for s in succ[n] if s not in order]))
    loops_: list[Loop] = []
    removed: set[tuple[Hashable, Hashable]] = set()
    # List loops in node order when nodes are numbers (CFG blocks: pc order).
    rank: dict[Hashable, int] | dict[Hashable, Hashable] = order
    if all(isinstance(n, int) for n in reach):
        rank = {n: n for n in reach}

    def find(nodes: set[Hashable], parent: int | None, depth: int) -> None:
        comps = _sccs(nodes, succ, removed)
        comps.sort(key=lambda comp: min(rank[n] for n in comp))  # type: ignore
        for comp in comps:
            entries = {n for n in comp if n == root or any(p not in comp and p in reach
                                                           for p in pred[n])}
            if not entries:  # cannot happen for reachable components; be safe
                entries = {min(comp, key=order.__getitem__)}
            header = min(entries, key=order.__getitem__)
            back = tuple(sorted(((u, h) for h in entries for u in pred[h]
                                 if u in comp and (u, h) not in removed),
                                key=lambda e: (order[e[0]], order[e[1]])))
            lp = Loop(header=header, entries=frozenset(entries), body=frozenset(comp),
                      back_edges=back, parent=parent, depth=depth)
            i = len(loops_)
            loops_.append(lp)
            if parent is not None:
                loops_[parent].children.append(i)
            removed.update(back)
            find(comp, i, depth + 1)

    find(reach, None, 1)
    return LoopForest(g.graph.get("func"), loops_)


def natural_loops(g: nx.DiGraph | nx.MultiDiGraph, entry: Hashable | None = None
                  ) -> dict[Hashable, frozenset[Hashable]]:
    """Header -> natural loop (the union over its back edges ``u -> h``, where
    ``h`` dominates ``u``, of the nodes reaching ``u`` without passing ``h``)."""
    root = g.graph.get("entry") if entry is None else entry
    succ = g.succ
    idom = immediate_dominators(lambda n: succ[n], root)

    def dominates(a: Hashable, b: Hashable) -> bool:
        while True:
            if a == b:
                return True
            up = idom[b]
            if up == b:
                return False
            b = up

    out: dict[Hashable, set[Hashable]] = {}
    for u in idom:
        for h in succ[u]:
            if h in idom and dominates(h, u):
                body = out.setdefault(h, {h})
                work = [u]
                while work:
                    n = work.pop()
                    if n in body:
                        continue
                    body.add(n)
                    work.extend(p for p in g.pred[n] if p in idom)
    return {h: frozenset(b) for h, b in out.items()}


def loops(target: nx.DiGraph | Module, func: int | str | None = None,
          profile: ProfileData | None = None) -> LoopForest:
    """The loop-nesting forest of a CFG graph or of ``func`` in a module,
    with iteration counts when a profile is given (or the graph has counts)."""
    if isinstance(target, (nx.DiGraph, nx.MultiDiGraph)):
        g = target
    else:
        if func is None:
            raise TypeError("pass a CFG graph, or a module and a function")
        g = _cfg(target, func, profile)
    forest = loop_forest(g)
    fn = g.graph.get("func")
    for lp in forest.loops:
        block = g.nodes[lp.header].get("block")
        if block is None or fn is None:
            continue
        lp.location = _loop_instr(g, lp.header)
        if lp.location is not None and profile is not None and lp.location in profile.loops:
            rec = profile.loops[lp.location]
            lp.iterations = rec.get("iterations")
            lp.entered = rec.get("entries")
            continue
        count = g.nodes[lp.header].get("count")
        if count is not None:
            lp.iterations = count
            inflow = [d.get("count") for h in lp.entries
                      for u, _, d in g.in_edges(h, data=True) if u not in lp.body]
            if all(x is not None for x in inflow):
                lp.entered = sum(inflow)  # type: ignore[arg-type]
    return forest


def _loop_instr(g: nx.DiGraph | nx.MultiDiGraph, header: Hashable) -> Location | None:
    """The ``loop`` instruction just before the header block, if it is one."""
    fn = g.graph.get("func")
    start_pc = g.nodes[header].get("start_pc")
    for u in g.pred[header]:
        b = g.nodes[u].get("block")
        if b is not None and b.instrs and b.last.op.name == "loop":
            nxt = g.nodes[header]["block"]
            if b.id + 1 == nxt.id and start_pc is not None:
                return Location(fn, b.last.pc)
    return None
