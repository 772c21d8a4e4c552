"""Merged bounds checks: which straight-line runs and counted loops of a function share
one check.

Inside a run of instructions without control flow or calls, accesses whose address
is a *base* plus a constant can be checked together before the run. A base is a
local's value at the start of the run, or a (32-bit, wrapping) sum of a few of them
times constants:

* ``local.get p; i32.load offset=8`` and ``local.get p; i32.const -4; i32.add;
  i32.load``: base p;
* ``local.get w; local.get i; i32.add; local.tee q; i32.load; local.get q;
  i32.load offset=36``: base w + i;
* ``stack[sp - 1]``, ``local.get s; local.get sp; i32.const 2; i32.shl; i32.add;
  i32.const -4; i32.add; i32.load``: base s + 4*sp.

If ``base + lo >= 0`` and ``base + hi <= size``, for the smallest added constant
``lo`` and the largest end ``hi`` (constant + offset + bytes), none of the accesses
wraps in 32 bits or leaves the memory, for the whole run: memories never shrink.
The lowering then emits the run twice: a fast copy, taken when the merged checks
pass, whose grouped accesses have no check and address ``membase + base +
constant`` (which LLVM's alias analysis and addressing modes see through); and the
exact copy, with a check per access, taken otherwise. So a trap, and the stores
before it, stay exactly where Wasm puts them.

A counted loop (see `Loop`: a body that is one run, closed by ``br_if 0`` on its
counter plus a constant step against a bound) goes further: a group whose base only
sums locals the loop leaves alone and locals it advances by constants moves by one
stride per iteration, so checking its first and its last iteration, before the loop,
covers every iteration. Sha-256's message schedule and rounds, matmul's inner
products and nbody's pair loops are of this shape. The loop is then emitted twice,
without those checks and exactly, in the same way.

This module only finds the runs and loops; ``lower._FuncLowering.lower_run`` and
``lower_loop`` emit them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...ir.module import Function, Instr

MAX_RUN = 400
"""Longest run emitted twice (instructions): bounds the code a run can duplicate."""
MAX_TERMS = 3
"""Most locals summed into one base."""

Terms = tuple[tuple[int, int], ...]
Form = tuple[Terms, int]
"""(the terms of a base, a constant added to it): see _groups. No terms: a constant."""

PLAIN_MEMORY = frozenset([
    "i32.load", "i64.load", "f32.load", "f64.load",
    "i32.load8_s", "i32.load8_u", "i32.load16_s", "i32.load16_u",
    "i64.load8_s", "i64.load8_u", "i64.load16_s", "i64.load16_u",
    "i64.load32_s", "i64.load32_u",
    "i32.store", "i64.store", "f32.store", "f64.store",
    "i32.store8", "i32.store16", "i64.store8", "i64.store16", "i64.store32",
])
_STACK_ONLY = frozenset(["local.get", "local.set", "local.tee", "global.get", "global.set",
                         "drop", "select", "nop"])


@dataclass
class Group:
    """Accesses to one memory through one base."""

    mem: int
    base: Terms
    """(local, factor) pairs: the base is the sum of each local's value at the start
    of the run times its factor, wrapped to 32 bits."""
    lo: int
    """Smallest constant added to the base (before the access's own offset)."""
    hi: int
    """Largest ``constant + offset + bytes``: the end of the furthest access."""
    at: dict[int, int] = field(default_factory=dict)
    """pc of each access → its ``constant + offset``."""


@dataclass
class Run:
    start: int
    """Index of the run's first instruction in the function's body."""
    end: int
    """Index one past its last instruction."""
    groups: list[Group]


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _in_run(ins: Instr) -> bool:
    op = ins.op
    if op.name in _STACK_ONLY:
        return True
    if op.special or op.prefix == 0xFD:
        return False
    return not op.name.startswith(("call", "return"))


def find_runs(f: Function, i32_locals: set[int], eligible: dict[int, int],
              min_accesses: int = 2) -> dict[int, Run]:
    """Runs of ``f`` worth emitting twice, keyed by their first instruction's index.

    ``i32_locals``: the locals that can hold a 32-bit address. ``eligible``: memory
    index → the largest span (``hi - lo``) one merged check may cover (the memory's
    declared minimum, so that ``size - span`` cannot wrap); memories not in it keep
    a check per access. A group is worth its copy of the run when its accesses reach
    at least ``min_accesses`` different addresses."""
    runs: dict[int, Run] = {}
    instrs = f.instrs
    i, n = 0, len(instrs)
    while i < n:
        if not _in_run(instrs[i]):
            i += 1
            continue
        start = i
        while i < n and i - start < MAX_RUN and _in_run(instrs[i]):
            i += 1
        groups = _groups(instrs[start:i], i32_locals, eligible, min_accesses)
        if groups:
            runs[start] = Run(start, i, groups)
    return runs


MAX_STRIDE = 1 << 24
"""Largest step of a loop's counter, and largest distance a base checked once per loop
moves per iteration (keeps the span of the addresses in 64 bits)."""
LOOP_EXITS = {"i32.ne": "ne", "i32.lt_s": "lt_s", "i32.lt_u": "lt_u"}


@dataclass
class Loop:
    """A counted loop whose bounds checks are made once, before it is entered.

    ``loop`` (no parameters or results), a run, ``br_if 0`` on ``iv + step <op> bound``
    (op ``!=``, ``<s`` or ``<u``, or the plain ``iv + step``, which is ``!= 0``;
    ``bound`` a constant or a local the loop does not write), ``end``. The run sets
    ``iv`` to ``iv + step``, so the value of ``iv + step`` decides the trip count. Locals
    the run sets to their own value plus a constant are *linear*; ``iv`` is one. A group
    whose base sums locals the loop does not write and linear ones moves by a constant
    stride each iteration, so its addresses in the first and the last iteration bound
    all the others (lower.lower_loop)."""

    start: int
    """Index of the ``loop`` instruction; the ``end`` is at ``run.end + 1``."""
    run: Run
    """The body up to the ``br_if``, with the groups left to a check per iteration."""
    iv: int
    step: int
    exit: str
    """"ne", "lt_s" or "lt_u": how the next counter is compared with the bound."""
    bound: Form
    """``((), n)`` or ``(((local, 1),), 0)``."""
    groups: list[Group]
    """Checked once per loop entry."""
    strides: list[int]
    """How far each of ``groups``' bases moves per iteration (signed)."""

    @property
    def end(self) -> int:
        """Index one past the loop's ``end``."""
        return self.run.end + 2


def find_loops(f: Function, i32_locals: set[int], eligible: dict[int, int]
               ) -> dict[int, Loop]:
    """Counted loops of ``f`` (see Loop) with at least one group checked once, keyed by
    the index of their ``loop`` instruction."""
    loops: dict[int, Loop] = {}
    instrs = f.instrs
    n = len(instrs)
    for start, ins in enumerate(instrs):
        bt = ins.imm
        if ins.op.name != "loop" or bt.result is not None or bt.type_index is not None:
            continue
        end = start + 1
        while end < n and end - start <= MAX_RUN and _in_run(instrs[end]):
            end += 1
        if (end + 1 >= n or end == start + 1 or instrs[end].op.name != "br_if"
                or instrs[end].imm != 0 or instrs[end + 1].op.name != "end"):
            continue
        found, forms, stack = _simulate(instrs[start + 1:end], i32_locals, eligible)
        cond = stack[-1] if stack else None
        if isinstance(cond, _Compare):  # maybe with probes' flag stores after it
            exit, x, y = cond.exit, cond.x, cond.y
        elif cond is not None:  # br_if on the counter itself
            exit, x, y = "ne", cond, ((), 0)
        else:
            continue
        loop = _counted(start, end, x, y, exit, forms, found)
        if loop is not None:
            loops[start] = loop
    return loops


def _counted(start: int, end: int, x: Form | None, y: Form | None, exit: str,
             forms: dict[int, Form | None], found: dict[tuple[int, Terms], Group]
             ) -> Loop | None:
    """The loop if ``x <exit> y`` compares ``iv + step`` with a bound (either way round
    for ``!=``) and some group's base moves only with linear locals."""
    linear = {k: v[1] for k, v in forms.items()
              if v is not None and v[0] == ((k, 1),) and abs(v[1]) <= MAX_STRIDE}
    if not _advances(x, linear):
        if exit != "ne":
            return None
        x, y = y, x
        if not _advances(x, linear):
            return None
    assert x is not None
    ((iv, _one),), step = x
    if exit != "ne" and step < 0:
        return None
    if y is None or (y[0] and (y[1] != 0 or len(y[0]) != 1 or y[0][0][1] != 1
                               or y[0][0][0] in forms)):
        return None
    covered, strides, rest = [], [], []
    for g in found.values():
        stride = 0
        for k, factor in g.base:
            if k in linear:
                stride += factor * linear[k]
            elif k in forms:
                stride = None
                break
        if stride is not None:
            stride = _signed32(stride)
        if stride is None or abs(stride) > MAX_STRIDE:
            rest.append(g)
        else:
            covered.append(g)
            strides.append(stride)
    if not covered:
        return None
    run = Run(start + 1, end, [g for g in rest if len(set(g.at.values())) >= 2])
    return Loop(start, run, iv, step, exit, y, covered, strides)


def _advances(x: Form | None, linear: dict[int, int]) -> bool:
    """Whether ``x`` is ``iv + step`` for a linear local iv that advances by step."""
    if x is None or len(x[0]) != 1:
        return False
    (iv, factor), = x[0]
    return factor == 1 and x[1] != 0 and linear.get(iv) == x[1]


def _groups(run: list[Instr], i32_locals: set[int], eligible: dict[int, int],
            min_accesses: int) -> list[Group]:
    found, _forms, _stack = _simulate(run, i32_locals, eligible)
    # Accesses at one address already share one check (LLVM merges equal compares).
    return [g for g in found.values() if len(set(g.at.values())) >= min_accesses]


@dataclass(frozen=True)
class _Compare:
    """A loop exit's comparison on the symbolic stack (see LOOP_EXITS): ``x <exit> y``.
    Operations on it see an unknown value (None)."""

    exit: str
    x: Form | None
    y: Form | None


def _simulate(run: list[Instr], i32_locals: set[int], eligible: dict[int, int]
              ) -> tuple[dict[tuple[int, Terms], Group], dict[int, Form | None],
                         list[Form | _Compare | None]]:
    """Simulate the operand stack symbolically: an entry is ``(base, c)`` (a base, see
    the module docstring, plus c), ``((), c)`` for an i32 constant, or None. A local
    written in the run holds the form of what was written: after ``local.tee q`` of
    ``p + 80``, ``local.get q`` reads ``p + 80``, p's value at the start of the run.
    Returns the groups by (memory, base), the written locals' forms and the stack."""
    stack: list[Form | _Compare | None] = []
    forms: dict[int, Form | None] = {}
    found: dict[tuple[int, Terms], Group] = {}

    def pop() -> Form | None:
        v = stack.pop() if stack else None
        return None if isinstance(v, _Compare) else v

    for ins in run:
        name = ins.op.name
        if name == "local.get":
            if ins.imm in forms:
                stack.append(forms[ins.imm])
            else:
                stack.append((((ins.imm, 1),), 0) if ins.imm in i32_locals else None)
        elif name == "local.set":
            forms[ins.imm] = pop()
        elif name == "local.tee":
            forms[ins.imm] = pop()
            stack.append(forms[ins.imm])
        elif name == "i32.const":
            stack.append(((), _signed32(ins.imm)))
        elif name == "i32.add":
            y, x = pop(), pop()
            stack.append(_sum(x, y))
        elif name == "i32.sub":
            y, x = pop(), pop()
            stack.append(_sum(x, _scaled(y, ((), -1))))
        elif name == "i32.mul":
            y, x = pop(), pop()
            stack.append(_scaled(x, y) or _scaled(y, x))
        elif name == "i32.shl":
            y, x = pop(), pop()
            stack.append(_scaled(x, ((), 1 << (y[1] & 31))) if y and not y[0] else None)
        elif name in PLAIN_MEMORY:
            if ins.op.is_store:
                pop()
            addr = pop()
            _align, offset, mem = ins.imm
            if addr is not None and addr[0] and mem in eligible:
                base, c = addr
                key = (mem, base)
                end = c + offset + ins.op.mem_bytes
                g = found.get(key)
                lo, hi = (c, end) if g is None else (min(g.lo, c), max(g.hi, end))
                if hi - lo <= eligible[mem]:
                    if g is None:
                        g = found[key] = Group(mem, base, lo, hi)
                    g.lo, g.hi = lo, hi
                    g.at[ins.pc] = c + offset
            if ins.op.is_load:
                stack.append(None)
        elif name in LOOP_EXITS:
            y, x = pop(), pop()
            stack.append(_Compare(LOOP_EXITS[name], x, y))
        elif name == "global.get":  # special: the opcode table has no pops/pushes
            stack.append(None)
        elif name in ("drop", "global.set"):
            pop()
        elif name == "select":
            pop(), pop(), pop()
            stack.append(None)
        else:
            for _ in ins.op.pops:
                pop()
            stack.extend(None for _ in ins.op.pushes)
    return found, forms, stack


def _form(terms: dict[int, int], c: int) -> Form | None:
    base = tuple(sorted((k, f) for k, f in terms.items() if f))
    if len(base) > MAX_TERMS or not -(1 << 31) <= c < (1 << 31):
        return None
    return base, c


def _sum(x: Form | None, y: Form | None) -> Form | None:
    if x is None or y is None:
        return None
    terms = dict(x[0])
    for k, f in y[0]:
        terms[k] = (terms.get(k, 0) + f) & 0xFFFFFFFF
    return _form(terms, x[1] + y[1])


def _scaled(x: Form | None, y: Form | None) -> Form | None:
    """x times the constant y (mod 2**32, which distributes over the wrapping sum)."""
    if x is None or y is None or y[0]:
        return None
    k = y[1]
    return _form({n: (f * k) & 0xFFFFFFFF for n, f in x[0]}, x[1] * k)
