"""memory: loads and stores per 64 KiB page."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Module
from ..probe import OperandProbe
from ..probeset import ProbeSet
from ..profile import ProfileData
from . import Monitor, option, register
from ._util import every_instruction, table


@register
@dataclass
class MemoryMonitor(Monitor):
    name = "memory"
    help = "memory accesses per 64 KiB page (loads and stores)"

    top: int = option(16, "pages to list in the summary")
    _loads: OperandProbe = field(default_factory=OperandProbe, repr=False)
    _stores: OperandProbe = field(default_factory=OperandProbe, repr=False)

    def attach(self, module: Module, probes: ProbeSet) -> None:
        # One histogram for all loads and one for all stores: the probes are shared.
        for _, ins, loc in every_instruction(module):
            if ins.op.imm == "memarg" and ins.op.mem_bytes:
                probes.insert(loc, self._stores if ins.op.is_store else self._loads)

    def collect(self, profile: ProfileData) -> None:
        for kind, p in (("loads", self._loads), ("stores", self._stores)):
            hist = p.values()
            if hist:
                merged = profile.memory.setdefault(kind, {})
                for page, n in hist.items():
                    merged[page] = merged.get(page, 0) + n

    def report(self, profile: ProfileData, module: Module) -> str:
        loads = profile.memory.get("loads", {})
        stores = profile.memory.get("stores", {})
        pages = sorted(set(loads) | set(stores),
                       key=lambda p: (-(loads.get(p, 0) + stores.get(p, 0)), p))
        rows = [(f"{p} (0x{p << 16:x})", loads.get(p, 0), stores.get(p, 0))
                for p in pages[:self.top]]
        return (f"memory: {sum(loads.values())} loads, {sum(stores.values())} stores over "
                f"{len(pages)} pages\n" + table(rows, ("page", "loads", "stores")))
