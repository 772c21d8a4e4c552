"""Spanning-tree counter placement: fewer counters, the same exact block counts.

Knuth's observation (used by Ball and Larus for edge profiles): flow is
conserved, so counting the edges off a spanning tree of the control-flow graph
determines every other edge. Here the counted quantities are block entries,
and a run can stop anywhere, so each block ``b`` is split in two nodes joined
by its *interior* edge ``top_b -> bot_b`` (entries of ``b``, countable at its
start, never a critical edge). The graph of one function has

* the interior edge of every block (the only ones a counter can measure);
* ``bot_u -> top_v`` for the CFG's edges (parallel ones merged), ``bot_u -> X``
  for returns, where ``X`` is the function's exit;
* ``X -> top_entry``: the activations that entered the function;
* a *loss* edge ``bot_b -> X`` for every block whose activations may stop
  inside without the host knowing where: a block ending in a call (any frame
  below the innermost may sit at a call, and wasmtime reports only 20 frames)
  or holding a host call (a Python probe may stop the run or read counts while
  its frame is live). Its flow is unknown, so it must be a tree edge: it is
  derived, which is what makes this exact without the whole stack;
* known losses ``bot_b -> X``, constants: how many recorded stops (innermost
  frames only) fell inside any other block. A budget check at a loop header is
  reported at the ``loop``, which ends the block before the header: the stop
  is put there, which leaves every block count as it is (only the edge between
  the two blocks changes).

The unknown edges (CFG, losses, entry) go into the tree first; if they close a
cycle the function keeps one counter per block. Interior edges then join the
tree heaviest first (static weight: 8 per enclosing loop, 1/2 per enclosing
``if``), so counters land on the coldest blocks. A block's count is its
interior edge, solved by peeling leaves off the tree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ir.blocks import CountingBlock
from ...ir.dominance import block_successors
from ...ir.module import Instr

__all__ = ["CountTree", "plan_count_tree"]

_CALLS = frozenset(["call", "call_indirect"])


@dataclass(frozen=True)
class CountTree:
    """How one function's block counts derive from its counters and stops."""

    measured: tuple[int, ...]
    """Positions (in the function's counting blocks) of the blocks with a counter."""
    nedges: int
    """Edges of the graph; ids below ``len(blocks)`` are interior edges (block ids)."""
    bot_loss: dict[int, int]
    """Block position -> edge id of its known loss (blocks without a derived loss)."""
    steps: tuple[tuple[int, tuple[tuple[int, int], ...]], ...]
    """(edge, ((other edge, sign), ...)): edge = sum(sign * other), in order."""

    def solve(self, counters: dict[int, int], stops: dict[int, int]) -> list[int]:
        """Entries of every block from the counters (block position -> value) and
        the recorded stops (block position -> how many)."""
        val = [0] * self.nedges
        for b, n in counters.items():
            val[b] = n
        for b, n in stops.items():
            e = self.bot_loss.get(b)
            if e is not None:
                val[e] = n
        for e, terms in self.steps:
            val[e] = sum(s * val[o] for o, s in terms)
        return val


class _Forest:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        p = self.parent
        while p[x] != x:
            p[x] = p[p[x]]
            x = p[x]
        return x

    def join(self, a: int, b: int) -> bool:
        a, b = self.find(a), self.find(b)
        if a == b:
            return False
        self.parent[a] = b
        return True


def _weights(instrs: list[Instr], blocks: list[CountingBlock]) -> list[int]:
    """Static frequency of each block, as an exponent of 2 (loops x8, if arms /2)."""
    depth = []
    level = 0
    opened: list[int] = []
    for ins in instrs:
        depth.append(level)
        name = ins.op.name
        if name in ("block", "loop", "if"):
            step = 3 if name == "loop" else -1 if name == "if" else 0
            opened.append(step)
            level += step
        elif name == "end" and opened:
            level -= opened.pop()
    return [depth[b.first] for b in blocks]


def plan_count_tree(instrs: list[Instr], blocks: list[CountingBlock], wanted: set[int],
                    host_calls: set[int]) -> CountTree | None:
    """A counter placement for one function, or None when counting the ``wanted``
    blocks (positions) directly is no more expensive or the tree cannot be built.
    ``host_calls``: instruction indices with a woven host call before them."""
    nb = len(blocks)
    # Nodes: top_b = b, bot_b = nb + b, X = 2 nb.
    x = 2 * nb
    edges: list[tuple[int, int]] = [(b, nb + b) for b in range(nb)]  # interior first
    forest = _Forest(2 * nb + 1)
    tree: list[int] = []

    def add(src: int, dst: int, forced: bool) -> int | None:
        e = len(edges)
        edges.append((src, dst))
        if forced:
            if not forest.join(src, dst):
                return None
            tree.append(e)
        return e

    lossy: set[int] = set()
    for pos, b in enumerate(blocks):
        if any(i in host_calls for i in range(b.first, b.last + 1)):
            lossy.add(pos)
        if instrs[b.last].op.name in _CALLS:
            lossy.add(pos)
    ok = add(x, 0, True) is not None
    bot_loss: dict[int, int] = {}
    for pos in range(nb):
        if pos in lossy:
            ok = ok and add(nb + pos, x, True) is not None
        else:
            e = add(nb + pos, x, False)
            assert e is not None
            bot_loss[pos] = e
    for u, succs in enumerate(block_successors(instrs, blocks)):  # parallel edges merged
        for v in succs:
            ok = ok and add(nb + u, x if v == nb else v, True) is not None
    if not ok:
        return None
    weight = _weights(instrs, blocks)
    measured = []
    for pos in sorted(range(nb), key=lambda p: (-weight[p], p)):
        if forest.join(pos, nb + pos):
            tree.append(pos)
        else:
            measured.append(pos)
    if sum(2.0 ** weight[p] for p in measured) >= sum(2.0 ** weight[p] for p in wanted):
        return None
    return CountTree(tuple(sorted(measured)), len(edges), bot_loss,
                     _elimination(edges, tree, 2 * nb + 1))


def _elimination(edges: list[tuple[int, int]], tree: list[int], nnodes: int
                 ) -> tuple[tuple[int, tuple[tuple[int, int], ...]], ...]:
    """Solve order: peel leaves; at a leaf, its one unsolved tree edge balances the
    node (flow in = flow out), from all of the node's other edges."""
    incident: list[list[tuple[int, int]]] = [[] for _ in range(nnodes)]
    for e, (src, dst) in enumerate(edges):
        incident[src].append((e, -1))
        incident[dst].append((e, 1))
    in_tree = set(tree)
    degree = [0] * nnodes
    for e in tree:
        src, dst = edges[e]
        degree[src] += 1
        degree[dst] += 1
    solved: set[int] = set()
    leaves = [n for n in range(nnodes) if degree[n] == 1]
    steps = []
    while leaves:
        n = leaves.pop()
        if degree[n] != 1:
            continue
        e, sign = next((e, s) for e, s in incident[n] if e in in_tree and e not in solved)
        # sign * val[e] + sum(s * val[o]) = 0
        steps.append((e, tuple((o, -s * sign) for o, s in incident[n] if o != e)))
        solved.add(e)
        degree[n] -= 1
        src, dst = edges[e]
        other = dst if src == n else src
        degree[other] -= 1
        if degree[other] == 1:
            leaves.append(other)
    return tuple(steps)
