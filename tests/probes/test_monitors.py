"""Monitor behaviour that expected-output files cannot pin down."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from probes.api import run
from probes.ir import Location, ProbeError
from probes.ir.loader import wat_to_wasm
from probes.monitors import available, create
from probes.profile import ProfileData

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROGRAMS = Path(__file__).resolve().parents[2] / "benchmarks" / "programs"


def test_profile_builds_a_calling_context_tree() -> None:
    # About a second of deep recursion: plenty of samples even on a busy machine.
    result = run(PROGRAMS / "recursive.wasm", ["profile:interval_ms=1", "calls"],
                 stdout=os.devnull)
    prof = result.profile
    assert result.exit_code == 0
    m = result.module
    start = m.resolve_func("_start")
    # Exact call counts per function agree with the calls monitor's entry counters.
    assert prof.entries[start] == 1
    # Every context path starts at _start (the only entry point) and is a prefix-closed tree.
    assert prof.cct
    for path, node in prof.cct.items():
        assert path[0] == start
        if len(path) > 1:
            assert path[:-1] in prof.cct
            assert prof.cct[path[:-1]]["samples"] >= node["samples"]
    assert any(len(path) > 5 for path in prof.cct)  # recursion shows as deep contexts


def test_coverage_levels() -> None:
    prog = EXAMPLES / "branches.wat"
    per_level = {}
    for level in ("instruction", "block", "function"):
        r = run(prog, [f"coverage:level={level}"], invoke="classify", args=(5,))
        per_level[level] = r.profile
    funcs = per_level["function"].function_coverage
    assert funcs == per_level["instruction"].function_coverage
    assert sum(funcs.values()) >= 1 and not all(funcs.values())
    instr = per_level["instruction"].coverage
    block = per_level["block"].coverage
    # Each block leader's coverage equals its instruction's coverage.
    for loc, hit in block.items():
        assert instr[loc] == hit


def test_timeout_stops_cleanly() -> None:
    r = run(EXAMPLES / "loop.wat", ["timeout:n=1000", "icount"], invoke="run", args=(10**6,))
    assert r.trap is not None
    assert r.profile.trap is not None and r.profile.trap["kind"] == "out of fuel"
    assert 0 < r.profile.total_instructions < 2000


def test_trace_is_bounded_and_ordered() -> None:
    r = run(EXAMPLES / "fib.wasm", ["trace:limit=50"], stdout=os.devnull)
    assert len(r.profile.trace) == 50
    assert r.profile.trace_dropped > 0
    full = run(EXAMPLES / "fib.wasm", ["trace:limit=1000000"], stdout=os.devnull)
    assert full.profile.trace[-50:] == r.profile.trace
    assert len(full.profile.trace) == 50 + r.profile.trace_dropped


def test_profiles_merge_and_round_trip(tmp_path: Path) -> None:
    a = run(EXAMPLES / "loop.wat", ["icount", "branches", "calls"], invoke="run",
            args=(3,)).profile
    b = run(EXAMPLES / "loop.wat", ["icount", "branches", "calls"], invoke="run",
            args=(5,)).profile
    merged = a + b
    assert merged.runs == 2
    assert merged.total_instructions == a.total_instructions + b.total_instructions
    for loc in a.branches:
        assert merged.branches[loc] == {k: a.branches[loc].get(k, 0) + b.branches[loc].get(k, 0)
                                        for k in a.branches[loc].keys() | b.branches[loc]}
    path = tmp_path / "p.json"
    merged.save(path)
    again = ProfileData.load(path)
    assert again == merged


@pytest.mark.parametrize("spec,needle", [
    ("coverage:level=line", "level must be"),
    ("hotness:top=x", "expects int"),
    ("trace:limit=0", "positive"),
    ("icount:nope=1", "unknown option"),
    ("nope", "unknown monitor"),
])
def test_bad_monitor_options(spec: str, needle: str) -> None:
    with pytest.raises(ProbeError, match=needle):
        create(spec)


def test_every_monitor_has_help_and_registers() -> None:
    mons = available()
    assert {"coverage", "icount", "hotness", "branches", "calls", "profile", "trace",
            "memory", "loops", "opcodes", "timeout"} <= set(mons)
    for name, cls in mons.items():
        assert cls.name == name and cls.help


def test_calls_resolve_indirect_targets() -> None:
    r = run(EXAMPLES / "fnptr.wasm", ["calls"], stdout=os.devnull)
    assert r.profile.indirect_targets
    for site, targets in r.profile.indirect_targets.items():
        assert isinstance(site, Location)
        assert all(t >= 0 for t in targets)  # every slot resolved to a function


def test_memory_address_trace() -> None:
    r = run(EXAMPLES / "trap.wat", ["memory:trace=10"], invoke="oob", args=(12,))
    assert r.value == 0  # memory holds 42 at address 0 only
    events = r.profile.extra["memory.addresses"]
    assert events == [[1, events[0][1], 12]]  # the i32.load in oob read address 12
    # Stores record their address (under the stored value), static offsets included,
    # interleaved with loads in execution order.
    wat = """(module (memory 1)
      (func (export "f") (result i32)
        (i64.store offset=8 (i32.const 100) (i64.const -1))
        (i32.store8 (i32.const 7) (i32.const 1))
        (i32.load offset=4 (i32.const 100))))"""
    r = run(wat_to_wasm(wat), ["memory:trace=10"], invoke="f")
    assert r.value == 0
    assert [a for _, _, a in r.profile.extra["memory.addresses"]] == [108, 7, 104]


def test_outputs_are_written_atomically_with_normal_permissions(tmp_path: Path) -> None:
    import stat

    trace_file = tmp_path / "calls.txt"
    r = run(EXAMPLES / "fib.wasm", [f"trace:limit=5,file={trace_file}"], stdout=os.devnull)
    r.reports()  # the trace monitor writes its file when reporting
    assert len(trace_file.read_text().splitlines()) == 5
    r.profile.save(tmp_path / "p.json")
    for path in (trace_file, tmp_path / "p.json"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o044, oct(mode)  # readable by others, not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.txt", "p.json"]  # no temp files
