"""hotness: the most executed instructions."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Location, Module
from ..probe import CountProbe
from ..probeset import ProbeSet
from ..profile import ProfileData
from . import Monitor, option, register
from ._util import describe, every_instruction, pct, table


@register
@dataclass
class HotnessMonitor(Monitor):
    name = "hotness"
    help = "top-N most executed instructions"

    top: int = option(20, "locations to list")
    _probes: dict[Location, CountProbe] = field(default_factory=dict, repr=False)

    def attach(self, module: Module, probes: ProbeSet) -> None:
        for _, _, loc in every_instruction(module):
            self._probes[loc] = probes.insert(loc, CountProbe())

    def collect(self, profile: ProfileData) -> None:
        for loc, p in self._probes.items():
            n = p.count
            if n:
                profile.counts[loc] = n

    def report(self, profile: ProfileData, module: Module) -> str:
        total = profile.total_instructions
        hot = sorted(profile.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:self.top]
        rows = [(describe(module, loc), n, pct(n, total)) for loc, n in hot]
        return "hotness: top locations\n" + table(rows, ("location", "count", "share"))
