"""Counting blocks: the straight-line runs that one counter can stand for.

If the first instruction of a counting block executes, every later one does
too, unless something traps in between. Conventions (shared by the weaver and
the monitors that turn block counts into instruction counts):

* a branch to a ``block``/``if`` label lands *after* its ``end``, so an
  ``end`` executes only when control falls into it and belongs to the block
  before it; ``else`` likewise ends the then-arm;
* a branch to a ``loop`` label lands on the instruction after ``loop``, so
  ``loop`` itself runs once per entry and ends its block;
* calls end blocks (the callee may never return);
* an instruction "executes" when it begins: a trapping instruction counts,
  the ones after it in its block do not (`Trap` locations correct for this).
"""

from __future__ import annotations

from dataclasses import dataclass

from .module import Instr

__all__ = ["CountingBlock", "counting_blocks"]

_ENDS_AFTER = frozenset(["br", "br_if", "br_table", "return", "unreachable", "call",
                         "call_indirect", "if", "else", "loop"])


@dataclass(frozen=True, slots=True)
class CountingBlock:
    """Instructions ``first..last`` (indices into the body, inclusive)."""

    first: int
    """Index of the leader instruction."""
    last: int
    """Index of the final instruction."""
    traps_inside: bool
    """Whether an instruction before `last` may trap (coverage needs a second flag)."""


def counting_blocks(instrs: list[Instr]) -> list[CountingBlock]:
    """Partition a body into counting blocks, in order."""
    n = len(instrs)
    leader = [False] * n
    if n:
        leader[0] = True
    # Matching structure: which `end`s close a loop (their successors are not targets).
    opens: list[str] = []
    for i, ins in enumerate(instrs):
        name = ins.op.name
        if name in ("block", "loop", "if"):
            opens.append(name)
        elif name == "end":
            kind = opens.pop() if opens else "func"
            if kind in ("block", "if") and i + 1 < n:
                leader[i + 1] = True
        if name in _ENDS_AFTER and i + 1 < n:
            leader[i + 1] = True
    blocks: list[CountingBlock] = []
    start = 0
    traps = False
    for i in range(n):
        if i > start and leader[i]:
            blocks.append(CountingBlock(start, i - 1, traps))
            start = i
            traps = False
        if i + 1 < n and not leader[i + 1] and instrs[i].op.traps:
            traps = True
    if n:
        blocks.append(CountingBlock(start, n - 1, traps))
    return blocks
