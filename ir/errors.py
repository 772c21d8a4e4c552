"""The one exception hierarchy of probes.

Every error a user can cause is a `ProbesError`; messages end in
"(at offset 0x…)" where there is a byte offset to point at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .location import Location

__all__ = [
    "ProbesError", "DecodeError", "ValidationError", "UnsupportedFeature", "LinkError",
    "Trap", "ProbeError",
]


def _at(offset: int | None) -> str:
    return "" if offset is None else f" (at offset 0x{offset:x})"


class ProbesError(Exception):
    """Base class of every error raised by probes for bad input or guest faults."""


class DecodeError(ProbesError):
    """A malformed binary module."""

    def __init__(self, message: str, offset: int | None) -> None:
        super().__init__(f"{message}{_at(offset)}")
        self.message = message
        """What is wrong, without the location."""
        self.offset = offset
        """Byte offset in the module where decoding failed (None for text, whose
        message names the line and column)."""


class UnsupportedFeature(ProbesError):
    """Valid WebAssembly of a proposal probes does not handle (GC, threads, ...)."""

    def __init__(self, feature: str, offset: int, detail: str = "") -> None:
        extra = f": {detail}" if detail else ""
        super().__init__(f"unsupported feature {feature!r}{extra}{_at(offset)}")
        self.feature = feature
        """The proposal's name, e.g. ``exceptions``."""
        self.offset = offset
        """Byte offset in the module of the first use."""


class ValidationError(ProbesError):
    """A well-formed module that does not type-check."""

    def __init__(self, message: str, func: int | None = None, pc: int | None = None,
                 offset: int | None = None) -> None:
        where = "" if func is None else f" in function {func}" + ("" if pc is None else
                                                                    f" at pc {pc}")
        super().__init__(f"{message}{where}{_at(offset)}")
        self.message = message
        """What is wrong, without the location."""
        self.func = func
        """Function index, when the error is inside a function body."""
        self.pc = pc
        """Instruction offset inside that function's body."""
        self.offset = offset
        """Module-relative byte offset, when known."""


class LinkError(ProbesError):
    """An import could not be satisfied."""

    def __init__(self, message: str, import_name: str | None = None) -> None:
        super().__init__(message)
        self.import_name = import_name
        """``module.name`` of the import at fault, when known."""


class Trap(ProbesError):
    """The guest trapped (or a probe asked it to)."""

    def __init__(self, kind: str, location: Location | None = None,
                 backtrace: Sequence[Location] = (), message: str = "") -> None:
        where = f" at {location}" if location is not None else ""
        super().__init__(f"trap: {message or kind}{where}")
        self.kind = kind
        """Short trap kind: ``unreachable``, ``integer divide by zero``, ``out of bounds``..."""
        self.location = location
        """Where the trapping instruction is, in the original module."""
        self.backtrace = tuple(backtrace)
        """Innermost-first locations of the active frames, when known."""


class ProbeError(ProbesError):
    """A probe was misused (bad location, bad option) or its callback failed."""
