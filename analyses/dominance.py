"""Dominator and post-dominator trees (Cooper, Harvey and Kennedy's iterative
algorithm, "A Simple, Fast Dominance Algorithm", 2001).

    >>> tree = dominators(module, "main")          # or dominators(cfg_graph)
    >>> tree.graph["idom"][5], list(tree.successors(0))
    >>> dominates(tree, 0, 5)

A tree is an ``networkx.DiGraph`` with an edge from each node's immediate
dominator to the node. It holds exactly the nodes reachable from the root
(the entry; for post-dominators the virtual exit, walking edges backwards),
with the CFG's node attributes. Graph attributes: ``root``, ``idom``
(node -> immediate dominator; the root maps to itself) and ``func``.

Post-dominance treats a block without successors (one ending in
``unreachable``) as an exit: it gets a virtual edge to the exit node, as a
trap leaves the function. Blocks from which no exit is reachable (an
endless loop) have no post-dominator and are not in the tree.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import networkx as nx

from ..ir.dominance import immediate_dominators
from .flowgraph import cfg as _cfg

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

__all__ = ["immediate_dominators", "dominators", "post_dominators", "dominates",
           "dominance_frontiers"]



def _tree(idom: Mapping[Any, Any], root: Any, source: nx.DiGraph | nx.MultiDiGraph
          ) -> nx.DiGraph:
    t = nx.DiGraph(root=root, idom=dict(idom), func=source.graph.get("func"))
    attrs = source.nodes
    t.add_nodes_from((node, attrs[node]) for node in idom)
    t.add_edges_from((d, node) for node, d in idom.items() if node != root)
    return t


def _adjacency(g: nx.DiGraph | nx.MultiDiGraph, reverse: bool = False
               ) -> dict[Any, list[Any]]:
    """Node -> successors (predecessors with ``reverse``) as plain lists, in edge
    order, parallel edges merged (networkx's views cost more per lookup)."""
    out: dict[Any, list[Any]] = {n: [] for n in g}
    for u, v in g.edges():
        if reverse:
            u, v = v, u
        lst = out[u]
        if not lst or lst[-1] != v:
            lst.append(v)
    return out


def _graph(target: Any, func: int | str | None, profile: ProfileData | None
           ) -> nx.DiGraph | nx.MultiDiGraph:
    if isinstance(target, (nx.DiGraph, nx.MultiDiGraph)):
        return target
    if func is None:
        raise TypeError("pass a CFG graph, or a module and a function")
    return _cfg(target, func, profile)


def dominators(target: nx.DiGraph | Module, func: int | str | None = None,
               profile: ProfileData | None = None, *, entry: Hashable | None = None
               ) -> nx.DiGraph:
    """The dominator tree of a CFG graph (from `probes.analyses.cfg`, or any
    digraph with ``graph["entry"]`` or an explicit ``entry``), or of
    ``func`` in a module."""
    g = _graph(target, func, profile)
    root = g.graph.get("entry") if entry is None else entry
    if root is None:
        raise ValueError("no entry node: pass entry=")
    succ = _adjacency(g)
    return _tree(immediate_dominators(succ.__getitem__, root), root, g)


def post_dominators(target: nx.DiGraph | Module, func: int | str | None = None,
                    profile: ProfileData | None = None, *, exit: Hashable | None = None
                    ) -> nx.DiGraph:
    """The post-dominator tree (rooted at the exit) of a CFG graph or of ``func``."""
    g = _graph(target, func, profile)
    root = g.graph.get("exit") if exit is None else exit
    if root is None:
        raise ValueError("no exit node: pass exit=")
    pred = _adjacency(g, reverse=True)
    sinks = [n for n, d in g.out_degree() if n != root and d == 0]
    pred[root] = [*pred[root], *sinks]
    return _tree(immediate_dominators(pred.__getitem__, root), root, g)


def dominates(tree: nx.DiGraph, a: Hashable, b: Hashable) -> bool:
    """Whether ``a`` dominates ``b`` in a (post-)dominator tree (reflexive)."""
    idom = tree.graph["idom"]
    if b not in idom or a not in idom:
        return False
    while True:
        if b == a:
            return True
        up = idom[b]
        if up == b:
            return False
        b = up


def dominance_frontiers(g: nx.DiGraph | nx.MultiDiGraph, tree: nx.DiGraph
                        ) -> dict[Hashable, set[Hashable]]:
    """Node -> its dominance frontier (Cooper-Harvey-Kennedy's method)."""
    idom = tree.graph["idom"]
    df: dict[Hashable, set[Hashable]] = {n: set() for n in idom}
    for n in idom:
        ps = [p for p in g.pred[n] if p in idom]
        if len(ps) < 2:
            continue
        for p in ps:
            runner = p
            while runner != idom[n]:
                df[runner].add(n)
                if idom[runner] == runner:
                    break
                runner = idom[runner]
    return df
