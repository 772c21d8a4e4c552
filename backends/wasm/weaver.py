"""The weaver: Module + ProbeSet -> a valid, instrumented Wasm module.

Append only, never shift an index space:

* probe state lives in one appended memory (``__probes_state``): counters,
  flags, histograms and the trace ring buffer, at offsets in `Layout`;
* Python callbacks are reached with ``call_indirect`` through one appended
  funcref table (``__probes_table``) that the host fills at instantiation —
  one slot per callback signature, so no import is added and no function
  index moves;
* types, locals (per instrumented function) and exports are appended too.

Bodies without probes are copied verbatim; instrumented bodies are
re-encoded, keeping a map from new to original offsets so traps are reported
at original `Location`s.

Counting: a `CountProbe` is compiled as 64-bit counters on *counting blocks*
(ir/blocks.py) — one add per block, not per instruction, and with
``count_tree`` only on the blocks off a spanning tree of the function's flow
graph (count_tree.py); the host derives exact counts per location, correcting
the block of a trap.
`CoverageProbe` is one byte store per block, just before its last instruction;
the block a trap cut short is completed from the trap location. Loops keep
flags off their iterations where that stays exact: a header that cannot stop
flags itself once per entry (`_completes_once_entered`), and a body without
joins flags only a copy of its first iteration (`_peelable_loops`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ...ir import Location, Module, ProbeError, dominance
from ...ir.blocks import CountingBlock, counting_blocks
from ...ir.encoder import encode, encode_instrs_with_offsets, encode_locals
from ...ir.module import Export, Function, Global, Instr
from ...ir.opcodes import BY_NAME, OpInfo
from ...ir.types import (
    EMPTY_BLOCK,
    F32,
    F64,
    FUNCREF,
    I32,
    I64,
    BlockType,
    FuncType,
    GlobalType,
    Limits,
    MemoryType,
    TableType,
    ValType,
)
from ...ir.validator import operand_stacks
from ...probe import (
    CountProbe,
    CoverageProbe,
    FrameReads,
    OperandProbe,
    Probe,
    ShadowStackProbe,
    TraceProbe,
)
from ...probeset import ENTRY, EXIT, ProbeSet
from ..base import FUEL_BY_OPERAND, FUEL_FLUSH, FUEL_FREE, check_module
from .count_tree import CountTree, plan_count_tree

__all__ = ["weave", "Woven", "Layout", "Site", "STATE_EXPORT", "TABLE_EXPORT", "MEMORY_EXPORT",
           "START_EXPORT"]

STATE_EXPORT = "__probes_state"
"""Export name of the appended probe-state memory."""
TABLE_EXPORT = "__probes_table"
"""Export name of the appended callback table."""
MEMORY_EXPORT_PREFIX = "__probes_memory"
"""Export names given to the program's memories that had none: the prefix and the index."""
MEMORY_EXPORT = f"{MEMORY_EXPORT_PREFIX}0"
"""Export name given to the program's memory 0 when it had none."""
START_EXPORT = "__probes_start"
"""Export name of the start function, which the host calls once callbacks are in place."""
FUEL_EXPORT = "__probes_fuel"
"""Export name of the instruction-budget global (`Layout.fuel_export`)."""

_HEADER = 64          # bytes reserved at the start of the state memory
_TRACE_POS = 0        # i32: byte offset of the next trace entry
_TRACE_ENTRY = 16     # bytes per trace event: i32 site, pad, i64 value
_PAGE = 65536
_PAGES_TRACKED = 65537  # memory-page histogram slots (the last one: beyond 4 GiB)

_op = BY_NAME.__getitem__

_CALLS = frozenset(["call", "call_indirect"])

_REACH_BUDGET = 200_000
"""Classes visited while checking that flagless returning classes do not rest on
themselves; past it the remaining ones keep their flag (correct, only slower)."""


def _wide_flag(instrs: list[Instr], block: CountingBlock) -> bool:
    """Whether a coverage flag stored in ``block`` should be 4 bytes wide: when
    the block starts right after a call. Cranelift puts the constant of a byte
    store in a register and shares it within a basic block, which calls do not
    end, so a byte store after a call would keep that register alive across the
    call (a callee-saved register, or a spill: recursive's `walk`). A 4-byte
    store takes the constant as an immediate; elsewhere the byte store is
    shorter code."""
    return block.first > 0 and instrs[block.first - 1].op.name in _CALLS


def _completes_once_entered(instrs: list[Instr], block: CountingBlock,
                            probes_at: dict[int, list[Probe]]) -> bool:
    """Whether a coverage class ending in ``block`` may flag itself before the
    ``loop`` that ``block`` begins: nothing in the block can stop the run before
    its last instruction (no trap, no probe that calls the host), so entering
    the loop, which enters the block, completes the class. A branch to the loop
    comes from inside it, so the flag is exact and stored once per loop entry
    instead of once per iteration. Only without interrupts, fuel or dynamic
    probes: those stop a run at a loop header, which could be its first entry."""
    if block.traps_inside or block.first == 0 or instrs[block.first - 1].op.name != "loop":
        return False
    return not any(not isinstance(p, (CountProbe, CoverageProbe, OperandProbe))
                   for i in range(block.first, block.last + 1)
                   for p in probes_at.get(instrs[i].pc, ()))


_PEEL_MAX = 2000
"""Longest loop body (instructions) whose first iteration is copied (`_peelable_loops`)."""


def _peelable_loops(instrs: list[Instr], flags_before: dict[int, list[Instr]],
                    woven: Iterable[dict[int, list[Instr]]]) -> dict[int, int]:
    """Loops whose first iteration alone should carry their coverage flags: by
    ``loop`` index, the index of the ``br_if 0`` that ends the body.

    The body is straight-line but for calls and ``br_if`` out of the loop (no
    nested block, no other branch), the loop's type is ``[] -> []`` and its
    ``end`` follows the final ``br_if``. An iteration runs the same instructions
    as the first up to where it stops or leaves, and only a completed iteration
    loops; so a later iteration stores no flag the first did not, and at any
    point of it, including a trap or a stop in a callee, the flags are what they
    would be with a store in every iteration. The caller emits the body twice:
    once with its flags, then, if it loops, as a loop without them (`_peeled`).
    Only where the body has a flag and no other woven code (``woven``: code by
    instruction index)."""
    taken: set[int] = set()
    for code in woven:
        taken.update(code)
    out: dict[int, int] = {}
    n = len(instrs)
    for loop, ins in enumerate(instrs):
        if ins.op.name != "loop" or ins.imm != EMPTY_BLOCK:
            continue
        br = loop + 1
        while br < n and br - loop <= _PEEL_MAX and (
                not instrs[br].op.ends_block
                or instrs[br].op.name == "br_if" and instrs[br].imm > 0):
            br += 1
        if (br + 1 >= n or br - loop > _PEEL_MAX or instrs[br].op.name != "br_if"
                or instrs[br].imm != 0 or instrs[br + 1].op.name != "end"):
            continue
        if not any(i in flags_before for i in range(loop + 1, br + 1)):
            continue
        if any(i in taken for i in range(loop, br + 2)):
            continue
        out[loop] = br
    return out


def _peeled(instrs: list[Instr], loop: int, br: int,
            flags_before: dict[int, list[Instr]]) -> list[Instr]:
    """The loop ``instrs[loop..br+1]`` (`_peelable_loops`) as its first iteration,
    with the flags, then ``if`` it loops, the loop without them. Exits keep their
    targets: one label fewer around the first copy, one more (the ``if``) around
    the loop."""
    def retarget(ins: Instr, by: int) -> Instr:
        if ins.op.name == "br_if" and ins.imm > 0:
            return Instr(ins.op, ins.imm + by, ins.pc)
        return ins

    out = list(flags_before.get(loop, []))
    for k in range(loop + 1, br):
        out += flags_before.get(k, [])
        out.append(retarget(instrs[k], -1))
    out += flags_before.get(br, [])
    out += [_ins("if", EMPTY_BLOCK), instrs[loop],
            *(retarget(instrs[k], 1) for k in range(loop + 1, br + 1)),
            _ins("end"), instrs[br + 1]]
    return out + flags_before.get(br + 1, [])


@dataclass
class _ControlFrames:
    """The control frames around each instruction of a body (`_control_frames`)."""

    base: list[int]
    """Per instruction: the operand-stack height where its frame begins; values below
    belong to enclosing frames, which its block cannot pop."""
    dead: list[bool]
    """Per instruction: whether it is unreachable (it can never execute)."""
    openers: list[tuple[int, ...]]
    """Per instruction: the block/loop/if instructions around it, outermost first."""
    inner_base: dict[int, int]
    """Per block/loop/if instruction: the base of the frame it opens."""

    def opener_below(self, i: int, height: int) -> int:
        """The block/loop/if around instruction ``i`` at which the value at ``height``
        (below i's frame) is still within reach: the one whose frame begins above it."""
        for o in self.openers[i]:
            if self.base[o] <= height < self.inner_base[o]:
                return o
        raise AssertionError("a value below the function frame")  # pragma: no cover


def _control_frames(m: Module, instrs: list[Instr], stacks: list[tuple]) -> _ControlFrames:
    base: list[int] = []
    dead: list[bool] = []
    openers: list[tuple[int, ...]] = []
    inner: dict[int, int] = {}
    # (base, dead now, dead at entry, openers inside): the function frame first.
    ctl: list[list[Any]] = [[0, False, False, ()]]
    for i, ins in enumerate(instrs):
        name = ins.op.name
        top = ctl[-1]
        if name == "else":
            top[1] = top[2]  # the else arm is as reachable as the if
        base.append(top[0])
        dead.append(top[1])
        openers.append(top[3])
        if name in ("block", "loop", "if"):
            params = len(ins.imm.resolve(m.types).params)
            inner[i] = len(stacks[i]) - params - (name == "if")
            ctl.append([inner[i], top[1], top[1], (*top[3], i)])
        elif name == "end" and len(ctl) > 1:
            ctl.pop()
        elif name in ("br", "br_table", "return", "unreachable"):
            top[1] = True
    return _ControlFrames(base, dead, openers, inner)


def _deep_operand_locals(frames: _ControlFrames, i: int, stack: tuple, k: int,
                         deep_locals: dict[tuple[int, int], int],
                         new_local: Any) -> list[int]:
    """Locals for the ones of the top ``k`` operands at instruction ``i`` that lie below
    its block's frame, bottom first: each is saved where the block around ``i`` that
    can still reach it is entered (`_Weaver._save_below`), one local per such value."""
    deep: list[int] = []
    if frames.dead[i]:
        return deep  # reads no operands; its typed stack may be shorter than the frame
    for h in range(len(stack) - k, frames.base[i]):
        t = stack[h] if h >= 0 else None
        if t is None:
            break  # unknown: `host_call_parts` drops the site
        key = (frames.opener_below(i, h), h)
        if key not in deep_locals:
            deep_locals[key] = new_local(t)
        deep.append(deep_locals[key])
    return deep


def _ins(name: str, imm: object = None) -> Instr:
    return Instr(_op(name), imm)


@dataclass(frozen=True, slots=True)
class Site:
    """A host-dispatched site: where the callback table is called from."""

    loc: Location
    """The location (pc ENTRY/EXIT for function entry/exit sites)."""
    slot: int
    """Callback-table slot, i.e. the signature used."""
    reads: FrameReads
    """Frame parts passed (operands top-last, then locals in `reads.locals` order)."""
    is_global: bool = False
    """Whether global probes fire here."""


@dataclass
class Layout:
    """Where the woven module keeps each probe's state. Read by the runner."""

    state_size: int = _HEADER
    """Bytes of the state memory in use."""
    block_counters: dict[tuple[int, int], int] = field(default_factory=dict)
    """(func, first instruction index of the counting block) -> counter offset."""
    count_trees: dict[int, CountTree] = field(default_factory=dict)
    """func -> how its block counts derive from the counters of `block_counters`
    (spanning-tree placement); functions not here count every wanted block."""
    site_counters: dict[Location, int] = field(default_factory=dict)
    """Entry/exit sites -> counter offset."""
    cov_flags: dict[tuple[int, int], int] = field(default_factory=dict)
    """(func, block first index) -> flag set (first byte nonzero; flags are 1 or
    4 bytes) when the block's coverage class reaches its last instruction
    (blocks of one class share the flag), or already when its loop is entered
    if nothing can stop the run on the way (`_completes_once_entered`)."""
    cov_implied: dict[tuple[int, int], tuple[tuple[int, int], ...]] = field(
        default_factory=dict)
    """(func, block first index) -> (func, first index) of the blocks after its
    class, for classes with no flag: the class ran iff control reached one of
    them (blocks it branches to, or where calls of a function return to)."""
    cov_idom: dict[int, list[int]] = field(default_factory=dict)
    """func -> immediate dominator of each counting block (by position), for the
    functions whose coverage classes merge blocks or go without a flag: the host
    completes those classes from the innermost frame when a run stops."""
    flag_globals: dict[int, str] = field(default_factory=dict)
    """Coverage flag offset -> export name of the mutable i32 global that holds it
    instead (`weave(flag_globals=True)`); the host reads the flag from there."""
    site_flags: dict[Location, int] = field(default_factory=dict)
    """Entry/exit sites -> coverage flag offset."""
    histograms: dict[int, tuple[int, int]] = field(default_factory=dict)
    """id(OperandProbe) -> (offset, slots)."""
    trace_sites: list[Location] = field(default_factory=list)
    """Trace site id -> location."""
    trace_buf: int = 0
    """Offset of the trace ring buffer (0: none)."""
    trace_capacity: int = 0
    """Events the ring buffer holds before the host must flush it."""
    sites: list[Site] = field(default_factory=list)
    """Host-dispatch site id -> site."""
    slots: list[FuncType] = field(default_factory=list)
    """Callback-table slot -> signature (slot 0: the trace flush)."""
    blocks: dict[int, list[CountingBlock]] = field(default_factory=dict)
    """Counting blocks of every instrumented function."""
    pcs: dict[int, list[int]] = field(default_factory=dict)
    """Original pc of each instruction index, per instrumented function."""
    offset_maps: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict)
    """func -> (woven pcs ascending, original pc at each), for instrumented bodies."""
    stacks: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    """id(ShadowStackProbe) -> (stack-pointer offset, buffer offset, capacity)."""
    armed: dict[Location, int] = field(default_factory=dict)
    """Armed sites (dynamic mode): location -> flag byte that enables its host call."""
    fuel_export: str | None = None
    """Export name of the i64 global holding the remaining instruction budget
    (woven with ``fuel``), which the host sets before the guest runs."""
    fuel_traps: dict[tuple[int, int], tuple[Location, bool]] = field(default_factory=dict)
    """(func, woven offset of a budget check's ``if`` or ``unreachable``) -> the
    original location it stands for and whether that instruction began."""
    moved_start: int | None = None
    """The original start function, now exported as START_EXPORT."""
    memory_exports: dict[int, str] = field(default_factory=dict)
    """Export name of each of the program's memories (the host reads their sizes
    at a trap)."""

    def alloc(self, size: int, align: int = 8) -> int:
        off = (self.state_size + align - 1) // align * align
        self.state_size = off + size
        return off


@dataclass
class Woven:
    """The woven module and what the host needs to know about it."""

    wasm: bytes
    """The instrumented binary."""
    layout: Layout
    """Probe-state layout and site tables."""
    module: Module
    """The original module."""


@dataclass
class _CoveragePlan:
    """Where one function's coverage flags go (decided for all functions before
    any is woven: a class may be shown by blocks of other functions)."""

    blocks: list[CountingBlock]
    want: set[int]
    """First indices of the blocks whose coverage is asked for."""
    last: list[int]
    """Per block position: the last block of its class."""
    implied: list[list[tuple[int, int]] | None]
    """Per class-last position: (func, block position) of the blocks whose
    beginning shows the class completed, for classes without a flag."""
    idom: list[int] | None
    """Immediate dominators, when classes merge blocks or go without a flag."""
    returning: int | None = None
    """`CoverageClasses.returning`."""
    pos_of: dict[int, int] = field(init=False)
    """Block position by first index."""

    def __post_init__(self) -> None:
        self.pos_of = {b.first: k for k, b in enumerate(self.blocks)}


class _Weaver:
    def __init__(self, module: Module, probes: ProbeSet, trace_capacity: int,
                 dynamic: bool, coverage_classes: bool, fuel: bool = False,
                 count_tree: bool = False, interruptible: bool = False,
                 peel_loops: bool = True, flag_globals: bool = True) -> None:
        self.m = module
        self.peel_loops = peel_loops
        self.flag_globals = flag_globals and not fuel
        self.new_globals: list[Global] = []
        self.count_tree = count_tree
        self.interruptible = interruptible
        self.ps = probes
        self.dynamic = dynamic
        self.coverage_classes = coverage_classes
        self.fuel = fuel
        self.fuel_global = len(module.all_globals())
        self._fuel_checks: dict[int, tuple[Location, bool]] = {}  # id(unreachable) -> site
        self.layout = Layout()
        self.trace_capacity = trace_capacity
        self.new_types: list[FuncType] = []
        self.slot_of: dict[FuncType, int] = {}
        nmem = len(module.all_memories())
        self.state_mem = nmem
        self.table = len(module.all_tables())
        # Slot 0 is always the trace flush so its index is fixed.
        self._slot(FuncType((), ()))

    # -- shared resources ----------------------------------------------------------------
    def _slot(self, sig: FuncType) -> int:
        slot = self.slot_of.get(sig)
        if slot is None:
            slot = self.slot_of[sig] = len(self.layout.slots)
            self.layout.slots.append(sig)
        return slot

    def _type_index(self, sig: FuncType) -> int:
        types = self.m.types
        for i, t in enumerate(types):
            if t == sig:
                return i
        for i, t in enumerate(self.new_types):
            if t == sig:
                return len(types) + i
        self.new_types.append(sig)
        return len(types) + len(self.new_types) - 1

    def _memarg(self, offset: int, align: int) -> tuple[int, int, int]:
        return (align, offset, self.state_mem)

    # -- code snippets -------------------------------------------------------------------
    def counter_add(self, offset: int) -> list[Instr]:
        ma = self._memarg(offset, 3)
        return [_ins("i32.const", 0), _ins("i32.const", 0), _ins("i64.load", ma),
                _ins("i64.const", 1), _ins("i64.add"), _ins("i64.store", ma)]

    def flag_store(self, offset: int, wide: bool = False) -> list[Instr]:
        """Set a flag. ``wide``: a 4-byte flag stored as an immediate (Cranelift
        stores a constant byte from a register; see `_wide_flag`)."""
        if wide:
            return [_ins("i32.const", 0), _ins("i32.const", 1),
                    _ins("i32.store", self._memarg(offset, 2))]
        return [_ins("i32.const", 0), _ins("i32.const", 1),
                _ins("i32.store8", self._memarg(offset, 0))]


    def flag_global(self, offset: int) -> list[Instr]:
        """Set a flag kept in a new mutable global (`Layout.flag_globals`; the
        offset is its place in the host's view of the state). A flag stored in
        the state memory after a call makes Cranelift keep the memory's base in a
        callee-saved register across the call, which every call of the function
        pays for in its prologue, also on paths without flags (recursive's
        leaf calls); a global is an immediate store relative to the context."""
        index = len(self.m.all_globals()) + len(self.new_globals)
        self.new_globals.append(Global(GlobalType(I32, True), (_ins("i32.const", 0), _ins("end"))))
        self.layout.flag_globals[offset] = f"__probes_flag{len(self.new_globals) - 1}"
        return [_ins("i32.const", 1), _ins("global.set", index)]

    def histogram_add(self, offset: int, slots: int, index_local: int,
                      scratch: int) -> list[Instr]:
        """counter[offset + min(local, slots-1) * 8] += 1, index in an i32 local."""
        last = slots - 1
        ma = self._memarg(offset, 3)
        return [
            _ins("local.get", index_local), _ins("i32.const", last),
            _ins("local.get", index_local), _ins("i32.const", last), _ins("i32.lt_u"),
            _ins("select"), _ins("i32.const", 3), _ins("i32.shl"), _ins("local.tee", scratch),
            _ins("local.get", scratch), _ins("i64.load", ma), _ins("i64.const", 1),
            _ins("i64.add"), _ins("i64.store", ma),
        ]

    # -- the module ------------------------------------------------------------------------
    def run(self) -> Woven:
        m = self.m
        by_func: dict[int, dict[int, list[Probe]]] = {}
        for loc, probes in self.ps.items():
            by_func.setdefault(loc.func, {}).setdefault(loc.pc, []).extend(probes)
        global_probes = self.ps.global_probes
        every = bool(global_probes) or self.dynamic or self.fuel
        funcs = m.functions if every else [m.function(f) for f in sorted(by_func)]
        self._plans = self.coverage_plans(funcs, by_func)
        new_bodies: dict[int, tuple[list[Instr], list[tuple[int, ValType]]]] = {}
        for f in funcs:
            new_bodies[f.index] = self.weave_function(f, by_func.get(f.index, {}),
                                                      bool(global_probes))
        return self.assemble(new_bodies)

    def assemble(self, bodies: dict[int, tuple[list[Instr], list[tuple[int, ValType]]]]
                 ) -> Woven:
        m = self.m
        layout = self.layout
        out = Module(
            types=list(m.types) + self.new_types, imports=m.imports,
            functions=list(m.functions), tables=list(m.tables), memories=list(m.memories),
            globals=m.globals, exports=list(m.exports), start=m.start, elems=m.elems,
            datas=m.datas, data_count=m.data_count, customs=[],
            raw_sections=m.raw_sections, code_offset=m.code_offset,
        )
        # Functions with new bodies are fresh objects so the original stays untouched;
        # they carry their encoded bytes, recorded with the new -> original pc map.
        for idx, (instrs, groups) in bodies.items():
            orig = m.function(idx)
            head = encode_locals(groups)
            code, offsets = encode_instrs_with_offsets(instrs, len(head))
            if self._fuel_checks:
                for off, ins in zip(offsets, instrs, strict=False):
                    site = self._fuel_checks.get(id(ins))
                    if site is not None:
                        layout.fuel_traps[(idx, off)] = site
            out.functions[idx - m.num_imported_funcs] = Function(idx, orig.type_index,
                                                                 head + code)
            pairs = [(off, ins.pc) for off, ins in zip(offsets, instrs, strict=False) if ins.pc >= 0]
            layout.offset_maps[idx] = ([a for a, _ in pairs], [b for _, b in pairs])
        if self.new_globals:
            first = len(m.all_globals())
            out.globals = [*m.globals, *self.new_globals]
            out.exports += [Export(f"__probes_flag{k}", "global", first + k)
                            for k in range(len(self.new_globals))]
        pages = max(1, -(-layout.state_size // _PAGE))
        out.memories.append(MemoryType(Limits(pages, pages)))
        out.exports.append(Export(STATE_EXPORT, "memory", self.state_mem))
        if self.fuel:
            out.globals = [*m.globals, Global(GlobalType(I64, True),
                                              (_ins("i64.const", 0), _ins("end")))]
            out.exports.append(Export(FUEL_EXPORT, "global", self.fuel_global))
            layout.fuel_export = FUEL_EXPORT
        nslots = len(layout.slots)
        out.tables.append(TableType(FUNCREF, Limits(nslots, nslots)))
        out.exports.append(Export(TABLE_EXPORT, "table", self.table))
        names = {e.name for e in m.exports}
        for e in m.exports:
            if e.kind == "memory":
                layout.memory_exports.setdefault(e.index, e.name)
        for k in range(self.state_mem):
            if k not in layout.memory_exports:
                name = f"{MEMORY_EXPORT_PREFIX}{k}"
                out.exports.append(Export(name, "memory", k))
                layout.memory_exports[k] = name
        if m.start is not None:
            layout.moved_start = m.start
            out.start = None
            if START_EXPORT not in names:
                out.exports.append(Export(START_EXPORT, "func", m.start))
        # Debug info describes the original code; keep only the name section.
        out.customs = [c for c in m.customs if c.name == "name"]
        return Woven(encode(out), layout, m)

    # -- coverage flags ------------------------------------------------------------------------
    def coverage_plans(self, funcs: list[Function], by_func: dict[int, dict[int, list[Probe]]]
                       ) -> dict[int, _CoveragePlan]:
        """Coverage classes of every function with coverage probes, and which
        classes go without a flag (ir/dominance.py)."""
        plans: dict[int, _CoveragePlan] = {}
        for f in funcs:
            probes_at = by_func.get(f.index, {})
            pcs = {pc for pc, ps in probes_at.items()
                   if pc not in (ENTRY, EXIT) and any(isinstance(p, CoverageProbe) for p in ps)}
            if not pcs:
                continue
            instrs = f.instrs
            blocks = counting_blocks(instrs)
            want: set[int] = set()
            for b in blocks:
                if any(instrs[i].pc in pcs for i in range(b.first, b.last + 1)):
                    want.add(b.first)
            plan = plans[f.index] = _CoveragePlan(blocks, want, list(range(len(blocks))),
                                                  [None] * len(blocks), None)
            if not self.coverage_classes:
                continue
            classes = dominance.coverage_classes(instrs, blocks)
            # Successors tell only if their own coverage is tracked.
            plan.implied = [
                [(f.index, w) for w in s] if s is not None
                and all(blocks[w].first in want for w in s) else None
                for s in classes.implied]
            plan.returning = classes.returning
            if classes.merged or any(plan.implied):
                plan.last = classes.last
                plan.idom = classes.idom
        if self.coverage_classes and not self.dynamic and any(
                p.returning is not None for p in plans.values()):
            self._returns_shown_by_callers(plans, by_func)
        return plans

    def _returns_shown_by_callers(self, plans: dict[int, _CoveragePlan],
                                  by_func: dict[int, dict[int, list[Probe]]]) -> None:
        """Drop the flag of a returning class when the places its calls return
        to show it (ir/dominance.py). Not with dynamic probes: an exit probe
        inserted later could stop the run between the return and its caller."""
        budget = _REACH_BUDGET

        def reaches(starts: list[tuple[int, int]], target: tuple[int, int]) -> bool:
            # Does showing any of these classes rest, through flagless classes, on target?
            nonlocal budget
            seen = set(starts)
            work = list(starts)
            while work:
                if budget <= 0:
                    return True
                budget -= 1
                func, y = work.pop()
                if (func, y) == target:
                    return True
                for g, w in plans[func].implied[y] or ():
                    node = (g, plans[g].last[w])
                    if node not in seen:
                        seen.add(node)
                        work.append(node)
            return False

        for callee, sites in sorted(dominance.call_returns(self.m).items()):
            plan = plans.get(callee)
            if plan is None or plan.returning is None or EXIT in by_func.get(callee, {}):
                continue
            y = plan.returning
            if plan.implied[y] is not None or not any(
                    plan.last[k] == y for k, b in enumerate(plan.blocks) if b.first in plan.want):
                continue
            shown_by: list[tuple[int, int]] = []
            for caller, index in sites:
                cp = plans.get(caller)
                pos = None if cp is None else cp.pos_of.get(index)
                if cp is None or pos is None or cp.blocks[pos].first not in cp.want:
                    break
                shown_by.append((caller, pos))
            else:
                if reaches([(g, plans[g].last[w]) for g, w in shown_by], (callee, y)):
                    continue
                plan.implied[y] = shown_by

    # -- one function ------------------------------------------------------------------------
    def weave_function(self, f: Function, probes_at: dict[int, list[Probe]],
                       global_site: bool) -> tuple[list[Instr], list[tuple[int, ValType]]]:
        m = self.m
        layout = self.layout
        instrs = f.instrs
        ftype = m.func_type(f.index)
        plan = self._plans.get(f.index)
        blocks = plan.blocks if plan is not None else counting_blocks(instrs)
        layout.blocks[f.index] = blocks
        layout.pcs[f.index] = [i.pc for i in instrs]
        index_of = {ins.pc: i for i, ins in enumerate(instrs)}
        block_of_index: list[CountingBlock] = []
        for b in blocks:
            block_of_index.extend([b] * (b.last - b.first + 1))
        needs_stacks = global_site or self.dynamic or any(
            not isinstance(p, (CountProbe, CoverageProbe)) for ps in probes_at.values()
            for p in ps)
        stacks = operand_stacks(m, f) if needs_stacks else None
        frames = _control_frames(m, instrs, stacks) if stacks is not None else None
        deep_locals: dict[tuple[int, int], int] = {}  # (block/loop/if, height) -> local

        nparams = len(ftype.params)
        extra: list[ValType] = []
        first_new = nparams + f.num_locals

        def new_local(t: ValType) -> int:
            extra.append(t)
            return first_new + len(extra) - 1

        temps: dict[ValType, list[int]] = {}

        def temp(t: ValType, k: int) -> int:
            lst = temps.setdefault(t, [])
            while len(lst) <= k:
                lst.append(new_local(t))
            return lst[k]

        # Which counting blocks need a counter (coverage: `coverage_plans`).
        want_counter: set[int] = set()
        pre: dict[int, list[Instr]] = {}   # instruction index -> code before it
        flags_before: dict[int, list[Instr]] = {}  # ... then coverage flags, after any
        # probe there could stop the run before the instruction
        for pc, probes in probes_at.items():
            if pc in (ENTRY, EXIT):
                continue
            i = index_of[pc]
            b = block_of_index[i]
            if any(isinstance(p, CountProbe) for p in probes):
                want_counter.add(b.first)
        host_calls: set[int] = set()  # indices with a woven host call before them
        # Flags may move off a loop's iterations only where nothing stops a run at a
        # loop header (interrupts, fuel) and no probe can arrive later (dynamic).
        hoist = not (self.dynamic or global_site or self.fuel or self.interruptible)
        if plan is not None:
            # One store just before the last instruction of each coverage class
            # (a chain of blocks, see ir/dominance.py): set means the whole class
            # ran; a class cut short is completed from the stack by the host. A
            # class whose completion shows in the blocks after it gets no store.
            if plan.idom is not None:
                layout.cov_idom[f.index] = plan.idom
            flag_at: dict[int, int] = {}  # instruction index -> flag stored before it
            # Flags after a call go to globals, so the state memory's base need
            # not live across calls (`flag_global`).
            global_flags = self.flag_globals and hoist
            first_call = (next((k for k, x in enumerate(instrs) if x.op.is_call), len(instrs))
                          if global_flags else len(instrs))
            for first in sorted(plan.want):
                last = plan.last[plan.pos_of[first]]
                after = plan.implied[last]
                if after is not None:
                    layout.cov_implied[(f.index, first)] = tuple(
                        (g, self._plans[g].blocks[w].first) for g, w in after)
                    continue
                block = blocks[last]
                at = block.last
                if hoist and _completes_once_entered(instrs, block, probes_at):
                    at = block.first - 1  # its `loop`: once per entry, not per iteration
                off = flag_at.get(at)
                if off is None and global_flags and at > first_call:
                    off = flag_at[at] = layout.alloc(1, 1)
                    flags_before[at] = self.flag_global(off)
                elif off is None:
                    wide = at == block.last and _wide_flag(instrs, block)
                    off = flag_at[at] = layout.alloc(4, 4) if wide else layout.alloc(1, 1)
                    flags_before[at] = self.flag_store(off, wide)
                layout.cov_flags[(f.index, first)] = off

        # Per-location probes that are not plain counts/coverage, in index order.
        for i, ins in enumerate(instrs):
            probes = probes_at.get(ins.pc, ())
            host = [p for p in probes if not isinstance(
                p, (CountProbe, CoverageProbe, OperandProbe, TraceProbe))]
            code: list[Instr] = []
            for p in probes:
                if isinstance(p, OperandProbe):
                    assert stacks is not None
                    code += self.operand_code(f, ins, p, stacks[i], temp)
                elif isinstance(p, TraceProbe):
                    assert stacks is not None
                    assert frames is not None
                    code += self.trace_code(Location(f.index, ins.pc), p, stacks[i], temp, ins,
                                            base=len(stacks[i]) if frames.dead[i]
                                            else frames.base[i])
            if host or global_site or self.dynamic:
                assert stacks is not None and frames is not None
                loc = Location(f.index, ins.pc)
                reads = _union_reads(host + (list(self.ps.global_probes) if global_site else []))
                if frames.dead[i]:
                    # Never runs, but stays a site (armed: probes may come later); its
                    # operands may be values its frame does not hold, so none is read.
                    reads = replace(reads, operands=0)
                deep = _deep_operand_locals(frames, i, stacks[i], reads.operands, deep_locals,
                                            new_local)
                save, call = self.host_call_parts(loc, reads, stacks[i], ftype, f, temp,
                                                  is_global=global_site or self.dynamic,
                                                  deep=deep)
                if self.dynamic and call:
                    # Armed site: the host flips its flag as probes come and go. The
                    # operands are copied outside the `if`, whose block cannot reach them.
                    flag = layout.alloc(1, 1)
                    layout.armed[loc] = flag
                    call = [_ins("i32.const", 0), _ins("i32.load8_u", self._memarg(flag, 0)),
                            _ins("if", EMPTY_BLOCK), *call, _ins("end")]
                code += save + call
                if call:
                    host_calls.add(i)
            if any(isinstance(p, TraceProbe) for p in probes):
                host_calls.add(i)  # a full ring buffer calls the host
            if code:
                pre.setdefault(i, []).extend(code)
        saves = self._save_below(stacks, deep_locals, temp) if deep_locals else {}
        self.place_counters(f, blocks, want_counter, host_calls, pre)

        out: list[Instr] = []
        # Entry site: before the first instruction, once per call.
        entry = probes_at.get(ENTRY, [])
        out += self.site_code(Location(f.index, ENTRY), entry, ftype, f, temp, ())
        fuel_first, fuel_mid, fuel_last = self.fuel_code(f, temp) if self.fuel else ({}, {}, {})
        peel = (_peelable_loops(instrs, flags_before, (pre, saves, fuel_first, fuel_mid,
                                                       fuel_last))
                if plan is not None and hoist and self.peel_loops else {})
        skip_to = 0
        for i, ins in enumerate(instrs):
            if i < skip_to:
                continue
            br = peel.get(i)
            if br is not None:
                out += _peeled(instrs, i, br, flags_before)
                skip_to = br + 2
                continue
            code = fuel_first.get(i)
            if code:
                out += code
            code = pre.get(i)
            if code:
                out += code
            code = fuel_mid.get(i)
            if code:
                out += code
            code = flags_before.get(i)
            if code:
                out += code
            code = fuel_last.get(i)
            if code:
                out += code
            code = saves.get(i)
            if code:
                out += code
            out.append(ins)

        exit_probes = probes_at.get(EXIT, [])
        if exit_probes:
            out = self.wrap_exit(out, ftype, f, exit_probes, temp)
        groups = list(f.local_groups) + [(1, t) for t in extra]
        return out, groups

    def place_counters(self, f: Function, blocks: list[CountingBlock], want: set[int],
                       host_calls: set[int], pre: dict[int, list[Instr]]) -> None:
        """Counters at the start of blocks, ahead of any other probe there: one per
        wanted block, or (``count_tree``) only those off a spanning tree
        (count_tree.py) when that costs fewer increments."""
        if not want:
            return
        firsts = sorted(want)
        if self.count_tree:
            pos_of = {b.first: k for k, b in enumerate(blocks)}
            tree = plan_count_tree(f.instrs, blocks, {pos_of[b] for b in want}, host_calls)
            if tree is not None:
                self.layout.count_trees[f.index] = tree
                firsts = [blocks[k].first for k in tree.measured]
        for first in firsts:
            off = self.layout.alloc(8)
            self.layout.block_counters[(f.index, first)] = off
            pre[first] = self.counter_add(off) + pre.get(first, [])

    def fuel_code(self, f: Function, temp  # type: ignore[no-untyped-def]
                  ) -> tuple[dict[int, list[Instr]], dict[int, list[Instr]],
                             dict[int, list[Instr]]]:
        """The instruction budget of one body (`CompileOptions.fuel`), as the native
        lowering meters it: each straight-line run's cost (the program's own
        instructions only) is charged before the control instruction that ends it;
        the budget is checked at loop headers (reported at the ``loop``) and just
        before calls (reported at the call, which has begun: as on wasmtime,
        whose check is at the callee's entry). Returns code to emit before an
        instruction's probes (loop checks, ahead of the body's counters), after
        them (charges) and after its coverage flag (call checks)."""
        g = self.fuel_global
        first: dict[int, list[Instr]] = {}
        mid: dict[int, list[Instr]] = {}
        last: dict[int, list[Instr]] = {}

        def check(loc: Location, began: bool) -> list[Instr]:
            # wasmtime reports the trap at the `if` (Cranelift folds it into a
            # conditional trap); other engines may report the `unreachable`.
            branch, trap = _ins("if", EMPTY_BLOCK), _ins("unreachable")
            self._fuel_checks[id(branch)] = self._fuel_checks[id(trap)] = (loc, began)
            return [_ins("global.get", g), _ins("i64.const", 0), _ins("i64.lt_s"),
                    branch, trap, _ins("end")]

        cost = 1  # the function entry
        for i, ins in enumerate(f.instrs):
            name = ins.op.name
            code: list[Instr] = []
            if name not in FUEL_FREE:
                cost += 1
            if name in FUEL_BY_OPERAND:  # also the bytes moved / pages asked for
                t = temp(I32, 0)
                code += [_ins("local.tee", t), _ins("global.get", g), _ins("local.get", t),
                         _ins("i64.extend_i32_u"), _ins("i64.sub"), _ins("global.set", g)]
            if name in FUEL_FLUSH and cost:
                code += [_ins("global.get", g), _ins("i64.const", cost), _ins("i64.sub"),
                         _ins("global.set", g)]
                cost = 0
            if code:
                mid[i] = code
            if name in ("call", "call_indirect"):
                last[i] = check(Location(f.index, ins.pc), True)
            if name == "loop":
                first[i + 1] = check(Location(f.index, ins.pc), True)
        return first, mid, last

    def site_code(self, loc: Location, probes: list[Probe], ftype: FuncType, f: Function,
                  temp, stack: tuple[ValType, ...]) -> list[Instr]:  # type: ignore[no-untyped-def]
        """Code for an entry/exit site: counters, flags and host calls."""
        code: list[Instr] = []
        if any(isinstance(p, CountProbe) for p in probes):
            off = self.layout.alloc(8)
            self.layout.site_counters[loc] = off
            code += self.counter_add(off)
        if any(isinstance(p, CoverageProbe) for p in probes):
            off = self.layout.alloc(1, 1)
            self.layout.site_flags[loc] = off
            code += self.flag_store(off)
        for p in probes:
            if isinstance(p, ShadowStackProbe):
                code += self.shadow_stack_code(loc, p, temp)
        host = [p for p in probes
                if not isinstance(p, (CountProbe, CoverageProbe, ShadowStackProbe))]
        for p in host:
            if isinstance(p, (OperandProbe, TraceProbe)):
                raise ProbeError(f"{type(p).__name__} cannot be an entry/exit probe")
        if host:
            code += self.host_call(loc, _union_reads(host), stack, ftype, f, temp)
        return code

    def shadow_stack_code(self, loc: Location, p: ShadowStackProbe,
                          temp) -> list[Instr]:  # type: ignore[no-untyped-def]
        """Push the function on entry, pop it on exit (the stack lives in state memory)."""
        where = self.layout.stacks.get(id(p))
        if where is None:
            sp = self.layout.alloc(4, 4)
            buf = self.layout.alloc(4 * p.capacity, 4)
            where = self.layout.stacks[id(p)] = (sp, buf, p.capacity)
        sp, buf, cap = where
        if loc.pc == EXIT:
            return [_ins("i32.const", 0), _ins("i32.const", 0),
                    _ins("i32.load", self._memarg(sp, 2)), _ins("i32.const", 4),
                    _ins("i32.sub"), _ins("i32.store", self._memarg(sp, 2))]
        t = temp(I32, 6)
        return [
            _ins("i32.const", 0), _ins("i32.load", self._memarg(sp, 2)), _ins("local.tee", t),
            _ins("i32.const", 4 * cap), _ins("i32.lt_u"), _ins("if", EMPTY_BLOCK),
            _ins("local.get", t), _ins("i32.const", loc.func),
            _ins("i32.store", self._memarg(buf, 2)), _ins("end"),
            _ins("i32.const", 0), _ins("local.get", t), _ins("i32.const", 4), _ins("i32.add"),
            _ins("i32.store", self._memarg(sp, 2)),
        ]

    def wrap_exit(self, body: list[Instr], ftype: FuncType, f: Function,
                  probes: list[Probe], temp) -> list[Instr]:  # type: ignore[no-untyped-def]
        """Turn every normal exit into a branch to one exit site after the body."""
        results = ftype.results
        bt = self._block_type(FuncType((), results))
        out = [_ins("block", bt)]
        depth = 0
        for ins in body[:-1]:  # the final `end` closes the new block instead
            name = ins.op.name
            if name in ("block", "loop", "if"):
                depth += 1
            elif name == "end":
                depth -= 1
            if name == "return":
                new = Instr(_op("br"), depth, ins.pc)
                out.append(new)
                continue
            out.append(ins)
        final = body[-1]
        out.append(Instr(final.op, None, -1))
        out += self.site_code(Location(f.index, EXIT), probes, ftype, f, temp, results)
        out.append(Instr(final.op, None, final.pc))
        return out

    def _block_type(self, sig: FuncType) -> BlockType:
        if not sig.params and len(sig.results) <= 1:
            return BlockType(result=sig.results[0]) if sig.results else EMPTY_BLOCK
        return BlockType(type_index=self._type_index(sig))

    @staticmethod
    def _save_below(stacks: list[tuple] | None, deep_locals: dict[tuple[int, int], int],
                    temp) -> dict[int, list[Instr]]:  # type: ignore[no-untyped-def]
        """Code before each block/loop/if that copies the values a probe inside reads
        from below its frame into their locals (`host_call_parts`' ``deep``): pop down to
        the lowest, keep them, push everything back. They cannot change inside."""
        assert stacks is not None
        heights: dict[int, dict[int, int]] = {}
        for (opener, h), local in deep_locals.items():
            heights.setdefault(opener, {})[h] = local
        saves: dict[int, list[Instr]] = {}
        for opener, kept in heights.items():
            stack = stacks[opener]
            held: list[int] = []
            counts: dict[ValType, int] = {}
            for h in range(len(stack) - 1, min(kept) - 1, -1):
                local = kept.get(h)
                if local is None:
                    t = stack[h]
                    local = temp(t, counts.get(t, 0))
                    counts[t] = counts.get(t, 0) + 1
                held.append(local)
            saves[opener] = [*(_ins("local.set", x) for x in held),
                             *(_ins("local.get", x) for x in reversed(held))]
        return saves

    def host_call(self, loc: Location, reads: FrameReads, stack: tuple, ftype: FuncType,
                  f: Function, temp) -> list[Instr]:  # type: ignore[no-untyped-def]
        """Call the host dispatcher for ``loc``, passing the frame parts ``reads`` names."""
        save, call = self.host_call_parts(loc, reads, stack, ftype, f, temp)
        return save + call

    def host_call_parts(self, loc: Location, reads: FrameReads, stack: tuple, ftype: FuncType,
                        f: Function, temp, is_global: bool = False,  # type: ignore[no-untyped-def]
                        deep: list[int] | None = None) -> tuple[list[Instr], list[Instr]]:
        """`host_call` as (copy the operands read into temps, the call itself).
        ``deep``: locals holding the lowest operands read, which lie below the current
        block's frame (saved where it was entered, `_save_below`), bottom first."""
        k = reads.operands
        deep = deep or []
        if k > len(stack) or any(t is None for t in stack[len(stack) - k:]):
            return [], []  # unreachable code (unknown operand types): never executes
        operand_types = [t for t in stack[len(stack) - k:]] if k else []
        local_types = []
        for li in reads.locals:
            t = f.local_type(ftype.params, li)
            if t is None:
                raise ProbeError(f"probe at {loc} reads local {li}, but function {f.index} "
                                 f"has no such local")
            local_types.append(t)
        for t in operand_types + local_types:
            if t.code == 0x7B:
                raise ProbeError(f"probe at {loc} reads a v128 value, which host calls "
                                 f"cannot receive")
        sig = FuncType((I32, *operand_types, *local_types), ())
        slot = self._slot(sig)
        site = len(self.layout.sites)
        self.layout.sites.append(Site(loc, slot, reads, is_global))
        save: list[Instr] = []
        saved: list[int] = []
        if k > len(deep):
            counts: dict[ValType, int] = {}
            for t in reversed(operand_types[len(deep):]):  # pop from the top into temps
                idx = temp(t, counts.get(t, 0))
                counts[t] = counts.get(t, 0) + 1
                saved.append(idx)
                save.append(_ins("local.set", idx))
            saved.reverse()
            save += [_ins("local.get", i) for i in saved]
        call = [_ins("i32.const", site), *(_ins("local.get", i) for i in deep + saved),
                *(_ins("local.get", li) for li in reads.locals),
                _ins("i32.const", slot), _ins("call_indirect", (self._type_index(sig), self.table))]
        return save, call

    def operand_code(self, f: Function, ins: Instr, p: OperandProbe, stack: tuple,
                     temp) -> list[Instr]:  # type: ignore[no-untyped-def]
        """Inline histogram of the value ``ins`` consumes."""
        name = ins.op.name
        if not stack or stack[-1] is None:
            return []  # unreachable code
        slots, mode = _operand_slots(self.m, ins)
        key = id(p)
        if key in self.layout.histograms:
            off, have = self.layout.histograms[key]
            if have != slots:
                raise ProbeError(f"one OperandProbe inserted at instructions of different "
                                 f"kinds ({name} needs {slots} slots, it has {have})")
        else:
            off = self.layout.alloc(8 * slots)
            self.layout.histograms[key] = (off, slots)
        idx = temp(I32, 0)
        scratch = temp(I32, 1)
        if mode == "cond":
            return [_ins("local.tee", idx), _ins("local.get", idx), _ins("i32.eqz"),
                    _ins("i32.eqz"), _ins("local.set", idx)] + self.histogram_add(
                        off, slots, idx, scratch)
        if mode == "index":
            return [_ins("local.tee", idx)] + self.histogram_add(off, slots, idx, scratch)
        # Memory access: the address is under the stored value (if any).
        addr_depth = 1 if ins.op.is_store or len(ins.op.pops) == 2 else 0
        code: list[Instr] = []
        value_t = stack[-1]
        hold = None
        if addr_depth:
            hold = temp(value_t, 0 if value_t is not I32 else 2)
            code.append(_ins("local.set", hold))
        offset = ins.imm[1]
        wide = temp(I64, 1)
        code += [
            _ins("local.tee", idx), _ins("local.get", idx), _ins("i64.extend_i32_u"),
            _ins("i64.const", offset),
            _ins("i64.add"), _ins("i64.const", 16), _ins("i64.shr_u"),
            _ins("local.tee", wide), _ins("i64.const", _PAGES_TRACKED - 1),
            _ins("local.get", wide), _ins("i64.const", _PAGES_TRACKED - 1), _ins("i64.lt_u"),
            _ins("select"), _ins("i32.wrap_i64"), _ins("local.set", scratch),
        ]
        code += self.histogram_add(off, slots, scratch, temp(I32, 3))
        if hold is not None:
            code.append(_ins("local.get", hold))
        return code

    def trace_code(self, loc: Location, p: TraceProbe, stack: tuple,  # type: ignore[no-untyped-def]
                   temp, ins: Instr | None = None, base: int = 0) -> list[Instr]:
        """Append (site, value) to the ring buffer; flush through slot 0 when full.
        ``base``: the stack height where the instruction's block frame begins (a value
        below it cannot be popped there: recorded as 0, like one of unknown type)."""
        layout = self.layout
        if not layout.trace_buf:
            layout.trace_capacity = self.trace_capacity
            layout.trace_buf = layout.alloc(_TRACE_ENTRY * self.trace_capacity, 16)
        site = len(layout.trace_sites)
        layout.trace_sites.append(loc)
        pos = temp(I32, 4)
        code: list[Instr] = []
        value: list[Instr] = [_ins("i64.const", 0)]
        held: list[int] = []
        d = p.depth
        offset = 0
        if p.address and ins is not None and ins.op.imm == "memarg" and ins.op.mem_bytes:
            d = 1 if ins.op.is_store else 0  # the address is under a stored value
            offset = ins.imm[1]
        if p.with_value and len(stack) - base > d and all(t is not None for t in stack[-1 - d:]) \
                and stack[-1 - d].is_num:
            for k in range(d):  # set aside the values above the one recorded
                ht = stack[-1 - k]
                h = temp(ht, 7 if ht is I32 else 1)
                code.append(_ins("local.set", h))
                held.append(h)
            t = stack[-1 - d]
            v = temp(t, 5 if t is I32 else 0)
            code.append(_ins("local.tee", v))
            value = [_ins("local.get", v)]
            if t is I32:
                value.append(_ins("i64.extend_i32_u"))
                if offset:
                    value += [_ins("i64.const", offset), _ins("i64.add")]
            elif t is F32:
                value += [_ins("i32.reinterpret_f32"), _ins("i64.extend_i32_u")]
            elif t is F64:
                value.append(_ins("i64.reinterpret_f64"))
        buf = layout.trace_buf
        cap_bytes = _TRACE_ENTRY * layout.trace_capacity
        flush_type = self._type_index(FuncType((), ()))
        code += [
            _ins("i32.const", 0), _ins("i32.load", self._memarg(_TRACE_POS, 2)),
            _ins("local.tee", pos), _ins("i32.const", site),
            _ins("i32.store", self._memarg(buf, 2)),
            _ins("local.get", pos), *value, _ins("i64.store", self._memarg(buf + 8, 3)),
            _ins("i32.const", 0),
            _ins("local.get", pos), _ins("i32.const", _TRACE_ENTRY), _ins("i32.add"),
            _ins("local.tee", pos), _ins("i32.store", self._memarg(_TRACE_POS, 2)),
            _ins("local.get", pos), _ins("i32.const", cap_bytes), _ins("i32.ge_u"),
            _ins("if", EMPTY_BLOCK),
            _ins("i32.const", 0), _ins("call_indirect", (flush_type, self.table)),
            _ins("end"),
        ]
        code += [_ins("local.get", h) for h in reversed(held)]
        return code


def _operand_slots(m: Module, ins: Instr) -> tuple[int, str]:
    op: OpInfo = ins.op
    name = op.name
    if name in ("br_if", "if"):
        return 2, "cond"
    if name == "br_table":
        return len(ins.imm[0]) + 1, "index"
    if name == "call_indirect":
        tables = m.all_tables()
        size = tables[ins.imm[1]].limits.min if ins.imm[1] < len(tables) else 0
        return max(1, size) + 1, "index"
    if op.mem_bytes and op.imm == "memarg":
        return _PAGES_TRACKED, "page"
    raise ProbeError(f"OperandProbe cannot observe {name}: it works on br_if, if, br_table, "
                     f"call_indirect, loads and stores")


def _union_reads(probes: Iterable[Probe]) -> FrameReads:
    locals_: list[int] = []
    operands = 0
    memory = False
    for p in probes:
        r = p.reads
        for li in r.locals:
            if li not in locals_:
                locals_.append(li)
        operands = max(operands, r.operands)
        memory = memory or r.memory
    return FrameReads(tuple(locals_), operands, memory)


def weave(module: Module, probes: ProbeSet, trace_capacity: int = 4096,
          dynamic: bool = False, coverage_classes: bool = True, fuel: bool = False,
          count_tree: bool = False, interruptible: bool = False,
          peel_loops: bool = True, flag_globals: bool = True) -> Woven:
    """Instrument ``module`` with the probes in ``probes``.

    With ``dynamic``, every instruction gets an armed site (a flag test and a
    host call when set), so probes can be inserted anywhere during a run.
    With ``coverage_classes``, one coverage flag stands for a chain of blocks
    (ir/dominance.py; `Layout.cov_idom`), else one flag per block; either way
    the host completes coverage from the innermost frame when a run stops.
    With ``fuel``, every function meters an instruction budget held in an
    exported global (`_Weaver.fuel_code`).
    With ``interruptible``, the run may stop at any loop header (Ctrl-C), so
    coverage flags stay inside loops (`_completes_once_entered`).
    With ``peel_loops``, a loop body without joins that holds coverage flags is
    emitted as its first iteration, with the flags, then a loop without them
    (`_peelable_loops`): fewer stores per iteration. The native backend, whose
    LLVM lowering gains on some programs and loses on others, keeps loops whole.
    With ``flag_globals`` (not with ``fuel``), coverage flags stored after a
    call in their function live in exported mutable globals
    (`Layout.flag_globals`, `_Weaver.flag_global`), which the host reads.
    With ``count_tree``, counters go only on blocks off a spanning tree of each
    function's flow graph (count_tree.py, `Layout.count_trees`); without it,
    every counted block has its own counter (the layout `probes instrument`
    documents).
    Raises `ValidationError` for an invalid ``module`` (`check_module`).
    """
    check_module(module)
    return _Weaver(module, probes, trace_capacity, dynamic, coverage_classes, fuel,
                   count_tree, interruptible, peel_loops, flag_globals).run()

