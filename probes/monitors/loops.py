"""loops: entries and iterations of every loop."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Location, Module
from ..probe import CountProbe
from ..probeset import ProbeSet
from ..profile import ProfileData
from . import Monitor, option, register
from ._util import describe, table


@register
@dataclass
class LoopsMonitor(Monitor):
    name = "loops"
    help = "loop entries and iterations (iterations = executions of the loop body start)"

    top: int = option(20, "loops to list in the summary")
    _probes: dict[Location, tuple[CountProbe, CountProbe]] = field(default_factory=dict,
                                                                   repr=False)

    def attach(self, module: Module, probes: ProbeSet) -> None:
        for f in module.functions:
            instrs = f.instrs
            for i, ins in enumerate(instrs):
                if ins.op.name == "loop":
                    head = Location(f.index, ins.pc)
                    body = Location(f.index, instrs[i + 1].pc)
                    self._probes[head] = (probes.insert(head, CountProbe()),
                                          probes.insert(body, CountProbe()))

    def collect(self, profile: ProfileData) -> None:
        for loc, (entries, body) in self._probes.items():
            if entries.count:
                profile.loops[loc] = {"entries": entries.count, "iterations": body.count}

    def report(self, profile: ProfileData, module: Module) -> str:
        loops = sorted(profile.loops.items(), key=lambda kv: (-kv[1]["iterations"], kv[0]))
        rows = [(describe(module, loc), v["entries"], v["iterations"],
                 f"{v['iterations'] / v['entries']:.1f}") for loc, v in loops[:self.top]]
        return (f"loops: {len(profile.loops)} loops entered\n"
                + table(rows, ("loop", "entries", "iterations", "avg")))
