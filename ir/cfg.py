"""Control-flow graph view of one function.

    >>> cfg = build_cfg(module, 3)
    >>> [(b.id, b.start_pc, b.end_pc) for b in cfg.blocks]
    >>> print(cfg.to_text(module))

Conventions
-----------

The blocks are exactly the counting blocks of `probes.ir.blocks` (same
partition, same numbering), so per-block counts gathered by the counting
monitors index `CFG.blocks` directly. Every instruction of the body,
structural markers included, belongs to exactly one block, and a block is
a contiguous run of instructions in pc order. Where control lands:

- a branch to a ``block``/``if`` label lands **after** that construct's
  ``end``: an ``end`` runs only when control falls into it, and it ends its
  block;
- a branch to a ``loop`` label lands on the **loop header**, the
  instruction after ``loop``; the ``loop`` marker ends the block before it
  and runs once per entry into the loop;
- a branch to the function's own label returns (an edge to `CFG.exit`);
- ``if`` goes to the instruction after it when the condition is nonzero and,
  when zero, to the instruction after its ``else`` (the else arm) or,
  without an ``else``, to the instruction after its ``end``;
- ``else`` ends the then arm and jumps to after the ``end`` of its ``if``.

Blocks also end after every ``br``, ``br_if``, ``br_table``, ``return``,
``unreachable``, ``call`` and ``call_indirect`` (calls end blocks, so a
block's instructions all run equally often unless something traps). Code
after an unconditional transfer keeps blocks of its own; they have no
predecessors unless a branch reaches them.

Edges (`Edge`) name source and destination block ids and a kind:

===============  ==============================================================
``fallthrough``  straight-line flow into the next block; also the *false* edge
                 of ``br_if`` (not taken) and of ``if`` (to the else arm or
                 past the end)
``branch``       ``br``, ``br_if`` taken, ``if`` with a nonzero condition
                 (entering the then arm), ``else`` skipping the else arm
``br_table``     one edge per label position, `Edge.index` = the position,
                 the default label last (index ``len(labels)``)
``loop``         a branch to a loop header: a back edge
``return``       ``return``, falling off the final ``end``, or a branch to the
                 function's label; always to `CFG.exit`
===============  ==============================================================

For ``br_if`` and ``if`` the non-fallthrough edge is the one taken when the
condition is nonzero. A ``br_table`` entry that targets a loop or the
function's label is a ``loop`` or ``return`` edge; every ``br_table`` edge
carries its `Edge.index`. ``unreachable`` has no successors (traps are not
edges). `CFG.exit` is a virtual block without instructions,
``id == len(cfg.blocks)``.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .blocks import counting_blocks
from .errors import ValidationError
from .printer import format_instr

if TYPE_CHECKING:
    from .module import Instr, Module

__all__ = ["CFG", "BasicBlock", "Edge", "EdgeKind", "build_cfg", "cfg_from_instrs"]


class EdgeKind(StrEnum):
    """Why control moves along an edge (compares equal to its string value)."""

    FALLTHROUGH = "fallthrough"
    BRANCH = "branch"
    BR_TABLE = "br_table"
    LOOP = "loop"
    RETURN = "return"


@dataclass(frozen=True, slots=True)
class Edge:
    """A control-flow edge between two blocks of one CFG."""

    src: int
    """Id of the block control leaves."""
    dst: int
    """Id of the block control enters (`CFG.exit`'s id for returns)."""
    kind: EdgeKind
    """Why control moves, see the module docstring."""
    index: int | None = None
    """For ``br_table`` edges, the label's position in the table (default last)."""

    def __str__(self) -> str:
        idx = "" if self.index is None else f"[{self.index}]"
        return f"B{self.src} -> B{self.dst} {self.kind}{idx}"


class BasicBlock:
    """A straight-line run of instructions (one counting block). Identity-compared."""

    __slots__ = ("end_pc", "id", "instrs", "preds", "start_pc", "succs")

    def __init__(self, id: int, instrs: list[Instr]) -> None:
        self.id = id
        """Position in `CFG.blocks` (blocks are numbered in pc order)."""
        self.instrs = instrs
        """The instructions, in order (empty only for the virtual exit)."""
        self.start_pc = instrs[0].pc if instrs else -1
        """pc of the first instruction (-1 for the exit)."""
        self.end_pc = instrs[-1].pc if instrs else -1
        """pc of the last instruction (-1 for the exit)."""
        self.succs: list[Edge] = []
        """Outgoing edges, in the order the instruction lists its targets."""
        self.preds: list[Edge] = []
        """Incoming edges, ordered by source block then by the source's order."""

    @property
    def is_exit(self) -> bool:
        """Whether this is the virtual exit block."""
        return not self.instrs

    @property
    def last(self) -> Instr:
        """The instruction that decides where control goes next."""
        return self.instrs[-1]

    @property
    def name(self) -> str:
        return "exit" if self.is_exit else f"B{self.id}"

    def __repr__(self) -> str:
        if self.is_exit:
            return f"<BasicBlock exit {self.id}>"
        return f"<BasicBlock {self.id} pc {self.start_pc}..{self.end_pc}>"


class CFG:
    """The control-flow graph of one defined function (see the module docstring)."""

    def __init__(self, func: int, blocks: list[BasicBlock], exit: BasicBlock) -> None:
        self.func = func
        """Function index (function index space)."""
        self.blocks = blocks
        """The real blocks, in pc order; ``blocks[i].id == i``."""
        self.entry = blocks[0]
        """The block holding the first instruction."""
        self.exit = exit
        """The virtual exit block every return edge goes to."""
        self._by_pc = {ins.pc: b for b in blocks for ins in b.instrs}
        self._starts = [b.start_pc for b in blocks]

    @property
    def nodes(self) -> list[BasicBlock]:
        """All blocks including the exit, indexed by id."""
        return [*self.blocks, self.exit]

    def block(self, id: int) -> BasicBlock:
        """The block with this id (``len(blocks)`` is the exit)."""
        if id == self.exit.id:
            return self.exit
        return self.blocks[id]

    @property
    def edges(self) -> list[Edge]:
        """Every edge, grouped by source block."""
        return [e for b in self.blocks for e in b.succs]

    def block_of(self, pc: int) -> BasicBlock:
        """The block holding the instruction at ``pc``; KeyError if none starts there."""
        b = self._by_pc.get(pc)
        if b is None:
            i = bisect.bisect_right(self._starts, pc) - 1
            within = i + 1 < len(self.blocks) or pc <= self.blocks[-1].end_pc
            inside = f" (inside B{i})" if i >= 0 and within else ""
            raise KeyError(f"no instruction at pc {pc} in function {self.func}{inside}")
        return b

    def reachable(self) -> set[int]:
        """Ids of the blocks reachable from the entry (the exit included if so)."""
        seen = {self.entry.id}
        work = [self.entry]
        while work:
            b = work.pop()
            for e in b.succs:
                if e.dst not in seen:
                    seen.add(e.dst)
                    work.append(self.block(e.dst))
        return seen

    def to_networkx(self) -> Any:
        """A ``networkx.MultiDiGraph``: nodes are block ids (exit included), edges
        carry ``kind`` and ``index`` attributes."""
        import networkx as nx

        g = nx.MultiDiGraph(func=self.func)
        for b in self.nodes:
            g.add_node(b.id, block=b)
        for e in self.edges:
            g.add_edge(e.src, e.dst, kind=e.kind, index=e.index)
        return g

    # -- text -----------------------------------------------------------------------
    def to_text(self, module: Module | None = None) -> str:
        """A listing: each block with its pc range, edges and instructions."""
        name = module.func_name(self.func) if module is not None else None
        head = (f"func {self.func}{' ' + name if name else ''}: {len(self.blocks)} blocks, "
                f"{len(self.edges)} edges")
        lines = [head]
        width = max(4, len(str(self.blocks[-1].end_pc)))
        for b in self.blocks:
            preds = ", ".join(f"{self.block(e.src).name} {_edge_tag(e)}" for e in b.preds)
            succs = ", ".join(f"{self.block(e.dst).name} {_edge_tag(e)}" for e in b.succs)
            lines.append(f"{b.name}  pc {b.start_pc}..{b.end_pc}  preds: {preds or '-'}  "
                         f"succs: {succs or '-'}")
            for ins in b.instrs:
                lines.append(f"  {ins.pc:>{width}}  {format_instr(ins, module)}")
        preds = ", ".join(f"{self.block(e.src).name} {_edge_tag(e)}" for e in self.exit.preds)
        lines.append(f"exit  preds: {preds or '-'}")
        return "\n".join(lines) + "\n"

    def to_dot(self, module: Module | None = None, counts: Mapping[int, int] | None = None,
               *, max_instrs: int | None = None) -> str:
        """Graphviz DOT text.

        Block labels show the pc range and instructions (at most
        ``max_instrs`` of them when given); ``counts`` maps block ids to
        execution counts, shown in the labels, with never-executed blocks
        filled grey. Edges are styled by kind: fallthrough black, branch
        blue, br_table purple with the table position, loop bold red,
        return dashed. Blocks no edge reaches are drawn dashed.
        """
        name = module.func_name(self.func) if module is not None else None
        title = f"func {self.func}" + (f" {name}" if name else "")
        out = [f"digraph {_quote(title)} {{",
               f"  graph [label={_quote(title)}, labelloc=t, fontname=monospace];",
               "  node [shape=box, fontname=monospace, fontsize=10];",
               "  edge [fontname=monospace, fontsize=9];"]
        for b in self.blocks:
            head = f"B{b.id}  pc {b.start_pc}..{b.end_pc}"
            attrs = []
            if counts is not None:
                n = counts.get(b.id, 0)
                head += f"  count={n}"
                if n == 0:
                    attrs.append('style=filled, fillcolor="#dddddd"')
            elif not b.preds and b is not self.entry:
                attrs.append("style=dashed")
            shown = b.instrs if max_instrs is None else b.instrs[:max_instrs]
            body = [f"{ins.pc}: {format_instr(ins, module)}" for ins in shown]
            if len(shown) < len(b.instrs):
                body.append(f"... {len(b.instrs) - len(shown)} more")
            label = "".join(_escape(line) + "\\l" for line in [head, *body])
            out.append(f'  b{b.id} [label="{label}"{"".join(", " + a for a in attrs)}];')
        exit_label = "exit"
        if counts is not None and self.exit.id in counts:
            exit_label += f"  count={counts[self.exit.id]}"
        out.append(f"  b{self.exit.id} [label={_quote(exit_label)}, shape=ellipse];")
        for e in self.edges:
            out.append(f"  b{e.src} -> b{e.dst} [{_EDGE_STYLE[e.kind]}{_edge_label(e)}];")
        out.append("}")
        return "\n".join(out) + "\n"

    def __repr__(self) -> str:
        return f"<CFG func {self.func}: {len(self.blocks)} blocks>"


_EDGE_STYLE = {
    EdgeKind.FALLTHROUGH: "color=black",
    EdgeKind.BRANCH: "color=blue",
    EdgeKind.BR_TABLE: "color=purple",
    EdgeKind.LOOP: "color=red, style=bold",
    EdgeKind.RETURN: "color=gray40, style=dashed",
}


def _edge_tag(e: Edge) -> str:
    return f"({e.kind}{'' if e.index is None else f' {e.index}'})"


def _edge_label(e: Edge) -> str:
    return "" if e.index is None else f", label={_quote(str(e.index))}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _quote(text: str) -> str:
    return f'"{_escape(text)}"'


# -- construction ---------------------------------------------------------------------
def build_cfg(module: Module, func_index: int) -> CFG:
    """The CFG of defined function ``func_index``.

    Raises KeyError for an imported function and `ValidationError` for a
    body whose structure is broken (an ``else`` outside an ``if``, a branch
    depth beyond the enclosing blocks).
    """
    instrs = module.function(func_index).instrs
    return cfg_from_instrs(instrs, func_index)


_ENDS_BLOCK = frozenset(["br", "br_if", "br_table", "return", "unreachable", "if", "else",
                         "loop", "call", "call_indirect"])
"""Instructions after which a new block starts (besides the ends of block/if)."""


def cfg_from_instrs(instrs: list[Instr], func_index: int = -1) -> CFG:
    """The CFG of a function body given as its instruction list (ending in ``end``)."""
    n = len(instrs)
    if n == 0:
        raise ValidationError("empty function body", func_index)

    # 1. Match structure: end of every block/loop/if, else of every if, and the
    #    label frame each branch depth names (resolved once all ends are known).
    end_of: dict[int, int] = {}       # opener index (-1: the function) -> its end
    else_of: dict[int, int] = {}      # if index -> its else
    if_of_else: dict[int, int] = {}   # else index -> its if
    is_loop: set[int] = set()
    labels: dict[int, list[int]] = {}  # branch index -> opener index per label position
    stack = [-1]
    for i, ins in enumerate(instrs):
        op = ins.op
        name = op.name
        if op.imm == "block":
            stack.append(i)
            if name == "loop":
                is_loop.add(i)
        elif name == "else":
            top = stack[-1] if stack else -1
            if top < 0 or instrs[top].op.name != "if" or top in else_of:
                raise ValidationError("else without a matching if", func_index, ins.pc)
            else_of[top] = i
            if_of_else[i] = top
        elif name == "end":
            if not stack:
                raise ValidationError("end without an open block", func_index, ins.pc)
            end_of[stack.pop()] = i
        elif op.imm in ("label", "br_table"):
            depths = [ins.imm] if op.imm == "label" else [*ins.imm[0], ins.imm[1]]
            frames = []
            for d in depths:
                if d >= len(stack):
                    raise ValidationError(f"unknown label: branch depth {d} exceeds the "
                                          f"{len(stack)} enclosing blocks", func_index, ins.pc)
                frames.append(stack[-1 - d])
            labels[i] = frames
    if stack or end_of.get(-1) != n - 1:
        raise ValidationError("function body does not end with the end of its outer block",
                              func_index, instrs[-1].pc)

    def target(frame: int) -> tuple[int, EdgeKind]:
        """Instruction index a branch to ``frame``'s label lands on (n: returns)."""
        if frame < 0:
            return n, EdgeKind.RETURN
        if frame in is_loop:
            return frame + 1, EdgeKind.LOOP
        return end_of[frame] + 1, EdgeKind.BRANCH

    def false_target(if_index: int) -> int:
        e = else_of.get(if_index)
        return e + 1 if e is not None else end_of[if_index] + 1

    # 2. Leaders: the counting blocks' leaders (the shared partition), plus
    #    every instruction control can land on, so edges always find a block.
    leaders = {cb.first for cb in counting_blocks(instrs)}
    leaders.add(0)
    for i, ins in enumerate(instrs):
        name = ins.op.name
        if name in _ENDS_BLOCK:
            leaders.add(i + 1)
        if i in labels:
            leaders.update(target(f)[0] for f in labels[i])
        elif name == "if":
            leaders.add(false_target(i))
        elif name == "else":
            leaders.add(end_of[if_of_else[i]] + 1)
    leaders.discard(n)

    # 3. Blocks.
    starts = sorted(leaders)
    blocks = [BasicBlock(k, list(instrs[s:e]))
              for k, (s, e) in enumerate(zip(starts, [*starts[1:], n], strict=False))]
    exit_block = BasicBlock(len(blocks), [])
    block_at = {s: k for k, s in enumerate(starts)}  # leader index -> block id
    block_at[n] = exit_block.id

    # 4. Edges, from each block's last instruction.
    for k, b in enumerate(blocks):
        i = (starts[k + 1] if k + 1 < len(starts) else n) - 1
        ins = instrs[i]
        name = ins.op.name
        succ: list[Edge] = []
        if name == "br":
            dst, kind = target(labels[i][0])
            succ.append(Edge(k, block_at[dst], kind))
        elif name == "br_if":
            dst, kind = target(labels[i][0])
            succ.append(Edge(k, block_at[dst], kind))
            succ.append(Edge(k, block_at[i + 1], EdgeKind.FALLTHROUGH))
        elif name == "br_table":
            for pos, frame in enumerate(labels[i]):
                dst, kind = target(frame)
                if kind is EdgeKind.BRANCH:
                    kind = EdgeKind.BR_TABLE
                succ.append(Edge(k, block_at[dst], kind, pos))
        elif name == "if":
            succ.append(Edge(k, block_at[i + 1], EdgeKind.BRANCH))
            succ.append(Edge(k, block_at[false_target(i)], EdgeKind.FALLTHROUGH))
        elif name == "else":
            succ.append(Edge(k, block_at[end_of[if_of_else[i]] + 1], EdgeKind.BRANCH))
        elif name == "return" or i == n - 1:
            succ.append(Edge(k, exit_block.id, EdgeKind.RETURN))
        elif name != "unreachable":
            succ.append(Edge(k, block_at[i + 1], EdgeKind.FALLTHROUGH))
        b.succs = succ
    for b in blocks:
        for e in b.succs:
            (exit_block if e.dst == exit_block.id else blocks[e.dst]).preds.append(e)
    return CFG(func_index, blocks, exit_block)
