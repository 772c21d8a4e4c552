"""coverage: which instructions, blocks or functions executed."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Location, Module, ProbeError
from ..probe import CoverageProbe
from ..probeset import ENTRY, ProbeSet
from ..profile import ProfileData
from . import Monitor, option, register
from ._util import block_leaders, every_instruction, func_label, pct, table


@register
@dataclass
class CoverageMonitor(Monitor):
    name = "coverage"
    help = "instruction, block or function coverage (self-removing flags)"

    level: str = option("instruction", "instruction | block | function")
    _probes: dict[Location, CoverageProbe] = field(default_factory=dict, repr=False)
    _module: Module | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.level not in ("instruction", "block", "function"):
            raise ProbeError(f"coverage: level must be instruction, block or function, "
                             f"not {self.level!r}")

    def attach(self, module: Module, probes: ProbeSet) -> None:
        self._module = module
        if self.level == "function":
            locs = [Location(f.index, ENTRY) for f in module.functions]
        elif self.level == "block":
            locs = [loc for _, loc in block_leaders(module)]
        else:
            locs = [loc for _, _, loc in every_instruction(module)]
        for loc in locs:
            self._probes[loc] = probes.insert(loc, CoverageProbe())

    def collect(self, profile: ProfileData) -> None:
        funcs: dict[int, bool] = {}
        for loc, p in self._probes.items():
            hit = p.hit
            profile.coverage[loc] = hit
            funcs[loc.func] = funcs.get(loc.func, False) or hit
        profile.function_coverage.update(funcs)

    def report(self, profile: ProfileData, module: Module) -> str:
        cov = profile.coverage
        if not cov and not profile.function_coverage:
            return ""
        per: dict[int, list[int]] = {}
        for loc, hit in cov.items():
            n = per.setdefault(loc.func, [0, 0])
            n[0] += hit
            n[1] += 1
        hit = sum(1 for v in cov.values() if v)
        fhit = sum(1 for v in profile.function_coverage.values() if v)
        unit = {"function": "functions", "block": "blocks"}.get(self.level, "instructions")
        lines = [f"coverage: {hit}/{len(cov)} {unit} ({pct(hit, len(cov))}), "
                 f"{fhit}/{len(profile.function_coverage)} functions entered"]
        if self.level != "function":
            rows = sorted(per.items(), key=lambda kv: (-kv[1][1], kv[0]))
            shown = [(func_label(module, f), f"{h}/{n}", pct(h, n)) for f, (h, n) in rows
                     if h][:15]
            if shown:
                lines.append(table(shown, ("function", unit, "covered")))
        return "\n".join(lines)
