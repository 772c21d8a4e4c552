"""calls: the dynamic call graph with counts, call_indirect targets resolved."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Location, Module
from ..probe import CountProbe, OperandProbe
from ..probeset import ENTRY, ProbeSet
from ..profile import ProfileData
from . import Monitor, option, register
from ._util import every_instruction, func_label, table


@register
@dataclass
class CallsMonitor(Monitor):
    name = "calls"
    help = "dynamic call graph: caller -> callee counts, incl. call_indirect targets"

    top: int = option(20, "edges to list in the summary")
    _direct: list[tuple[Location, int, CountProbe]] = field(default_factory=list, repr=False)
    _indirect: list[tuple[Location, int, OperandProbe]] = field(default_factory=list,
                                                                  repr=False)
    _entries: dict[int, CountProbe] = field(default_factory=dict, repr=False)
    _module: Module | None = field(default=None, repr=False)

    def attach(self, module: Module, probes: ProbeSet) -> None:
        self._module = module
        for f in module.functions:
            self._entries[f.index] = probes.insert(Location(f.index, ENTRY), CountProbe())
        for _, ins, loc in every_instruction(module):
            if ins.op.name == "call":
                self._direct.append((loc, ins.imm, probes.insert(loc, CountProbe())))
            elif ins.op.name == "call_indirect":
                self._indirect.append((loc, ins.imm[1], probes.insert(loc, OperandProbe())))

    def collect(self, profile: ProfileData) -> None:
        assert self._module is not None
        for func, p in self._entries.items():
            if p.count:
                profile.entries[func] = p.count  # the same data whichever monitor sets it
        for loc, callee, p in self._direct:
            n = p.count
            if n:
                key = (loc.func, callee)
                profile.calls[key] = profile.calls.get(key, 0) + n
        tables: dict[int, dict[int, int]] = {}
        for loc, table_index, p in self._indirect:
            slots = tables.setdefault(table_index, self._module.table_contents(table_index))
            targets: dict[int, int] = {}
            for slot, n in p.values().items():
                callee = slots.get(slot, -1)  # -1: a slot no segment filled (it trapped)
                targets[callee] = targets.get(callee, 0) + n
                if callee >= 0:
                    key = (loc.func, callee)
                    profile.calls[key] = profile.calls.get(key, 0) + n
            if targets:
                profile.indirect_targets[loc] = targets

    def report(self, profile: ProfileData, module: Module) -> str:
        edges = sorted(profile.calls.items(), key=lambda kv: (-kv[1], kv[0]))
        rows = [(func_label(module, a), func_label(module, b), n) for (a, b), n in
                edges[:self.top]]
        total = sum(profile.calls.values())
        head = (f"calls: {total} calls over {len(profile.calls)} edges, "
                f"{len(profile.entries)} functions entered")
        return head + ("\n" + table(rows, ("caller", "callee", "calls")) if rows else "")
