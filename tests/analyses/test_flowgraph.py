"""CFG graphs with counts: block counts from instruction counts, edge counts from
branch profiles and flow conservation, checked on real runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import probes
from probes.analyses import cfg
from probes.analyses.flowgraph import solve_counts
from probes.ir import Location
from probes.ir.cfg import build_cfg
from probes.profile import ProfileData

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sort_run(tmp_path_factory: pytest.TempPathFactory) -> probes.api.RunResult:
    out = tmp_path_factory.mktemp("sort") / "stdout"
    return probes.api.run(REPO / "examples" / "sort.wasm", ["icount", "branches", "calls"],
                          argv=["300"], stdout=str(out))


def test_graph_shape(wat_module) -> None:  # type: ignore[no-untyped-def]
    m = wat_module("""(module (func $f (param i32) (result i32)
        (block $b (br_table 0 0 1 (local.get 0)))
        (i32.const 7)))""")
    g = cfg(m, "f")
    c = build_cfg(m, 0)
    assert g.graph["func"] == 0 and g.graph["name"] == "f"
    assert g.graph["entry"] == 0 and g.graph["exit"] == len(c.blocks)
    assert sorted(g.nodes) == [b.id for b in c.nodes]
    for b in c.blocks:
        d = g.nodes[b.id]
        assert d["start"] == Location(0, b.start_pc) and d["end"] == Location(0, b.end_pc)
        assert d["block"].id == b.id and not d["exit"] and d["instrs"] == len(b.instrs)
    assert g.nodes[c.exit.id]["exit"] and g.nodes[c.exit.id]["start"] is None
    # br_table: three edges, two of them parallel (positions 0 and 1), keyed apart.
    table = [(u, v, k, d["kind"], d["index"]) for u, v, k, d in g.edges(keys=True, data=True)
             if u == 0]
    assert [t[2:] for t in table] == [(0, "br_table", 0), (1, "br_table", 1),
                                     (2, "return", 2)]
    assert table[0][1] == table[1][1]
    assert "count" not in g.nodes[0]


def test_counts_are_consistent_on_a_real_run(sort_run: probes.api.RunResult) -> None:
    m, prof = sort_run.module, sort_run.profile
    checked = 0
    for f in m.functions:
        g = cfg(m, f.index, prof)
        entry = g.graph["entry"]
        for n, d in g.nodes(data=True):
            if d["exit"]:
                continue
            # A block's count is its first instruction's count...
            assert d["count"] == prof.counts.get(d["start"], 0)
            # ...and equals what flows in (the entry: the function's entries).
            ins = [e["count"] for _, _, e in g.in_edges(n, data=True)]
            assert None not in ins
            inflow = sum(ins) + (prof.entries.get(f.index, 0) if n == entry else 0)
            assert inflow == d["count"], (f.index, n)
        for u, _, k, e in g.edges(keys=True, data=True):
            assert e["count"] is not None and e["count"] >= 0
            last = g.nodes[u]["block"].last
            hist = prof.branches.get(Location(f.index, last.pc))
            if last.op.name in ("br_if", "if") and hist:
                assert e["count"] == hist.get(1 if k == 0 else 0, 0)
        checked += 1
    assert checked == len(m.functions)


def test_block_counts_from_branches_and_entries_alone(sort_run: probes.api.RunResult) -> None:
    """Without instruction counts, branch profiles plus entry counts determine the
    block counts of code whose calls all return (flow conservation)."""
    m, full = sort_run.module, sort_run.profile
    partial = ProfileData(program=full.program, module_sha256=full.module_sha256,
                          monitors=["branches", "calls"], branches=full.branches,
                          calls=full.calls, entries=full.entries)
    determined = total = 0
    for f in m.functions:
        if not full.entries.get(f.index):
            continue
        a = cfg(m, f.index, full)
        b = cfg(m, f.index, partial)
        for n in a.nodes:
            total += 1
            if b.nodes[n]["count"] is not None:
                assert b.nodes[n]["count"] == a.nodes[n]["count"], (f.index, n)
                determined += 1
    assert determined > 0.9 * total


def test_solver_on_a_hand_made_loop(wat_module) -> None:  # type: ignore[no-untyped-def]
    m = wat_module("""(module (func $f (param i32)
        (loop $l (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))))""")
    c = build_cfg(m, 0)
    # Blocks: B0 [loop], B1 [header .. br_if], B2 [end]. Entered twice, 10 iterations.
    latch = next(k for k, e in enumerate(c.blocks[1].succs) if e.kind == "loop")
    bc, ec = solve_counts(c, {}, {(1, latch): 8, (1, 1 - latch): 2}, entries=2)
    assert bc[0] == 2 and bc[1] == 10 and bc[2] == 2 and bc[c.exit.id] == 2
    assert ec[(0, 0)] == 2
    # Nothing known: nothing invented.
    bc, ec = solve_counts(c, {}, {}, None)
    assert bc == {} and ec == {}


def test_coverage_only_profile_marks_blocks(wat_module) -> None:  # type: ignore[no-untyped-def]
    r = probes.api.run(REPO / "examples" / "branches.wat", ["coverage"], invoke="classify",
                       args=(2,))
    g = cfg(r.module, "classify", r.profile)
    covered = {n for n, d in g.nodes(data=True) if d["covered"]}
    assert 0 in covered and len(covered) < g.number_of_nodes() - 1
    assert all(d["count"] is None for n, d in g.nodes(data=True) if not d["exit"])
