"""branches: taken / not-taken per br_if and if, per-target counts for br_table."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Location, Module
from ..probe import OperandProbe
from ..probeset import ProbeSet
from ..profile import ProfileData
from . import Monitor, option, register
from ._util import describe, every_instruction, table


@register
@dataclass
class BranchesMonitor(Monitor):
    name = "branches"
    help = "branch profiles: br_if/if taken vs not taken, br_table targets"

    top: int = option(20, "branch sites to list in the summary")
    _probes: dict[Location, OperandProbe] = field(default_factory=dict, repr=False)

    def attach(self, module: Module, probes: ProbeSet) -> None:
        for _, ins, loc in every_instruction(module):
            if ins.op.name in ("br_if", "if", "br_table"):
                self._probes[loc] = probes.insert(loc, OperandProbe())

    def collect(self, profile: ProfileData) -> None:
        for loc, p in self._probes.items():
            values = p.values()
            if values:
                profile.branches[loc] = values

    def report(self, profile: ProfileData, module: Module) -> str:
        if not profile.branches:
            return "branches: no branch executed"
        sites = sorted(profile.branches.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        rows = []
        for loc, hist in sites[:self.top]:
            total = sum(hist.values())
            f = module.function(loc.func)
            ins = next(i for i in f.instrs if i.pc == loc.pc)
            if ins.op.name == "br_table":
                detail = " ".join(f"{k}:{v}" for k, v in sorted(hist.items()))
            else:
                taken = hist.get(1, 0)
                detail = f"taken {taken} / not {hist.get(0, 0)} ({100 * taken / total:.1f}%)"
            rows.append((describe(module, loc), total, detail))
        return (f"branches: {len(profile.branches)} sites executed\n"
                + table(rows, ("site", "executions", "outcome")))
