"""branches: taken / not-taken per br_if and if, per-target counts for br_table.

Two-way branches need no operand recording: the instruction after a ``br_if``
runs exactly when it falls through, and the instruction after an ``if``
exactly when its condition holds, so two execution counts (which the backend
shares with every other counter of those blocks) give both outcomes.
``br_table`` gets an operand histogram.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Location, Module
from ..probe import CountProbe, OperandProbe
from ..probeset import ProbeSet
from ..profile import ProfileData
from . import Monitor, option, register
from ._util import describe, table


@register
@dataclass
class BranchesMonitor(Monitor):
    name = "branches"
    help = "branch profiles: br_if/if taken vs not taken, br_table targets"

    top: int = option(20, "branch sites to list in the summary")
    _tables: dict[Location, OperandProbe] = field(default_factory=dict, repr=False)
    _two_way: dict[Location, tuple[str, CountProbe, CountProbe]] = field(
        default_factory=dict, repr=False)

    def attach(self, module: Module, probes: ProbeSet) -> None:
        for f in module.functions:
            instrs = f.instrs
            for i, ins in enumerate(instrs):
                name = ins.op.name
                loc = Location(f.index, ins.pc)
                if name == "br_table":
                    self._tables[loc] = probes.insert(loc, OperandProbe())
                elif name in ("br_if", "if"):
                    after = Location(f.index, instrs[i + 1].pc)
                    self._two_way[loc] = (name, probes.insert(loc, CountProbe()),
                                          probes.insert(after, CountProbe()))

    def collect(self, profile: ProfileData) -> None:
        for loc, p in self._tables.items():
            values = p.values()
            if values:
                profile.branches[loc] = values
        for loc, (name, site, after) in self._two_way.items():
            total = site.count
            if not total:
                continue
            nxt = after.count
            # br_if: the next instruction runs when not taken; if: when the condition holds.
            taken = total - nxt if name == "br_if" else nxt
            profile.branches[loc] = {k: v for k, v in ((0, total - taken), (1, taken)) if v}

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
