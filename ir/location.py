"""Locations in the original program."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Location"]


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """An instruction of the original module, Wizard's convention.

    Instrumentation never renumbers locations: they always name bytes of the
    binary the user gave us.
    """

    func: int
    """Function index in the module's function index space (imports first)."""
    pc: int
    """Byte offset of the instruction from the start of the function's body
    (the body starts at its local declarations, right after the size field)."""

    def __str__(self) -> str:
        return f"func {self.func} pc {self.pc}"
