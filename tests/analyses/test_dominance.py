"""Dominators and post-dominators: hand-built CFGs with known trees, and random
graphs checked against the definition (brute force)."""

from __future__ import annotations

from collections.abc import Hashable

import networkx as nx
from hypothesis import given, settings

import probes
from probes.analyses import cfg, dominators, post_dominators
from probes.analyses.dominance import dominance_frontiers, dominates, immediate_dominators
from probes.ir.loader import wat_to_wasm

from .support import digraphs, graph, structured_code


def reachable(g: nx.DiGraph, root: Hashable, without: Hashable | None = None) -> set:
    """Nodes reachable from ``root`` in ``g`` with ``without`` deleted."""
    if root == without:
        return set()
    seen = {root}
    work = [root]
    while work:
        n = work.pop()
        for s in g.succ[n]:
            if s != without and s not in seen:
                seen.add(s)
                work.append(s)
    return seen


def brute_dominators(g: nx.DiGraph, root: Hashable) -> dict[Hashable, set]:
    """n -> every d such that deleting d makes n unreachable (d dominates n)."""
    reach = reachable(g, root)
    return {n: {d for d in reach if d == n or n not in reachable(g, root, without=d)}
            for n in reach}


def brute_idom(doms: dict[Hashable, set], root: Hashable) -> dict[Hashable, Hashable]:
    """The immediate dominator: the strict dominator every other one dominates."""
    out = {root: root}
    for n, ds in doms.items():
        if n == root:
            continue
        strict = ds - {n}
        out[n] = next(d for d in strict if all(o in doms[d] for o in strict))
    return out


# -- hand-built graphs ---------------------------------------------------------------------
def test_diamond() -> None:
    g = graph([(0, 1), (0, 2), (1, 3), (2, 3)], exit=3)
    t = dominators(g)
    assert t.graph["idom"] == {0: 0, 1: 0, 2: 0, 3: 0}
    assert set(t.edges) == {(0, 1), (0, 2), (0, 3)}
    p = post_dominators(g)
    assert p.graph["idom"] == {3: 3, 1: 3, 2: 3, 0: 3}
    assert dominates(t, 0, 3) and not dominates(t, 1, 3) and dominates(t, 2, 2)


def test_loop_with_early_exit() -> None:
    # 0 -> 1 (header) -> 2 -> 1 (back edge); 2 -> 3 -> exit 4; 1 -> 4
    g = graph([(0, 1), (1, 2), (2, 1), (2, 3), (3, 4), (1, 4)], exit=4)
    assert dominators(g).graph["idom"] == {0: 0, 1: 0, 2: 1, 3: 2, 4: 1}
    assert post_dominators(g).graph["idom"] == {4: 4, 3: 4, 1: 4, 2: 4, 0: 1}


def test_irreducible() -> None:
    # Two-entry cycle 1 <-> 2 entered from 0 at both nodes: neither dominates the other.
    g = graph([(0, 1), (0, 2), (1, 2), (2, 1), (1, 3), (2, 3)], exit=3)
    idom = dominators(g).graph["idom"]
    assert idom == {0: 0, 1: 0, 2: 0, 3: 0}
    assert dominance_frontiers(g, dominators(g)) == {0: set(), 1: {2, 3}, 2: {1, 3},
                                                     3: set()}


def test_unreachable_nodes_are_left_out() -> None:
    g = graph([(0, 1), (2, 1), (1, 3)], exit=3)  # 2 has no path from 0
    t = dominators(g)
    assert set(t.nodes) == {0, 1, 3}
    assert t.graph["idom"][1] == 0


def test_post_dominators_of_a_trap_and_an_endless_loop() -> None:
    # 0 -> 1 (trap: no successors), 0 -> 2 -> exit 3, 0 -> 4 <-> 5 (never leaves)
    g = graph([(0, 1), (0, 2), (2, 3), (0, 4), (4, 5), (5, 4)], exit=3)
    p = post_dominators(g)
    assert p.graph["idom"] == {3: 3, 1: 3, 2: 3, 0: 3}
    assert 4 not in p and 5 not in p


@settings(max_examples=100, deadline=None)
@given(structured_code())
def test_wasm_cfgs_match_the_definition(code: str) -> None:
    m = probes.decode(wat_to_wasm(f"(module (func (param i32) {code}))"))
    g = cfg(m, 0)
    plain = nx.DiGraph(g)
    t = dominators(g)
    assert t.graph["idom"] == brute_idom(brute_dominators(plain, 0), 0)
    ex = g.graph["exit"]
    rev = plain.reverse(copy=True)
    rev.add_edges_from((ex, n) for n in plain if n != ex and not plain.succ[n])
    assert post_dominators(g).graph["idom"] == brute_idom(brute_dominators(rev, ex), ex)


def test_wasm_cfg(wat_module) -> None:  # type: ignore[no-untyped-def]
    m = wat_module("""(module (func $f (param i32) (result i32)
        (block (result i32)
          (i32.const 1)
          (br_if 0 (local.get 0))
          (drop)
          (loop $l (br_if $l (i32.eqz (local.get 0))))
          (i32.const 2))))""")
    t = dominators(m, 0)
    g = t.graph
    assert g["root"] == 0 and g["func"] == 0
    # Every block reachable from the entry has an immediate dominator.
    c = cfg(m, 0)
    reach = reachable(c, 0)
    assert set(t.nodes) == reach
    assert brute_idom(brute_dominators(nx.DiGraph(c), 0), 0) == g["idom"]
    assert "start" in t.nodes[0]  # CFG attributes carried over


# -- random graphs -------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(digraphs())
def test_dominators_match_the_definition(g: nx.DiGraph) -> None:
    idom = immediate_dominators(lambda n: g.succ[n], 0)
    doms = brute_dominators(g, 0)
    # Every block reachable from the entry has an idom; no other block has one.
    assert set(idom) == set(doms)
    assert idom == brute_idom(doms, 0)
    t = dominators(g)
    for a in doms:
        for b in doms:
            assert dominates(t, a, b) == (a in doms[b])
    # networkx agrees too (recent versions leave the root out of its map).
    theirs = {k: v for k, v in nx.immediate_dominators(g, 0).items() if k != 0}
    assert {k: v for k, v in idom.items() if k != 0} == theirs


@settings(max_examples=200, deadline=None)
@given(digraphs())
def test_post_dominators_match_the_definition(g: nx.DiGraph) -> None:
    exit_ = g.graph["exit"]
    g.remove_edges_from(list(g.out_edges(exit_)))  # an exit has no successors
    sinks = [n for n in g.nodes if n != exit_ and not g.succ[n]]
    rev = g.reverse(copy=True)
    rev.add_edges_from((exit_, s) for s in sinks)  # traps leave the function too
    doms = brute_dominators(rev, exit_)
    p = post_dominators(g)
    assert set(p.nodes) == set(doms)
    assert p.graph["idom"] == brute_idom(doms, exit_)
