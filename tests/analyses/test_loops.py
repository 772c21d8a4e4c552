"""Loops and the loop-nesting forest: hand-built graphs (irreducible ones too),
random graphs against the natural-loop definition, and Wasm loops with
iteration counts from a run."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
from hypothesis import HealthCheck, given, settings

import probes
from probes.analyses import cfg, loops
from probes.analyses.dominance import dominates, dominators
from probes.analyses.loopforest import loop_forest, natural_loops
from probes.ir import Location
from probes.ir.loader import wat_to_wasm
from probes.testing import valid_modules

from .support import digraphs, graph, structured_code

REPO = Path(__file__).resolve().parents[2]


def summary(forest):  # type: ignore[no-untyped-def]
    return [(lp.header, sorted(lp.body), lp.depth, lp.parent, lp.reducible) for lp in forest]


def test_nested_loops_and_a_self_loop() -> None:
    # 0 -> 1 (outer header) -> 2 (inner header) -> 3 -> 2 ; 3 -> 4 -> 1 ; 4 -> 5 (self) -> 6
    g = graph([(0, 1), (1, 2), (2, 3), (3, 2), (3, 4), (4, 1), (4, 5), (5, 5), (5, 6)], exit=6)
    f = loop_forest(g)
    assert summary(f) == [(1, [1, 2, 3, 4], 1, None, True), (2, [2, 3], 2, 0, True),
                          (5, [5], 1, None, True)]
    assert f.loops[0].back_edges == ((4, 1),)
    assert f.loops[0].children == [1]
    assert f.roots == [0, 2]
    assert f.innermost(3) == 1 and f.innermost(4) == 0 and f.innermost(6) is None
    assert natural_loops(g) == {1: frozenset({1, 2, 3, 4}), 2: frozenset({2, 3}),
                                5: frozenset({5})}
    forest_graph = f.graph()
    assert list(forest_graph.edges) == [(0, 1)]


def test_two_back_edges_to_one_header_make_one_loop() -> None:
    g = graph([(0, 1), (1, 2), (1, 3), (2, 1), (3, 1), (1, 4)], exit=4)
    f = loop_forest(g)
    assert summary(f) == [(1, [1, 2, 3], 1, None, True)]
    assert set(f.loops[0].back_edges) == {(2, 1), (3, 1)}


def test_irreducible_loop() -> None:
    # The classic: 0 branches into both 1 and 2, which form a cycle.
    g = graph([(0, 1), (0, 2), (1, 2), (2, 1), (2, 3)], exit=3)
    f = loop_forest(g)
    assert len(f) == 1
    lp = f.loops[0]
    assert lp.entries == {1, 2} and lp.body == {1, 2} and not lp.reducible
    assert f.irreducible == [lp]
    assert natural_loops(g) == {}  # no back edge has a dominating target


def test_irreducible_loop_nested_in_a_reducible_one() -> None:
    # Outer loop 1..5 (header 1, latch 5); inside it 2 enters both 3 and 4, a cycle.
    g = graph([(0, 1), (1, 2), (2, 3), (2, 4), (3, 4), (4, 3), (4, 5), (5, 1), (1, 6)],
              exit=6)
    f = loop_forest(g)
    assert summary(f) == [(1, [1, 2, 3, 4, 5], 1, None, True),
                          (3, [3, 4], 2, 0, False)]
    assert f.loops[1].entries == {3, 4}


def test_loop_through_the_entry() -> None:
    g = graph([(0, 1), (1, 0), (1, 2)], exit=2)
    f = loop_forest(g)
    assert summary(f) == [(0, [0, 1], 1, None, True)]


@settings(max_examples=300, deadline=None)
@given(digraphs())
def test_forest_invariants_on_random_graphs(g: nx.DiGraph) -> None:
    f = loop_forest(g)
    tree = dominators(g)
    reach = set(tree.nodes)
    cyclic = {n for comp in nx.strongly_connected_components(g.subgraph(reach))
              for n in comp if len(comp) > 1 or g.has_edge(n, n)}
    assert set().union(*(lp.body for lp in f)) == cyclic if len(f) else not cyclic
    for i, lp in enumerate(f):
        assert lp.header in lp.entries <= lp.body <= reach
        # Nesting: children inside parents, siblings disjoint.
        if lp.parent is not None:
            assert lp.body < f.loops[lp.parent].body
            assert lp.depth == f.loops[lp.parent].depth + 1
        for j in lp.children:
            assert f.loops[j].parent == i
        for j, other in enumerate(f):
            if i < j:
                assert lp.body.isdisjoint(other.body) or lp.body < other.body \
                    or other.body < lp.body
        # Reducible iff the header dominates the whole body.
        assert lp.reducible == all(dominates(tree, lp.header, n) for n in lp.body)
    # Every natural loop is one of the forest's reducible loops (when the graph
    # has no irreducible loop, they are exactly the loops).
    nat = natural_loops(g)
    red = {lp.header: lp.body for lp in f if lp.reducible}
    for h, body in nat.items():
        if not f.irreducible:
            assert red[h] == body
    if not f.irreducible:
        assert red == nat


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(valid_modules(max_functions=3, max_instrs=60, imports=False))
def test_wasm_cfgs_are_reducible_and_loops_are_natural(data: bytes) -> None:
    m = probes.decode(data)  # decoded, so instructions have their pcs
    for f in m.functions:
        g = cfg(m, f.index)
        forest = loops(g)
        assert not forest.irreducible
        assert {lp.header: lp.body for lp in forest} == natural_loops(g)
        for lp in forest:
            # A Wasm loop's header is the instruction after a `loop`.
            assert lp.location is not None
            ins = next(i for i in f.instrs if i.pc == lp.location.pc)
            assert ins.op.name == "loop"


@settings(max_examples=150, deadline=None)
@given(structured_code())
def test_structured_control_flow_gives_natural_loops(code: str) -> None:
    m = probes.decode(wat_to_wasm(f"(module (func (param i32) {code}))"))
    g = cfg(m, 0)
    forest = loops(g)
    assert not forest.irreducible
    assert {lp.header: lp.body for lp in forest} == natural_loops(g)
    instrs = {i.pc: i for i in m.functions[0].instrs}
    reach = nx.descendants(g, 0) | {0}
    for lp in forest:
        assert lp.location is not None and instrs[lp.location.pc].op.name == "loop"
        # The back edges are exactly the CFG's reachable `loop` edges into this header.
        assert {(u, v) for u, v, d in g.in_edges(lp.header, data=True)
                if d["kind"] == "loop" and u in reach} == set(lp.back_edges)


def test_iterations_from_a_run() -> None:
    r = probes.api.run(REPO / "examples" / "loop.wat", ["icount", "branches", "loops"],
                       invoke="nested", args=(6,))
    m, prof = r.module, r.profile
    func = m.resolve_func("nested")
    forest = loops(m, func, prof)
    assert [(lp.depth, lp.entered, lp.iterations, lp.back_edges_taken) for lp in forest] == \
        [(1, 1, 6, 5), (2, 6, 36, 30)]
    assert [lp.location for lp in forest] == [Location(func, 12), Location(func, 18)]
    # The same numbers without the loops monitor: from block and edge counts.
    prof.loops.clear()
    again = loops(m, func, prof)
    assert [(lp.entered, lp.iterations) for lp in again] == [(1, 6), (6, 36)]
