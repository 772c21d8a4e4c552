"""The ``name`` custom section: module, function and local names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import DecodeError
from .leb import read_u32

if TYPE_CHECKING:
    from .module import Module

__all__ = ["Names", "parse_names"]


@dataclass
class Names:
    """Debug names. Missing entries simply have no name."""

    module: str | None = None
    """The module's own name."""
    functions: dict[int, str] = field(default_factory=dict)
    """Function index -> name."""
    locals: dict[int, dict[int, str]] = field(default_factory=dict)
    """Function index -> local index -> name."""


def _name(data: bytes, pos: int, end: int) -> tuple[str, int]:
    n, pos = read_u32(data, pos, end)
    if n > end - pos:
        raise DecodeError("name past the end of its subsection", pos)
    return data[pos:pos + n].decode("utf-8", errors="replace"), pos + n


def _name_map(data: bytes, pos: int, end: int, out: dict[int, str]) -> int:
    """Read a name map into ``out`` (entries read before a fault are kept)."""
    n, pos = read_u32(data, pos, end)
    for _ in range(min(n, end - pos)):
        idx, pos = read_u32(data, pos, end)
        out[idx], pos = _name(data, pos, end)
    return pos


def parse_names(m: Module) -> Names:
    """Parse the first ``name`` section. Like engines do, a malformed one is not
    an error: what was read before the fault is kept and the rest ignored."""
    names = Names()
    for c in m.customs:
        if c.name != "name":
            continue
        data = c.data
        pos = 0
        try:
            while pos < len(data):
                sub = data[pos]
                size, pos = read_u32(data, pos + 1, len(data))
                end = pos + size
                if end > len(data):
                    break
                if sub == 0:
                    names.module, _ = _name(data, pos, end)
                elif sub == 1:
                    _name_map(data, pos, end, names.functions)
                elif sub == 2:
                    n, p = read_u32(data, pos, end)
                    for _ in range(min(n, end - p)):
                        func, p = read_u32(data, p, end)
                        p = _name_map(data, p, end, names.locals.setdefault(func, {}))
                pos = end
        except DecodeError:
            pass
        break
    return names
