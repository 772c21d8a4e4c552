"""Call graphs (static with call_indirect candidates, dynamic with counts),
recursion, hot paths and dead code."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import probes
from probes.analyses import callgraph, cfg, dead_code, hot_call_paths, hot_paths
from probes.ir import Location
from probes.profile import ProfileData

REPO = Path(__file__).resolve().parents[2]

CALLS_WAT = """(module
  (type $ii (func (param i32) (result i32)))
  (type $v (func))
  (table 4 funcref)
  (elem (i32.const 0) $a $b $c)
  (func $main (export "main") (param i32) (result i32)
    (call $a (local.get 0))
    (call_indirect (type $ii) (local.get 0) (i32.const 1))
    (i32.add)
    (call $rec (local.get 0))
    (i32.add))
  (func $a (param i32) (result i32) (local.get 0))
  (func $b (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
  (func $c)
  (func $rec (param i32) (result i32)
    (if (result i32) (local.get 0)
      (then (call $rec2 (i32.sub (local.get 0) (i32.const 1))))
      (else (i32.const 0))))
  (func $rec2 (param i32) (result i32) (call $rec (local.get 0)))
  (func $orphan (result i32)
    (i32.const 1)
    (return)
    (drop (i32.const 5))
    (i32.const 2))
  (func $self (param i32) (call $self (local.get 0))))"""


@pytest.fixture(scope="module")
def calls_module(wat_module) -> probes.Module:  # type: ignore[no-untyped-def]
    return wat_module(CALLS_WAT)


def idx(m: probes.Module, name: str) -> int:
    return m.resolve_func(name)


def test_static_call_graph(calls_module: probes.Module) -> None:
    m = calls_module
    g = callgraph(m)
    main, a, b, c, rec, rec2 = (idx(m, n) for n in ("main", "a", "b", "c", "rec", "rec2"))
    assert set(g.nodes) == set(range(m.num_funcs))
    assert g.edges[main, a]["kind"] == "both"  # direct, and a candidate of call_indirect
    assert g.edges[main, b]["kind"] == "indirect"
    assert not g.has_edge(main, c)  # in the table, but of another type
    assert len(g.edges[main, b]["sites"]) == 1
    site = g.edges[main, b]["sites"][0]
    assert m.function(main).instrs[[i.pc for i in m.function(main).instrs].index(site.pc)] \
        .op.name == "call_indirect"
    assert g.nodes[rec]["recursive"] and g.nodes[rec2]["recursive"]
    assert g.nodes[rec]["scc"] == g.nodes[rec2]["scc"]
    assert g.nodes[idx(m, "self")]["recursive"] and not g.nodes[main]["recursive"]
    assert sorted(map(sorted, g.graph["sccs"])) == sorted([[rec, rec2], [idx(m, "self")]])
    assert g.nodes[main]["exported"] and g.nodes[a]["address_taken"]


def test_mutable_table_widens_candidates(wat_module) -> None:  # type: ignore[no-untyped-def]
    m = wat_module("""(module
      (type $v (func))
      (table $t (export "t") 2 funcref)
      (elem (i32.const 0) $x)
      (elem declare func $y)
      (func $x) (func $y (drop (ref.func $y))) (func $z)
      (func $go (call_indirect (type $v) (i32.const 0))))""")
    g = callgraph(m)
    go = m.resolve_func("go")
    # The exported table may hold anything whose address is taken: $x and $y, not $z.
    assert sorted(g.succ[go]) == sorted([m.resolve_func("x"), m.resolve_func("y")])


def test_dynamic_call_graph_of_fib(tmp_path: Path) -> None:
    r = probes.api.run(REPO / "examples" / "fib.wasm", ["calls"], stdout=str(tmp_path / "o"))
    g = callgraph(r.module, r.profile, dynamic=True)
    assert g.graph["dynamic"]
    assert all(d["count"] > 0 for _, _, d in g.edges(data=True))
    assert {(a, b): d["count"] for a, b, d in g.edges(data=True)} == \
        {k: v for k, v in r.profile.calls.items() if v}
    # fib and ackermann recurse on themselves, is_even/is_odd on each other.
    sizes = sorted(len(c) for c in g.graph["sccs"])
    assert sizes == [1, 1, 2]
    static = callgraph(r.module, r.profile)
    for a, b, d in g.edges(data=True):  # every call that happened was predicted
        assert static.has_edge(a, b) and d["static"]
        assert static.edges[a, b]["count"] == d["count"]


def test_indirect_calls_that_ran_were_candidates(tmp_path: Path) -> None:
    r = probes.api.run(REPO / "examples" / "fnptr.wasm", ["calls"], stdout=str(tmp_path / "o"))
    static = callgraph(r.module)
    assert r.profile.indirect_targets
    for site, targets in r.profile.indirect_targets.items():
        for callee in targets:
            e = static.edges[site.func, callee]
            assert e["kind"] in ("indirect", "both") and site in e["sites"]


def test_hot_paths_in_nested_loops() -> None:
    r = probes.api.run(REPO / "examples" / "loop.wat", ["icount", "branches"],
                       invoke="nested", args=(6,))
    m, prof = r.module, r.profile
    g = cfg(m, "nested", prof)
    paths = hot_paths(m, "nested", prof, k=3)
    inner = paths[0]
    # The hottest: one iteration of the inner loop, round its back edge 30 times.
    assert inner.count == 30 and inner.loop_header == inner.blocks[0]
    assert len(inner.blocks) == 1
    assert g.nodes[inner.blocks[0]]["count"] == 36
    assert [p.count for p in paths] == sorted((p.count for p in paths), reverse=True)
    # A path from the entry reaches the exit.
    full = hot_paths(g, k=50)
    assert any(p.blocks[0] == 0 and p.blocks[-1] == g.graph["exit"] for p in full)
    for p in full:
        for u, v in itertools.pairwise(p.blocks):
            assert g.has_edge(u, v) and p.count <= max(
                d["count"] for d in g.get_edge_data(u, v).values())


def test_hot_call_paths(tmp_path: Path) -> None:
    r = probes.api.run(REPO / "examples" / "fib.wasm", ["calls", "icount"],
                       stdout=str(tmp_path / "o"))
    paths = hot_call_paths(r.module, r.profile, k=3)
    top = paths[0]
    assert top.unit == "instructions" and not top.exact
    assert top.count == max(r.profile.function_counts().values())
    assert r.module.func_name(top.funcs[0]) == "_start"
    g = callgraph(r.module, r.profile, dynamic=True)
    assert all(g.has_edge(a, b) for a, b in itertools.pairwise(top.funcs))
    # From a calling-context tree: the sampled stacks, exactly.
    prof = ProfileData(cct={(1,): {"samples": 5, "self_samples": 1},
                            (1, 2): {"samples": 4, "self_samples": 4}})
    assert [(p.funcs, p.count, p.exact) for p in hot_call_paths(None, prof)] == \
        [((1, 2), 4, True), ((1,), 1, True)]


def test_dead_code(calls_module: probes.Module) -> None:
    m = calls_module
    d = dead_code(m)
    assert d.static_functions == [idx(m, "orphan"), idx(m, "self")]
    # The code after `return` in $orphan is unreachable (and not just an `end`).
    orphan = [b for b in d.static_blocks if b.func == idx(m, "orphan")]
    assert len(orphan) == 1 and orphan[0].instrs >= 3
    assert d.unexecuted_functions is None and d.unexecuted_blocks is None

    r = probes.api.run(m, ["icount"], invoke="main", args=(0,))
    d = dead_code(m, r.profile)
    ran = {idx(m, n) for n in ("main", "a", "b", "rec")}  # $b through the table
    assert set(d.unexecuted_functions or []) == {f.index for f in m.functions} - ran
    # In $rec with argument 0 only the else arm ran: the then arm is unexecuted.
    rec_blocks = [b for b in d.unexecuted_blocks or [] if b.func == idx(m, "rec")]
    assert rec_blocks and all(r.profile.counts.get(b.start, 0) == 0 for b in rec_blocks)
    assert Location(idx(m, "rec"), 0) not in {b.start for b in rec_blocks}
