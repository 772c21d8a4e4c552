"""hotness: the most executed instructions (icount's counters, another summary)."""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import Module
from ..profile import ProfileData
from . import option, register
from ._util import describe, pct, table
from .icount import ICountMonitor


@register
@dataclass
class HotnessMonitor(ICountMonitor):
    name = "hotness"
    help = "top-N most executed instructions"

    top: int = option(20, "locations to list")

    def report(self, profile: ProfileData, module: Module) -> str:
        total = profile.total_instructions
        hot = sorted(profile.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:self.top]
        rows = [(describe(module, loc), n, pct(n, total)) for loc, n in hot]
        return "hotness: top locations\n" + table(rows, ("location", "count", "share"))
