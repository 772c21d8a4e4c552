"""Dominance over counting blocks, and the coverage classes built on it.

A coverage class is a chain of counting blocks ``X1 -> X2 -> ... -> Xk`` that
one flag, set just before the last instruction of ``Xk``, stands for. Each
link ``X -> Y`` of a chain satisfies:

* ``X`` dominates ``Y``: when ``Y`` completed, ``X`` ran (the flag is sound);
* ``Y`` is the immediate post-dominator of ``X``: an activation that ran
  ``X`` and returned normally also ran ``Y``;
* every block reachable from ``X`` without passing ``Y`` is dominated by ``X``,
  the function's exit is not among them, nor is ``X`` itself (no cycle
  through ``X`` that avoids ``Y``);
* no call in ``X`` or in those blocks.

An activation that ran ``X`` but never ``Y`` therefore stopped (a trap, an
interrupt, a probe) in its own body, at a point ``P`` that ``X`` dominates,
with no earlier complete run of ``X`` unflagged: the run ended there, so ``P``
is the innermost frame of the final stack, which every backend reports. A
block ran iff its class's flag is set, or it strictly dominates the block of
such a point, or it is that block up to the point. Links compose: if
``X -> Y`` and ``Y -> Z`` hold, so do the conditions for ``X`` and ``Z``.

(Chains across calls would need every frame of the final stack; wasmtime
reports at most 20.)

Across calls, one exact cut remains. When a function ``f`` has a single block
``R`` that reaches its exit, and only that (`CoverageClasses.returning`),
``R``'s class completed iff some activation of ``f`` returned normally. If
``f`` is reached only by direct ``call`` instructions of its own module (not
exported, not the start function, never named by ``ref.func`` or an element
segment: `call_returns`), every normal return lands on the instruction after
one of those calls, so ``R``'s class completed iff control reached one of
those return points (a stop just before one counts: the call had returned).
The weaver then gives ``R``'s class no flag, as long as the return points'
own coverage does not in turn rest on it.

A class needs no flag at all when its last block ``Y`` does not end in a call,
and each of its successors is a block that ``Y`` strictly dominates (so not
the exit and not ``Y`` again): an activation that completed ``Y`` entered one
of them, and entering one of them proves ``Y`` completed. Such a class ran iff
one of those successors began, or a stop proves part of it ran as above
(`CoverageClasses.implied`). This is the dominator-tree view of coverage
(Agrawal, "Dominators, Super Blocks, and Program Coverage", 1994) kept exact
under traps: flags end up at the blocks whose completion nothing later shows.

Dominators are Cooper, Harvey and Kennedy's iterative algorithm ("A Simple,
Fast Dominance Algorithm", 2001) on reverse postorder.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from .blocks import CountingBlock
from .cfg import cfg_from_instrs
from .module import Instr, Module

__all__ = ["CoverageClasses", "block_successors", "call_returns", "coverage_classes",
           "immediate_dominators", "dominators"]

N = TypeVar("N", bound=Hashable)

_CALLS = frozenset(["call", "call_indirect"])

_REGION_BUDGET = 20_000
"""Blocks visited per function while checking links, beyond 20 per block; past
it the remaining blocks keep a flag of their own (correct, only slower)."""


def block_successors(instrs: list[Instr], blocks: list[CountingBlock]) -> list[list[int]]:
    """Successors of each counting block by position; ``len(blocks)`` is the exit
    (a return or the body's final ``end``)."""
    n = len(blocks)
    pos_of_first = {b.first: k for k, b in enumerate(blocks)}
    cfg = cfg_from_instrs(instrs)
    index_of = {ins.pc: i for i, ins in enumerate(instrs)}
    # The CFG may split a counting block (at places only dead code reaches);
    # an edge into the middle of a counting block is internal to it.
    owner: list[int] = []
    for k, b in enumerate(blocks):
        owner.extend([k] * (b.last - b.first + 1))
    succs: list[list[int]] = [[] for _ in range(n)]
    for bb in cfg.blocks:
        src = owner[index_of[bb.end_pc]]
        for e in bb.succs:
            if e.dst == cfg.exit.id:
                dst = n
            else:
                dst = pos_of_first.get(index_of[cfg.blocks[e.dst].start_pc], -1)
                if dst < 0:
                    continue
            if dst not in succs[src]:
                succs[src].append(dst)
    return succs


def immediate_dominators(succs: Callable[[N], Iterable[N]], entry: N) -> dict[N, N]:
    """Node -> immediate dominator over the nodes reachable from ``entry`` via
    ``succs``; ``entry`` maps to itself."""
    # Iterative DFS: postorder numbers (the entry gets the highest).
    post: dict[N, int] = {}
    order: list[N] = []
    preds: dict[N, list[N]] = {entry: []}
    stack: list[tuple[N, Any]] = [(entry, iter(succs(entry)))]
    while stack:
        node, it = stack[-1]
        for s in it:
            if s not in preds:
                preds[s] = [node]
                stack.append((s, iter(succs(s))))
                break
            preds[s].append(node)
        else:
            stack.pop()
            post[node] = len(order)
            order.append(node)
    n = len(order)
    # Work on postorder numbers: idom[i] is the postorder number of i's idom.
    pred_nums = [[post[p] for p in preds[order[i]]] for i in range(n)]
    root = n - 1
    idom = [-1] * n
    idom[root] = root
    changed = True
    while changed:
        changed = False
        for i in range(n - 2, -1, -1):  # reverse postorder, skipping the root
            new = -1
            for p in pred_nums[i]:
                if idom[p] < 0:
                    continue
                if new < 0:
                    new = p
                    continue
                a, b = p, new
                while a != b:
                    while a < b:
                        a = idom[a]
                    while b < a:
                        b = idom[b]
                new = a
            if idom[i] != new:
                idom[i] = new
                changed = True
    return {order[i]: order[idom[i]] for i in range(n)}


def dominators(idom: list[int], node: int) -> list[int]:
    """``node`` and every block that dominates it, innermost first."""
    out = [node]
    while idom[node] >= 0 and idom[node] != node:
        node = idom[node]
        out.append(node)
    return out


@dataclass(frozen=True)
class CoverageClasses:
    """Coverage classes of one function's counting blocks (by position)."""

    last: list[int]
    """The block whose completion sets each block's flag (itself when alone)."""
    idom: list[int]
    """Immediate dominator of each block (-1: the entry, or unreachable)."""
    implied: list[list[int] | None]
    """For a class's last block: its successors, when the class needs no flag
    because it completed iff one of them began; else None."""
    returning: int | None = None
    """The one block that reaches the function's exit, when its only successor
    is the exit and it ends its class (see the module docstring); else None."""

    @property
    def merged(self) -> bool:
        """Whether any class holds more than one block."""
        return any(last != k for k, last in enumerate(self.last))


def coverage_classes(instrs: list[Instr], blocks: list[CountingBlock]) -> CoverageClasses:
    """Chain the counting blocks of a body into coverage classes (module docstring)."""
    n = len(blocks)
    succs = block_successors(instrs, blocks)
    calls = [instrs[b.last].op.name in _CALLS for b in blocks]  # calls end blocks
    exit_node = n
    graph = [*succs, []]
    dom = immediate_dominators(graph.__getitem__, 0)
    idom = [dom.get(v, -1) for v in range(n + 1)]
    preds: list[list[int]] = [[] for _ in range(n + 1)]
    for v, ws in enumerate(graph):
        for w in ws:
            preds[w].append(v)
    pdom = immediate_dominators(preds.__getitem__, exit_node)
    ipdom = [pdom.get(v, -1) for v in range(n + 1)]

    # Dominator-tree intervals: a dominates b iff pre[a] <= pre[b] < post[a].
    children: list[list[int]] = [[] for _ in range(n + 1)]
    for v in range(n):
        if idom[v] >= 0 and v != 0:
            children[idom[v]].append(v)
    pre = [-1] * (n + 1)
    post = [-1] * (n + 1)
    clock = 0
    stack: list[tuple[int, int]] = [(0, 0)]
    pre[0] = clock
    clock += 1
    while stack:
        node, i = stack[-1]
        if i < len(children[node]):
            stack[-1] = (node, i + 1)
            child = children[node][i]
            pre[child] = clock
            clock += 1
            stack.append((child, 0))
        else:
            stack.pop()
            post[node] = clock

    def dominates(a: int, b: int) -> bool:
        return pre[a] >= 0 and pre[b] >= 0 and pre[a] <= pre[b] < post[a]

    budget = _REGION_BUDGET + 20 * n

    def region_ok(x: int, y: int) -> bool:
        nonlocal budget
        seen = {y}
        work = [x]
        while work:
            v = work.pop()
            for w in graph[v]:
                if w in seen:
                    continue
                budget -= 1
                if (w == exit_node or w == x or calls[w] or not dominates(x, w)
                        or budget < 0):
                    return False
                seen.add(w)
                work.append(w)
        return True

    link = [-1] * n
    for x in range(n):
        y = ipdom[x]
        if y < 0 or y == exit_node or y == x or calls[x] or budget < 0:
            continue
        if dominates(x, y) and region_ok(x, y):
            link[x] = y
    last = list(range(n))
    for x in range(n - 1, -1, -1):
        if link[x] >= 0:
            # Resolve the chain (links go to dominated blocks, so it ends).
            y = link[x]
            while link[y] >= 0:
                y = link[y]
            last[x] = y
    implied: list[list[int] | None] = [None] * n
    for y in range(n):
        if (last[y] == y and not calls[y] and graph[y]
                and all(w != exit_node and w != y and dominates(y, w) for w in graph[y])):
            implied[y] = list(graph[y])
    reach_exit = [y for y in range(n) if exit_node in graph[y]]
    returning = None
    if len(reach_exit) == 1:
        y = reach_exit[0]
        if graph[y] == [exit_node] and last[y] == y and not calls[y]:
            returning = y
    return CoverageClasses(last, [d if d != k else -1 for k, d in enumerate(idom[:n])],
                           implied, returning)


def call_returns(module: Module) -> dict[int, list[tuple[int, int]]]:
    """Functions reached only by direct calls of this module -> where their calls
    return: (caller, index of the instruction after the ``call``), in body order.
    Functions never called are left out."""
    named = module.funcs_named_by_data()
    named.update(e.index for e in module.exports if e.kind == "func")
    if module.start is not None:
        named.add(module.start)
    out: dict[int, list[tuple[int, int]]] = {}
    for f in module.functions:
        for i, ins in enumerate(f.instrs):
            name = ins.op.name
            if name == "call":
                out.setdefault(ins.imm, []).append((f.index, i + 1))
            elif name == "ref.func":
                named.add(ins.imm)
    imported = module.num_imported_funcs
    return {g: sites for g, sites in out.items() if g not in named and g >= imported}
