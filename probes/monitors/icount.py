"""icount: exact execution counts per instruction, per function and in total."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Location, Module
from ..probe import CountProbe
from ..probeset import ProbeSet
from ..profile import ProfileData
from . import Monitor, option, register
from ._util import every_instruction, func_label, pct, table


@register
@dataclass
class ICountMonitor(Monitor):
    name = "icount"
    help = "exact instruction counts (one counter per basic block)"

    top: int = option(10, "functions to list in the summary")
    _probes: dict[Location, CountProbe] = field(default_factory=dict, repr=False)

    def attach(self, module: Module, probes: ProbeSet) -> None:
        # One CountProbe per instruction; the backend shares one counter per block.
        for _, _, loc in every_instruction(module):
            self._probes[loc] = probes.insert(loc, CountProbe())

    def collect(self, profile: ProfileData) -> None:
        for loc, p in self._probes.items():
            n = p.count
            if n:
                profile.counts[loc] = n

    def report(self, profile: ProfileData, module: Module) -> str:
        total = profile.total_instructions
        per = sorted(profile.function_counts().items(), key=lambda kv: (-kv[1], kv[0]))
        rows = [(func_label(module, f), n, pct(n, total)) for f, n in per[:self.top]]
        out = [f"icount: {total} instructions executed"]
        if rows:
            out.append(table(rows, ("function", "instructions", "share")))
        return "\n".join(out)
