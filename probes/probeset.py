"""ProbeSet: the one entry point that places probes (Wizard's `Instrumentation`).

A ProbeSet is an overlay on an immutable Module: Location -> ordered probe
list, plus global probes and function entry/exit probes. It may change at any
time, including from inside a probe's `fire` while the program runs; running
instances subscribe to changes (`ProbeSet.subscribe`).

Semantics (Wizard's): a change takes effect at the next execution of that
location in any frame; probes at one location fire in insertion order; and
changes made to a location's list while it fires are deferred until that
firing ends — the firing iterates over the list as it was when it began.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .ir import Location, Module, ProbeError
from .probe import Probe, check_probe

__all__ = ["ProbeSet", "ENTRY", "EXIT"]

ENTRY = -1
"""The pseudo-pc of a function's entry site."""
EXIT = -2
"""The pseudo-pc of a function's exit site (every normal exit path)."""

Listener = Callable[[str, Location | None, Probe], None]


class ProbeSet:
    """Where probes are. Locations use the original module's numbering.

    Entry and exit probes live at ``Location(func, ENTRY)`` and
    ``Location(func, EXIT)``; global probes fire before every instruction.
    """

    def __init__(self, module: Module | None = None) -> None:
        self.module = module
        """The module locations are checked against (None: unchecked)."""
        self._local: dict[Location, tuple[Probe, ...]] = {}
        self._global: tuple[Probe, ...] = ()
        self._listeners: list[Listener] = []
        self._valid_pcs: dict[int, frozenset[int]] = {}
        self.version = 0
        """Bumped on every change; backends use it to know when to re-weave."""

    # -- queries ----------------------------------------------------------------------
    def at(self, loc: Location) -> tuple[Probe, ...]:
        """Probes at a location (or entry/exit site), in firing order."""
        return self._local.get(loc, ())

    @property
    def global_probes(self) -> tuple[Probe, ...]:
        """Probes fired before every instruction, in firing order."""
        return self._global

    def locations(self) -> list[Location]:
        """Every location or entry/exit site that has probes, sorted."""
        return sorted(self._local)

    def items(self) -> Iterator[tuple[Location, tuple[Probe, ...]]]:
        return iter(sorted(self._local.items()))

    def __len__(self) -> int:
        return sum(len(v) for v in self._local.values()) + len(self._global)

    def __bool__(self) -> bool:
        return bool(self._local or self._global)

    # -- changes ----------------------------------------------------------------------
    def insert(self, loc: Location, probe: Probe) -> Probe:
        """Add a probe after the others at ``loc``. Returns the probe."""
        check_probe(probe)
        self._check_location(loc)
        before = self._local.get(loc, ())
        self._local[loc] = before + (probe,)
        try:
            self._changed("insert", loc, probe)
        except BaseException:
            # A running instance refused it: leave the set as it was.
            if before:
                self._local[loc] = before
            else:
                del self._local[loc]
            self.version += 1
            raise
        return probe

    def insert_entry(self, func: int, probe: Probe) -> Probe:
        """Fire ``probe`` each time function ``func`` is entered."""
        return self.insert(Location(func, ENTRY), probe)

    def insert_exit(self, func: int, probe: Probe) -> Probe:
        """Fire ``probe`` on every normal exit of function ``func`` (not on traps)."""
        return self.insert(Location(func, EXIT), probe)

    def insert_global(self, probe: Probe) -> Probe:
        """Fire ``probe`` before every instruction of every function."""
        check_probe(probe)
        before = self._global
        self._global = before + (probe,)
        try:
            self._changed("insert", None, probe)
        except BaseException:
            self._global = before
            self.version += 1
            raise
        return probe

    def remove(self, loc: Location, probe: Probe) -> bool:
        """Remove one occurrence of ``probe`` at ``loc``; False if it was not there."""
        probes = self._local.get(loc, ())
        for i, p in enumerate(probes):
            if p is probe:
                rest = probes[:i] + probes[i + 1:]
                if rest:
                    self._local[loc] = rest
                else:
                    del self._local[loc]
                self._changed("remove", loc, probe)
                return True
        return False

    def remove_global(self, probe: Probe) -> bool:
        for i, p in enumerate(self._global):
            if p is probe:
                self._global = self._global[:i] + self._global[i + 1:]
                self._changed("remove", None, probe)
                return True
        return False

    def remove_all(self, probe: Probe) -> int:
        """Remove ``probe`` everywhere; returns how many places it was at."""
        n = 0
        for loc in [loc for loc, ps in self._local.items() if any(p is probe for p in ps)]:
            while self.remove(loc, probe):
                n += 1
        while self.remove_global(probe):
            n += 1
        return n

    def clear(self) -> None:
        for loc, probes in list(self._local.items()):
            for p in probes:
                self.remove(loc, p)
        for p in self._global:
            self.remove_global(p)

    # -- running instances ---------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(kind, loc, probe)`` after each change; returns an unsubscriber."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self, kind: str, loc: Location | None, probe: Probe) -> None:
        self.version += 1
        for listener in list(self._listeners):
            listener(kind, loc, probe)

    def _check_location(self, loc: Location) -> None:
        m = self.module
        if m is None:
            return
        pcs = self._valid_pcs.get(loc.func)
        if pcs is None:
            try:
                f = m.function(loc.func)
            except KeyError:
                raise ProbeError(f"no defined function {loc.func} for a probe at {loc}") from None
            pcs = self._valid_pcs[loc.func] = frozenset(i.pc for i in f.instrs)
        if loc.pc not in pcs and loc.pc not in (ENTRY, EXIT):
            raise ProbeError(f"no instruction starts at pc {loc.pc} of function {loc.func}")

    def copy(self) -> ProbeSet:
        """A snapshot with the same probes (and no subscribers)."""
        other = ProbeSet(self.module)
        other._local = dict(self._local)
        other._global = self._global
        other._valid_pcs = self._valid_pcs
        return other
