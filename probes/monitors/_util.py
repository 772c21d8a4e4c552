"""Small helpers shared by monitors (public probe API + IR only)."""

from __future__ import annotations

from collections.abc import Iterator

from ..ir import Location, Module
from ..ir.blocks import counting_blocks
from ..ir.module import Function, Instr
from ..ir.printer import format_instr


def every_instruction(m: Module) -> Iterator[tuple[Function, Instr, Location]]:
    for f in m.functions:
        for ins in f.instrs:
            yield f, ins, Location(f.index, ins.pc)


def block_leaders(m: Module) -> Iterator[tuple[Function, Location]]:
    for f in m.functions:
        instrs = f.instrs
        for b in counting_blocks(instrs):
            yield f, Location(f.index, instrs[b.first].pc)


def func_label(m: Module, func: int) -> str:
    name = m.func_name(func)
    return f"{func} ({name})" if name else str(func)


def describe(m: Module, loc: Location) -> str:
    """``func NAME+pc: instruction`` for reports."""
    name = m.func_name(loc.func) or f"func{loc.func}"
    try:
        f = m.function(loc.func)
        ins = next((i for i in f.instrs if i.pc == loc.pc), None)
    except KeyError:
        ins = None
    text = format_instr(ins, m) if ins is not None else ""
    return f"{name}+{loc.pc}: {text}"


def table(rows: list[tuple[object, ...]], header: tuple[str, ...]) -> str:
    """A plain text table with right-aligned numbers."""
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for k, r in enumerate(cells):
        parts = [c.rjust(w) if k and c.replace(".", "").replace("%", "").isdigit() else c.ljust(w)
                 for c, w in zip(r, widths, strict=False)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.1f}%" if b else "n/a"
