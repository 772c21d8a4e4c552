"""Dead code: functions and blocks never reached, statically and in a run.

    >>> d = dead_code(module, profile)
    >>> d.static_functions, d.unexecuted_functions
    >>> [(b.func, b.start_pc, b.end_pc) for b in d.static_blocks]

*Statically dead* functions are those no root reaches in the static call
graph (roots: exports, the start function, functions whose address is
taken); statically dead blocks are those no path from their function's
entry reaches (code after a ``br``, ``return`` or ``unreachable``). Blocks
made only of structural markers (``end``, ``else``, ``unreachable``,
``nop``), which compilers routinely leave after a jump, are left out unless
``trivial=True``.

*Unexecuted* functions are defined functions the run never entered;
unexecuted blocks are blocks of the functions it did enter that never ran.
Both need a profile that can tell (counts, coverage or entry counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..ir import Location
from ..ir.cfg import build_cfg
from ._common import entered_functions, has_counts
from .calls import callgraph, roots

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

__all__ = ["DeadBlock", "DeadCode", "dead_code"]

_MARKERS = frozenset(["end", "else", "unreachable", "nop"])


@dataclass(frozen=True, slots=True)
class DeadBlock:
    """A basic block that is (or was) never reached."""

    func: int
    """The function."""
    block: int
    """Its id in the function's CFG."""
    start_pc: int
    """pc of its first instruction."""
    end_pc: int
    """pc of its last instruction."""
    instrs: int
    """How many instructions it holds."""

    @property
    def start(self) -> Location:
        return Location(self.func, self.start_pc)


@dataclass
class DeadCode:
    """What never runs (static) and what did not run (dynamic)."""

    static_functions: list[int] = field(default_factory=list)
    """Defined functions no root reaches in the static call graph."""
    static_blocks: list[DeadBlock] = field(default_factory=list)
    """Blocks no path from their function's entry reaches."""
    unexecuted_functions: list[int] | None = None
    """Defined functions the run never entered (None without a profile)."""
    unexecuted_blocks: list[DeadBlock] | None = None
    """Blocks of entered functions that never ran (None without counts/coverage)."""

    @property
    def static_instructions(self) -> int:
        """Instructions in statically dead blocks."""
        return sum(b.instrs for b in self.static_blocks)


def _trivial(instrs: list) -> bool:  # type: ignore[type-arg]
    return all(i.op.name in _MARKERS for i in instrs)


def dead_code(module: Module, profile: ProfileData | None = None, *,
              trivial: bool = False) -> DeadCode:
    """Statically dead functions and blocks, and with a profile, what the run
    never executed."""
    out = DeadCode()
    g = callgraph(module)
    live: set[int] = set()
    work = [r for r in roots(module) if r in g]
    while work:
        f = work.pop()
        if f in live:
            continue
        live.add(f)
        work.extend(v for v in g.succ[f] if v not in live)
    out.static_functions = [f.index for f in module.functions if f.index not in live]

    ran = entered_functions(profile) if profile is not None else None
    if ran is not None:
        out.unexecuted_functions = [f.index for f in module.functions if f.index not in ran]
    counts = profile.counts if profile is not None and has_counts(profile) else None
    cov = profile.coverage if profile is not None else {}
    instr_cov = any(loc.pc >= 0 for loc in cov)
    dynamic = counts is not None or instr_cov
    if dynamic:
        out.unexecuted_blocks = []
    for fn in module.functions:
        c = build_cfg(module, fn.index)
        reach = c.reachable()
        for b in c.blocks:
            dead = DeadBlock(fn.index, b.id, b.start_pc, b.end_pc, len(b.instrs))
            if b.id not in reach:
                if trivial or not _trivial(b.instrs):
                    out.static_blocks.append(dead)
                continue
            if not dynamic or ran is None or fn.index not in ran:
                continue
            loc = Location(fn.index, b.start_pc)
            executed = (counts is not None and counts.get(loc, 0) > 0) or any(
                cov.get(Location(fn.index, i.pc), False) for i in b.instrs)
            if not executed and (trivial or not _trivial(b.instrs)):
                out.unexecuted_blocks.append(dead)  # type: ignore[union-attr]
    return out
