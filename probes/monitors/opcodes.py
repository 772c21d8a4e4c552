"""opcodes: the static and dynamic instruction mix."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Location, Module
from ..probe import CountProbe
from ..probeset import ProbeSet
from ..profile import ProfileData
from . import Monitor, option, register
from ._util import every_instruction, pct, table


@register
@dataclass
class OpcodesMonitor(Monitor):
    name = "opcodes"
    help = "static opcode mix of the module and dynamic mix of the run"

    top: int = option(20, "opcodes to list")
    _probes: dict[Location, tuple[str, CountProbe]] = field(default_factory=dict, repr=False)
    _static: dict[str, int] = field(default_factory=dict, repr=False)

    def attach(self, module: Module, probes: ProbeSet) -> None:
        for _, ins, loc in every_instruction(module):
            name = ins.op.name
            self._static[name] = self._static.get(name, 0) + 1
            self._probes[loc] = (name, probes.insert(loc, CountProbe()))

    def collect(self, profile: ProfileData) -> None:
        dynamic: dict[str, int] = {}
        for loc, (name, p) in self._probes.items():
            n = p.count
            if n:
                dynamic[name] = dynamic.get(name, 0) + n
                profile.counts[loc] = n
        profile.extra["opcodes.static"] = dict(sorted(self._static.items()))
        profile.extra["opcodes.dynamic"] = dict(sorted(dynamic.items()))

    def report(self, profile: ProfileData, module: Module) -> str:
        static: dict[str, int] = profile.extra.get("opcodes.static", {})
        dynamic: dict[str, int] = profile.extra.get("opcodes.dynamic", {})
        ts, td = sum(static.values()), sum(dynamic.values())
        names = sorted(set(static) | set(dynamic), key=lambda n: (-dynamic.get(n, 0), n))
        rows = [(n, static.get(n, 0), pct(static.get(n, 0), ts), dynamic.get(n, 0),
                 pct(dynamic.get(n, 0), td)) for n in names[:self.top]]
        return (f"opcodes: {len(static)} distinct opcodes, {ts} static, {td} executed\n"
                + table(rows, ("opcode", "static", "%", "dynamic", "%")))
