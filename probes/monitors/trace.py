"""trace: a bounded trace of function calls and/or instructions."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..atomic import atomic_write
from ..ir import Location, Module, ProbeError
from ..probe import TraceProbe
from ..probeset import ProbeSet
from ..profile import ProfileData
from . import Monitor, option, register
from ._util import describe


@register
@dataclass
class TraceMonitor(Monitor):
    name = "trace"
    help = "bounded trace of calls (function entries) and/or every instruction"

    calls: bool = option(True, "record function entries")
    instructions: bool = option(False, "record every instruction (large!)")
    limit: int = option(100_000, "keep the last N events")
    file: str = option("", "also write the trace as text lines to this file")
    _probe: TraceProbe | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.limit <= 0:
            raise ProbeError("trace: limit must be positive")
        if not (self.calls or self.instructions):
            raise ProbeError("trace: enable calls and/or instructions")

    def attach(self, module: Module, probes: ProbeSet) -> None:
        self._probe = TraceProbe(limit=self.limit)
        for f in module.functions:
            if self.instructions:
                for ins in f.instrs:
                    probes.insert(Location(f.index, ins.pc), self._probe)
            elif self.calls and f.instrs:
                # The first instruction runs exactly once per call.
                probes.insert(Location(f.index, f.instrs[0].pc), self._probe)

    def collect(self, profile: ProfileData) -> None:
        assert self._probe is not None
        profile.trace.extend(self._probe.events)
        profile.trace_dropped += self._probe.dropped

    def report(self, profile: ProfileData, module: Module) -> str:
        if self.file:
            atomic_write(self.file, "".join(describe(module, loc) + "\n"
                                            for loc, _ in profile.trace))
        where = f", written to {self.file}" if self.file else ""
        dropped = f" ({profile.trace_dropped} older events dropped)" \
            if profile.trace_dropped else ""
        return f"trace: {len(profile.trace)} events{dropped}{where}"
