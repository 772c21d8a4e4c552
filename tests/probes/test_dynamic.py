"""Dynamic insertion and removal, checked against a reference model.

The model is Wizard's semantics, executed over the program's instruction
trace: a change takes effect at the next execution of that location (in any
frame, including the running loop); probes at one location fire in insertion
order; changes to a location's list made while it fires are deferred until
that firing ends (the firing walks the list as it was when it began).

The trace comes from a global probe (a different mechanism from the local
probes under test); hypothesis generates the schedules of inserts/removes
that probes perform from inside `fire`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.api import prepare, run
from probes.backends.base import CompileOptions
from probes.ir import Location, ProbeError
from probes.probe import CallbackProbe, CountProbe, DynamicLoc, Probe
from probes.probeset import ProbeSet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROGRAM = EXAMPLES / "loop.wat"
EXPORT, ARGS = "nested", (3,)
POOL = 6  # probe ids


@dataclass(frozen=True)
class Change:
    on_fire: int       # after the probe's n-th firing (1-based)
    op: str            # "insert" | "remove"
    site: int          # index into the program's locations
    probe: int         # which pool probe


@pytest.fixture(scope="module")
def program():  # type: ignore[no-untyped-def]
    module, _, _ = prepare(PROGRAM)
    func = module.resolve_func(EXPORT)
    locs = [Location(func, i.pc) for i in module.function(func).instrs]
    # The ground-truth execution order, from a global probe.
    order: list[Location] = []
    ps = ProbeSet(module)
    ps.insert_global(CallbackProbe(lambda loc: order.append(loc.location)))
    result = run(module, probes=ps, invoke=EXPORT, args=ARGS)
    assert result.trap is None and result.value == 9
    assert len(order) > 100
    return module, locs, order


def model(order: list[Location], locs: list[Location], initial: list[tuple[int, int]],
          changes: dict[int, list[Change]]) -> list[tuple[int, Location]]:
    lists: dict[Location, list[int]] = {}
    for site, pid in initial:
        lists.setdefault(locs[site], []).append(pid)
    fired: dict[int, int] = {}
    log = []
    for loc in order:
        for pid in tuple(lists.get(loc, ())):  # the list as the firing began
            log.append((pid, loc))
            fired[pid] = fired.get(pid, 0) + 1
            for ch in changes.get(pid, ()):
                if ch.on_fire == fired[pid]:
                    target = lists.setdefault(locs[ch.site], [])
                    if ch.op == "insert":
                        target.append(ch.probe)
                    elif ch.probe in target:
                        target.remove(ch.probe)
    return log


class Scripted(Probe):
    def __init__(self, pid: int, world: World) -> None:
        self.pid = pid
        self.world = world
        self.fired = 0

    def fire(self, loc: DynamicLoc) -> None:
        self.fired += 1
        w = self.world
        w.log.append((self.pid, loc.location))
        for ch in w.changes.get(self.pid, ()):
            if ch.on_fire == self.fired:
                target = w.locs[ch.site]
                if ch.op == "insert":
                    w.ps.insert(target, w.probes[ch.probe])
                else:
                    w.ps.remove(target, w.probes[ch.probe])


class World:
    def __init__(self, ps: ProbeSet, locs: list[Location],
                 changes: dict[int, list[Change]]) -> None:
        self.ps = ps
        self.locs = locs
        self.changes = changes
        self.log: list[tuple[int, Location]] = []
        self.probes = [Scripted(i, self) for i in range(POOL)]


def schedules(nlocs: int):  # type: ignore[no-untyped-def]
    change = st.builds(Change, st.integers(1, 12), st.sampled_from(["insert", "remove"]),
                       st.integers(0, nlocs - 1), st.integers(0, POOL - 1))
    initial = st.lists(st.tuples(st.integers(0, nlocs - 1), st.integers(0, POOL - 1)),
                       min_size=1, max_size=6)
    changes = st.dictionaries(st.integers(0, POOL - 1), st.lists(change, max_size=4),
                              max_size=POOL)
    return st.tuples(initial, changes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_backend_matches_the_reference_model(program, data, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    module, locs, order = program
    initial, changes = data.draw(schedules(len(locs)))
    expected = model(order, locs, initial, changes)
    ps = ProbeSet(module)
    world = World(ps, locs, changes)
    for site, pid in initial:
        ps.insert(locs[site], world.probes[pid])
    result = run(module, probes=ps, invoke=EXPORT, args=ARGS,
                 options=CompileOptions(dynamic=True, cache=False))
    assert result.trap is None and result.value == 9
    assert world.log == expected


def test_removal_inside_a_running_loop(program) -> None:  # type: ignore[no-untyped-def]
    """A probe in the inner loop removes itself on its 3rd firing: exactly 3 fires,
    even though the loop keeps running in the same frame."""
    module, locs, order = program
    inner = next(loc for loc in locs if order.count(loc) == 9)
    ps = ProbeSet(module)
    fires = []

    def once_thrice(loc: DynamicLoc) -> None:
        fires.append(loc.location)
        if len(fires) == 3:
            ps.remove(inner, probe)

    probe = ps.insert(inner, CallbackProbe(once_thrice))
    run(module, probes=ps, invoke=EXPORT, args=ARGS)
    assert fires == [inner] * 3


def test_insert_elsewhere_takes_effect_in_the_same_frame(program) -> None:  # type: ignore[no-untyped-def]
    """Without dynamic mode, locations that had a probe at compile time accept
    new probes during the run; counts start from the insertion."""
    module, locs, order = program
    inner = next(loc for loc in locs if order.count(loc) == 9)
    ps = ProbeSet(module)
    late = CountProbe()
    seen = []

    def arm(loc: DynamicLoc) -> None:
        seen.append(loc.location)
        if len(seen) == 4:
            ps.insert(inner, late)

    ps.insert(inner, CallbackProbe(arm))
    run(module, probes=ps, invoke=EXPORT, args=ARGS)
    # Inserted during the 4th firing of the same location: deferred for that
    # firing, then it counts the remaining 5 executions.
    assert late.count == 5


def test_insert_at_an_unarmed_location_is_refused(program) -> None:  # type: ignore[no-untyped-def]
    module, locs, order = program
    ps = ProbeSet(module)
    errors = []

    def try_insert(loc: DynamicLoc) -> None:
        try:
            ps.insert(locs[-1], CallbackProbe(lambda _: None))
        except ProbeError as e:
            errors.append(str(e))

    ps.insert(locs[0], CallbackProbe(try_insert))
    result = run(module, probes=ps, invoke=EXPORT, args=ARGS)
    assert result.trap is None
    assert errors and "dynamic=True" in errors[0]
    assert ps.at(locs[-1]) == ()  # the refused insertion left no trace
