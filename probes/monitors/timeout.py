"""timeout: stop the program after a budget of instructions, with a clean Trap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ir import Module, ProbeError
from ..profile import ProfileData
from . import Monitor, option, register


@register
@dataclass
class TimeoutMonitor(Monitor):
    name = "timeout"
    help = ("stop after N instructions (wasmtime fuel: every instruction but nop, drop, "
            "block, loop, else and end counts)")

    n: int = option(1_000_000_000, "instruction budget")

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ProbeError("timeout: n must be positive")

    def compile_options(self) -> dict[str, Any]:
        return {"fuel": self.n}

    def report(self, profile: ProfileData, module: Module) -> str:
        trap = profile.trap
        if trap and trap.get("kind") == "out of fuel":
            return f"timeout: stopped after {self.n} instructions"
        return ""
