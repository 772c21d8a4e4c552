"""memory: loads and stores per 64 KiB page, and optionally an address trace."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Module, ProbeError
from ..probe import OperandProbe, TraceProbe
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
    trace: int = option(0, "also record the last N accessed addresses (0: off)")
    _loads: OperandProbe = field(default_factory=OperandProbe, repr=False)
    _stores: OperandProbe = field(default_factory=OperandProbe, repr=False)
    _addresses: TraceProbe | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.trace < 0:
            raise ProbeError("memory: trace must be 0 (off) or a positive event count")

    def attach(self, module: Module, probes: ProbeSet) -> None:
        # One histogram for all loads and one for all stores: the probes are shared.
        if self.trace:
            self._addresses = TraceProbe(with_value=True, limit=self.trace, address=True)
        for _, ins, loc in every_instruction(module):
            if ins.op.imm == "memarg" and ins.op.mem_bytes:
                probes.insert(loc, self._stores if ins.op.is_store else self._loads)
                if self._addresses is not None:
                    probes.insert(loc, self._addresses)

    def collect(self, profile: ProfileData) -> None:
        if self._addresses is not None:
            # [func, pc, effective address] in execution order, the last `trace` ones.
            profile.extra["memory.addresses"] = [[loc.func, loc.pc, addr] for loc, addr in
                                                 self._addresses.events]
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
