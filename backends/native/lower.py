"""Lowering: a (woven) Wasm module -> one LLVM module, with llvmlite.ir.

Every function becomes ``RESULT f<i>(i8* ctx, i64* frame, PARAMS...)``;
``ctx`` is the instance's `rt_ctx` (cext/runtime_api.h, field offsets read
through cffi), ``frame`` its call depth as the address ``&ctx->frames[depth - 1]``:
the caller's slot, which holds the record of this call; the function's own
slot, where it records its calls, is ``frame + 1``, and that same pointer is
what it passes on (one pointer kept across calls instead of the depth, the
array and the index; passing the callee's slot instead kept both ``frame`` and
``frame + 1`` alive across calls). Results are a scalar or a literal
struct (multi-value). Locals and block results live in allocas that LLVM's
mem2reg turns into SSA; the operand stack is a compile-time list of values.

Memories and tables are runtime objects the context points to
(``ctx->mems[i]``, ``ctx->tables[i]``), possibly shared with other instances:
a function loads the object pointer and a memory's base once, in its entry
block (neither ever changes: memories reserve their maximum up front; the
first ``RT_INLINE_MEMS`` have copies in the context, one load each), and the
size at each access, with a ``!range`` from the declared minimum (memories
never shrink, so LLVM drops the checks below it). The first
``RT_INLINE_MEMS`` memories' sizes are read from copies in the context
(``ctx->mem_sizes``, which the runtime updates on every grow of the memory,
by whichever instance or host), so a function keeps no register for the
memory object across its calls. The probe state memory
lives inline at ``ctx + RT_STATE_OFFSET``: counters and flags are addressed
from ctx, no load and no register of their own. Imported memories (tables)
share one TBAA tag, since one memory may be imported twice; an imported
mutable global's slot holds the address of the exporter's slot.

Sandboxing: every memory access is checked against the memory's current size
(a constant for memories whose minimum equals their maximum); in a straight-line
run, the accesses through one base share one check made before the run, with the
run's exact copy as the fallback (guards.py, `_FuncLowering.lower_run`), and a counted
loop whose bases move by constant strides is checked once before it starts, for its
first and last iterations, with the loop's exact copy as the fallback (`lower_loop`);
call_indirect
checks the index, null and signature (against ``ctx->sig_ids``: process-wide
ids, so funcrefs of any instance compare; a funcref of another instance is
called between ``rt_enter``/``rt_leave``), and every function checks its stack
pointer and call depth (``frame`` against ``ctx->frames_limit``) on entry. A
failed check calls ``rt_trap(ctx, kind, func, pc, depth)``, which longjmps to
the innermost ``rt_invoke``; ``pc`` is the instruction's offset in the
compiled (woven) body, mapped back to the original location by the runner.
Before each call a frame record, the call's module offset (its function's
``body_offset`` + pc: below 2**31, so the store takes a 32-bit immediate and
no register), goes to the function's slot (``ctx->frames[depth]``) so traps
have backtraces; the callee gets the address of that slot.

Fuel and interrupts (`LowerConfig.fuel`, `LowerConfig.interruptible`): one
check, compiled at every loop header and before every call (the callee's
entry, as the caller sees it: the places wasmtime checks fuel and epochs),
traps with ``fuel`` when ``ctx->fuel`` went negative and with ``interrupt``
when ``ctx->interrupt`` is set (an atomic load: another thread sets it).
``ctx->fuel`` drops by wasmtime's fuel cost of the *original* instructions
(1 each but nop, drop, block, loop, end, else, return and unreachable; 1 per
function entry; the bytes memory.copy/memory.fill move and the pages
memory.grow asks for): a straight-line run accumulates its cost at compile
time and subtracts it once, before the control instruction that ends it.
The weaver's instructions are free, so an instrumented run burns exactly the
fuel the plain module burns on wasmtime.

Dispatch derives from the opcode table: `LOWERINGS` maps every mnemonic to
its lowering, `UNSUPPORTED` lists the ones rejected (SIMD for now), and
`check_coverage` (a test) proves every `OPCODES` row is one or the other.

Probe calls: the weaver reaches Python callbacks with ``call_indirect``
through its appended table; on that table the lowering emits a direct
``rt_probe_call(ctx, slot, io, n)`` instead (no table lookup).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llvmlite import ir

from ...ir import Module, UnsupportedFeature
from ...ir.module import Function, Instr
from ...ir.opcodes import OPCODES, OpInfo
from ...ir.types import F32 as W_F32
from ...ir.types import F64 as W_F64
from ...ir.types import I32 as W_I32
from ...ir.types import I64 as W_I64
from ...ir.types import FuncType, ValType
from ..base import FUEL_BY_OPERAND, FUEL_FLUSH, FUEL_FREE
from . import guards

__all__ = ["lower", "LowerConfig", "Lowered", "LOWERINGS", "UNSUPPORTED", "check_coverage",
           "TRAP", "type_ids", "func_symbol", "WRAPPER_PREFIX", "INIT_SYMBOL",
           "RUNTIME_SYMBOLS"]

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F32 = ir.FloatType()
F64 = ir.DoubleType()
VOID = ir.VoidType()
I8P = I8.as_pointer()
I64P = I64.as_pointer()

TRAP = {
    "unreachable": 1, "memory": 2, "table": 3, "null": 4, "signature": 5, "overflow": 6,
    "div0": 7, "conversion": 8, "stack": 9, "host": 10, "exit": 11, "fuel": 12,
    "null_ref": 13, "interrupt": 14,
}
"""Trap kinds, the RT_TRAP_* numbers of cext/runtime_api.h."""

WRAPPER_PREFIX = "__probes_w"
"""Exported ``void w(ctx, u64* io)`` entry points, one per exported function."""
INIT_SYMBOL = "__probes_funcs"
"""Exported ``void init(void** out)`` writing every function's code address."""

RUNTIME_SYMBOLS = (
    "rt_trap", "rt_memory_grow", "rt_memory_copy", "rt_memory_fill", "rt_memory_init",
    "rt_data_drop", "rt_table_grow", "rt_table_fill", "rt_table_copy", "rt_table_init",
    "rt_elem_drop", "rt_host_call", "rt_probe_call", "rt_enter", "rt_leave",
)
"""C functions generated code may call (resolved by the JIT to the cffi library)."""

_LLTYPE = {"i32": I32, "i64": I64, "f32": F32, "f64": F64, "funcref": I64, "externref": I64}


def lltype(t: ValType) -> ir.Type:
    try:
        return _LLTYPE[t.name]
    except KeyError:
        raise UnsupportedFeature("simd", 0, "the native backend has no v128 support yet") \
            from None


def func_symbol(index: int) -> str:
    return f"f{index}"


def type_ids(types: list[FuncType]) -> list[int]:
    """Canonical signature id of each type index (structurally equal types share one)."""
    seen: dict[FuncType, int] = {}
    return [seen.setdefault(t, len(seen)) for t in types]


@dataclass
class CtxLayout:
    """Byte offsets in the runtime structs (from cffi's offsetof)."""

    ctx: dict[str, int]
    memory: dict[str, int]
    memory_size: int
    funcref: dict[str, int]
    funcref_size: int
    table: dict[str, int]
    table_size: int
    link_size: int
    state_offset: int
    """Bytes from a context to its inline state memory (``RT_STATE_OFFSET``)."""
    inline_mems: int
    """Memories whose object and base the context also holds inline (``RT_INLINE_MEMS``)."""

    @staticmethod
    def from_ffi(ffi: Any) -> CtxLayout:
        def fields(struct_name: str, names: tuple[str, ...]) -> dict[str, int]:
            return {n: ffi.offsetof(struct_name, n) for n in names}

        return CtxLayout(
            ctx=fields("rt_ctx", ("mems", "globals", "tables", "funcs", "frames",
                                  "stack_limit", "fuel", "interrupt", "sig_ids", "mem_objs",
                                  "mem_bases", "mem_sizes", "frames_limit", "entry_frame")),
            memory=fields("rt_memory", ("base", "size")),
            memory_size=ffi.sizeof("rt_memory"),
            funcref=fields("rt_funcref", ("code", "ctx", "type_id")),
            funcref_size=ffi.sizeof("rt_funcref"),
            table=fields("rt_table", ("elems", "size")),
            table_size=ffi.sizeof("rt_table"),
            link_size=ffi.sizeof("rt_link"),
            state_offset=int(ffi.integer_const("RT_STATE_OFFSET")),
            inline_mems=int(ffi.integer_const("RT_INLINE_MEMS")),
        )


@dataclass
class LowerConfig:
    """What the lowering needs besides the module."""

    layout: CtxLayout
    """Runtime struct offsets."""
    probe_table: int | None = None
    """The weaver's callback table: ``call_indirect`` on it becomes ``rt_probe_call``."""
    wasi: dict[int, str] = field(default_factory=dict)
    """Imported function index -> C symbol of its WASI implementation."""
    max_depth: int = 50000
    """Call-depth limit (stack exhaustion beyond it)."""
    fixed_memory_sizes: dict[int, int] = field(default_factory=dict)
    """Memories whose size can never change -> their size in bytes."""
    state_memory: int | None = None
    """The memory laid out inline after the context (``rt_ctx_new_inline``: the probe
    state, of a fixed size): its base is ``ctx + RT_STATE_OFFSET``, no load at all."""
    exports: list[int] = field(default_factory=list)
    """Functions that get a ``__probes_w<i>`` wrapper callable from Python."""
    name: str = "wasm"
    """LLVM module name."""
    fuel: bool = False
    """Meter fuel in ``ctx->fuel`` and trap with ``fuel`` when it runs out."""
    interruptible: bool = False
    """Trap with ``interrupt`` once ``ctx->interrupt`` is set."""
    original_ops: dict[int, dict[int, str]] = field(default_factory=dict)
    """Instrumented functions -> pc of each of their original instructions -> the
    original's opcode name, which its fuel cost follows (an exit probe turns `return`
    into `br`); woven code costs no fuel. Functions not listed are original throughout."""


@dataclass
class Lowered:
    """The LLVM module and the facts the runner needs about it."""

    llvm_ir: str
    """Textual LLVM IR."""
    type_ids: list[int]
    """Canonical signature id of each type index."""
    wrappers: dict[int, str]
    """Function index -> wrapper symbol."""
    wasi_symbols: set[str]
    """WASI C functions referenced."""



# -- the opcode dispatch ------------------------------------------------------------------------

Handler = Callable[["_FuncLowering", Instr], None]
LOWERINGS: dict[str, Handler] = {}
"""Mnemonic -> lowering."""
UNSUPPORTED: dict[str, str] = {op.name: "simd" for op in OPCODES if op.feature == "simd"}
"""Mnemonic -> feature name, for opcodes the native backend rejects."""


def _lowers(*names: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for n in names:
            LOWERINGS[n] = fn
        return fn
    return deco


def check_coverage() -> list[OpInfo]:
    """Opcode rows with neither a lowering nor an unsupported mark (should be empty)."""
    return [op for op in OPCODES if op.name not in LOWERINGS and op.name not in UNSUPPORTED]


# -- module-level lowering --------------------------------------------------------------------

class _ModuleLowering:
    def __init__(self, m: Module, cfg: LowerConfig) -> None:
        self.m = m
        self.cfg = cfg
        self.lay = cfg.layout
        self.mod = ir.Module(name=cfg.name)
        self.tids = type_ids(m.types)
        self.func_types: list[FuncType] = [m.func_type(i) for i in range(m.num_funcs)]
        self.functions: list[ir.Function] = []
        self.intrinsics: dict[str, ir.Function] = {}
        self.runtime: dict[str, ir.Function] = {}
        self.wasi_symbols: set[str] = set()
        md = self.mod
        self.empty_md = md.add_metadata([])
        root = md.add_metadata(["probes.tbaa"])
        self._tbaa_root = root
        self._tbaa: dict[str, Any] = {}
        self._size_ranges: dict[int, Any] = {}
        self.globals_types = m.all_globals()
        self.const_globals = self._constant_globals()
        self.imported_mems = len(m.imports_of("memory"))
        self.imported_tables = len(m.imports_of("table"))
        self.imported_globals = len(m.imports_of("global"))
        self._declare_runtime()

    # -- metadata ---------------------------------------------------------------------
    def tbaa(self, name: str) -> Any:
        tag = self._tbaa.get(name)
        if tag is None:
            node = self.mod.add_metadata([name, self._tbaa_root, ir.Constant(I64, 0)])
            tag = self.mod.add_metadata([node, node, ir.Constant(I64, 0)])
            self._tbaa[name] = tag
        return tag

    # -- declarations ---------------------------------------------------------------------
    def _declare_runtime(self) -> None:
        decl = {
            "rt_trap": (VOID, [I8P, I32, I32, I32, I32]),
            "rt_memory_grow": (I32, [I8P, I32, I32]),
            "rt_memory_copy": (I32, [I8P, I32, I32, I32, I32, I32]),
            "rt_memory_fill": (I32, [I8P, I32, I32, I32, I32]),
            "rt_memory_init": (I32, [I8P, I32, I32, I32, I32, I32]),
            "rt_data_drop": (VOID, [I8P, I32]),
            "rt_table_grow": (I32, [I8P, I32, I64, I32]),
            "rt_table_fill": (I32, [I8P, I32, I32, I64, I32]),
            "rt_table_copy": (I32, [I8P, I32, I32, I32, I32, I32]),
            "rt_table_init": (I32, [I8P, I32, I32, I32, I32, I32]),
            "rt_elem_drop": (VOID, [I8P, I32]),
            "rt_host_call": (I32, [I8P, I32, I64P, I32]),
            "rt_probe_call": (I32, [I8P, I32, I64P, I32]),
            "rt_enter": (VOID, [I8P, I8P, I8P, I32]),
            "rt_leave": (VOID, [I8P, I8P, I8P]),
        }
        for name, (ret, args) in decl.items():
            fn = ir.Function(self.mod, ir.FunctionType(ret, args), name)
            fn.attributes.add("nounwind")
            self.runtime[name] = fn
        trap = self.runtime["rt_trap"]
        trap.attributes.add("noreturn")
        trap.attributes.add("cold")

    def mem_tag(self, mem: int) -> str:
        """TBAA name of memory ``mem``: imported memories may be one memory imported twice."""
        return f"mem{mem}" if mem >= self.imported_mems else "mem.imported"

    def size_range(self, mem: int) -> Any:
        """``!range`` of memory ``mem``'s size in bytes: from its declared minimum (a memory
        never shrinks, and an import is at least that large) to its maximum. LLVM then drops
        the checks of accesses below the minimum, a call in between or not."""
        md = self._size_ranges.get(mem)
        if md is None:
            limits = self.m.all_memories()[mem].limits
            hi = 65536 if limits.max is None else min(limits.max, 65536)
            md = self.mod.add_metadata([ir.Constant(I64, limits.min * 65536),
                                        ir.Constant(I64, hi * 65536 + 1)])
            self._size_ranges[mem] = md
        return md

    def min_size(self, mem: int) -> int:
        """Memory ``mem``'s declared minimum in bytes (an import is at least as large)."""
        return self.m.all_memories()[mem].limits.min * 65536

    def fixed_table_size(self, table: int) -> int | None:
        """The size of a defined table whose minimum is its maximum (it can never grow, so
        its size is a constant and its elements never move), else None."""
        if table < self.imported_tables:
            return None
        limits = self.m.all_tables()[table].limits
        return limits.min if limits.max == limits.min else None

    def table_tag(self, table: int) -> str:
        """TBAA name of table ``table`` (imported tables share one, as memories do)."""
        return f"table{table}" if table >= self.imported_tables else "table.imported"

    def shared_global(self, idx: int) -> bool:
        """Whether global ``idx`` is an imported mutable global: its slot holds the address
        of the exporter's slot (shared by reference)."""
        return idx < self.imported_globals and self.globals_types[idx].mutable

    def intrinsic(self, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
        fn = self.intrinsics.get(name)
        if fn is None:
            fn = ir.Function(self.mod, ir.FunctionType(ret, args), name)
            self.intrinsics[name] = fn
        return fn

    def _constant_globals(self) -> dict[int, tuple[str, int]]:
        """Immutable defined globals with a constant initializer: index -> (type, bits)."""
        out: dict[int, tuple[str, int]] = {}
        base = len(self.m.imports_of("global"))
        for i, g in enumerate(self.m.globals):
            if g.type.mutable or len(g.init) != 2:
                continue
            ins = g.init[0]
            if ins.op.name in ("i32.const", "i64.const", "f32.const", "f64.const"):
                out[base + i] = (ins.op.name[:3], ins.imm)
        return out

    @staticmethod
    def ret_type(ft: FuncType) -> ir.Type:
        if not ft.results:
            return VOID
        if len(ft.results) == 1:
            return lltype(ft.results[0])
        return ir.LiteralStructType([lltype(t) for t in ft.results])

    def fn_type(self, ft: FuncType) -> ir.FunctionType:
        return ir.FunctionType(self.ret_type(ft), [I8P, I64P, *[lltype(t) for t in ft.params]])

    # -- the module ---------------------------------------------------------------------
    def run(self) -> Lowered:
        m = self.m
        for i, ft in enumerate(self.func_types):
            fn = ir.Function(self.mod, self.fn_type(ft), func_symbol(i))
            fn.linkage = "internal"
            fn.attributes.add("nounwind")
            self.functions.append(fn)
        nimp = m.num_imported_funcs
        imports = m.imports_of("func")
        for i in range(nimp):
            self._import_stub(i, imports[i].module, imports[i].name)
        for f in m.functions:
            _FuncLowering(self, f).run()
        wrappers = {}
        for idx in self.cfg.exports:
            wrappers[idx] = self._wrapper(idx)
        self._init_function()
        return Lowered(str(self.mod), self.tids, wrappers, self.wasi_symbols)

    def _import_stub(self, idx: int, module: str, name: str) -> None:
        fn = self.functions[idx]
        ft = self.func_types[idx]
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        ctx = fn.args[0]
        params = list(fn.args[2:])
        sym = self.cfg.wasi.get(idx)
        if sym is not None:
            self.wasi_symbols.add(sym)
            cret = lltype(ft.results[0]) if ft.results else VOID
            cfn = self.mod.globals.get(sym)
            if cfn is None:
                cfn = ir.Function(self.mod, ir.FunctionType(cret, [I8P, *[p.type for p in params]]),
                                  sym)
                cfn.attributes.add("nounwind")
                if name == "proc_exit":
                    cfn.attributes.add("noreturn")
            r = b.call(cfn, [ctx, *params])
            if name == "proc_exit":
                b.unreachable()
            elif ft.results:
                b.ret(r)
            else:
                b.ret_void()
            return
        # A Python host function: arguments and results through a u64 array.
        n = max(len(ft.params), len(ft.results), 1)
        io = b.alloca(ir.ArrayType(I64, n))
        iop = b.bitcast(io, I64P)
        for k, p in enumerate(params):
            b.store(to_bits(b, p), b.gep(iop, [ir.Constant(I32, k)]))
        st = self.host_call(b, ctx, fn.args[1], self.runtime["rt_host_call"],
                            [ctx, ir.Constant(I32, idx), iop, ir.Constant(I32, len(params))])
        fail = b.icmp_unsigned("!=", st, ir.Constant(I32, 0))
        with b.if_then(fail, likely=False):
            depth = self.depth_of(b, ctx, b.gep(fn.args[1], [ir.Constant(I64, 1)]))
            b.call(self.runtime["rt_trap"], [ctx, st, ir.Constant(I32, -1), ir.Constant(I32, -1),
                                             depth])
            b.unreachable()
        results = [from_bits(b, b.load(b.gep(iop, [ir.Constant(I32, k)])), lltype(t))
                   for k, t in enumerate(ft.results)]
        emit_return(b, fn.function_type.return_type, results)

    def frames_of(self, b: ir.IRBuilder, ctx: ir.Value) -> ir.Value:
        """``ctx->frames`` (a context's frame records; never reallocated)."""
        p = b.bitcast(b.gep(ctx, [ir.Constant(I32, self.lay.ctx["frames"])]),
                      I64P.as_pointer())
        v = b.load(p)
        v.set_metadata("tbaa", self.tbaa("ctx.frames"))
        v.set_metadata("invariant.load", self.empty_md)
        return v

    def _entry_frame_ptr(self, b: ir.IRBuilder, ctx: ir.Value) -> ir.Value:
        return b.bitcast(b.gep(ctx, [ir.Constant(I32, self.lay.ctx["entry_frame"])]),
                         I64P.as_pointer())

    def entry_frame(self, b: ir.IRBuilder, ctx: ir.Value) -> ir.Value:
        """``ctx->entry_frame``: the frame a call from the host starts at."""
        v = b.load(self._entry_frame_ptr(b, ctx))
        v.set_metadata("tbaa", self.tbaa("ctx.entry_frame"))
        return v

    def set_entry_frame(self, b: ir.IRBuilder, ctx: ir.Value, frame: ir.Value) -> None:
        st = b.store(frame, self._entry_frame_ptr(b, ctx))
        st.set_metadata("tbaa", self.tbaa("ctx.entry_frame"))

    def host_call(self, b: ir.IRBuilder, ctx: ir.Value, frame: ir.Value, fn: ir.Function,
                  args: list[ir.Value]) -> ir.Value:
        """Call the runtime's ``rt_host_call``/``rt_probe_call``; a call back into this
        instance made meanwhile starts at ``frame`` (whose record is this call), so the
        records of the frames below stay for a later trap's backtrace."""
        saved = self.entry_frame(b, ctx)
        self.set_entry_frame(b, ctx, frame)
        st = b.call(fn, args)
        self.set_entry_frame(b, ctx, saved)
        return st

    def depth_of(self, b: ir.IRBuilder, ctx: ir.Value, frame: ir.Value) -> ir.Value:
        """The call depth (i32) of the frame slot ``frame`` of context ``ctx``."""
        diff = b.sub(b.ptrtoint(frame, I64), b.ptrtoint(self.frames_of(b, ctx), I64))
        return b.trunc(b.lshr(diff, ir.Constant(I64, 3)), I32)

    def _wrapper(self, idx: int) -> str:
        name = f"{WRAPPER_PREFIX}{idx}"
        fn = ir.Function(self.mod, ir.FunctionType(VOID, [I8P, I64P]), name)
        ft = self.func_types[idx]
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        ctx, io = fn.args
        args = [from_bits(b, b.load(b.gep(io, [ir.Constant(I32, k)])), lltype(t))
                for k, t in enumerate(ft.params)]
        # Depth 0 (its slot is frames[0], the unused caller's one before it), or below
        # the host or probe call this call came back from.
        r = b.call(self.functions[idx], [ctx, self.entry_frame(b, ctx), *args])
        if len(ft.results) == 1:
            b.store(to_bits(b, r), io)
        elif ft.results:
            for k in range(len(ft.results)):
                b.store(to_bits(b, b.extract_value(r, k)), b.gep(io, [ir.Constant(I32, k)]))
        b.ret_void()
        return name

    def _init_function(self) -> None:
        fn = ir.Function(self.mod, ir.FunctionType(VOID, [I8P.as_pointer()]), INIT_SYMBOL)
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        out = fn.args[0]
        for i, f in enumerate(self.functions):
            b.store(b.bitcast(f, I8P), b.gep(out, [ir.Constant(I32, i)]))
        b.ret_void()


def to_bits(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """A value as the u64 the runtime passes around."""
    t = v.type
    if t == I64:
        return v
    if t == I32:
        return b.zext(v, I64)
    if t == F32:
        return b.zext(b.bitcast(v, I32), I64)
    if t == F64:
        return b.bitcast(v, I64)
    raise AssertionError(t)


def from_bits(b: ir.IRBuilder, v: ir.Value, t: ir.Type) -> ir.Value:
    if t == I64:
        return v
    if t == I32:
        return b.trunc(v, I32)
    if t == F32:
        return b.bitcast(b.trunc(v, I32), F32)
    if t == F64:
        return b.bitcast(v, F64)
    raise AssertionError(t)


def emit_return(b: ir.IRBuilder, ret: ir.Type, values: list[ir.Value]) -> None:
    if isinstance(ret, ir.VoidType):
        b.ret_void()
    elif isinstance(ret, ir.LiteralStructType):
        agg: ir.Value = ir.Constant(ret, ir.Undefined)
        for k, v in enumerate(values):
            agg = b.insert_value(agg, v, k)
        b.ret(agg)
    else:
        b.ret(values[0])


# -- function bodies --------------------------------------------------------------------------------

class _Frame:
    __slots__ = ("kind", "params", "results", "height", "label_bb", "end_bb", "else_bb",
                 "slots", "result_slots", "branched", "param_values", "had_else",
                 "then_live")

    def __init__(self, kind: str, params: tuple[ir.Type, ...], results: tuple[ir.Type, ...],
                 height: int) -> None:
        self.kind = kind
        self.params = params
        self.results = results
        self.height = height
        self.label_bb: ir.Block | None = None
        self.end_bb: ir.Block | None = None
        self.else_bb: ir.Block | None = None
        self.slots: list[ir.Value] | None = None         # label values (loop: params)
        self.result_slots: list[ir.Value] | None = None  # end values (block/if: = slots)
        self.branched = False
        self.param_values: list[ir.Value] = []
        self.had_else = False
        self.then_live = False

    @property
    def label_types(self) -> tuple[ir.Type, ...]:
        return self.params if self.kind == "loop" else self.results


class _FuncLowering:
    def __init__(self, ml: _ModuleLowering, f: Function) -> None:
        self.ml = ml
        self.m = ml.m
        self.f = f
        self.index = f.index
        self.fn = ml.functions[f.index]
        self.ft = ml.func_types[f.index]
        self.lay = ml.lay
        entry = self.fn.append_basic_block("entry")
        self.entry_builder = ir.IRBuilder(entry)
        body = self.fn.append_basic_block("body")
        self.b = ir.IRBuilder(body)
        self.ctx = self.fn.args[0]
        self.frame = self.entry_builder.gep(self.fn.args[1], [ir.Constant(I64, 1)])
        """This function's frame slot, ``&ctx->frames[depth]``."""
        self.stack: list[ir.Value] = []
        self.frames: list[_Frame] = []
        self.live = True
        self.pc = 0
        self.locals: list[ir.Value] = []
        self.local_types: list[ir.Type] = []
        self._io: ir.Value | None = None
        self._io_size = 0
        self._cached: dict[tuple[Any, ...], Any] = {}
        self._trap_blocks: dict[int | None, tuple[ir.Block, Any, Any]] = {}
        self.guarded: dict[int, tuple[ir.Value, int]] = {}
        """pc → (pointer, constant) of the accesses the current copy of a run emits
        without a check (lower_run)."""
        self.ret_type = self.fn.function_type.return_type
        cfg = ml.cfg
        self.metered = cfg.fuel
        self.checked = cfg.fuel or cfg.interruptible
        self._original = cfg.original_ops.get(f.index)
        self._fuel_cost = 1  # the function entry

    # -- helpers --------------------------------------------------------------------------
    def alloca(self, t: ir.Type) -> ir.Value:
        return self.entry_builder.alloca(t)

    def const(self, t: ir.Type, v: int) -> ir.Constant:
        return ir.Constant(t, v)

    def ctx_field(self, name: str, t: ir.Type, invariant: bool = True) -> ir.Value:
        """A field of the context, loaded once in the entry block (they never change)."""
        key = ("ctx", name)
        v = self._cached.get(key)
        if v is None:
            eb = self.entry_builder
            p = eb.bitcast(eb.gep(self.ctx, [ir.Constant(I32, self.lay.ctx[name])]),
                           t.as_pointer())
            v = eb.load(p)
            v.set_metadata("tbaa", self.ml.tbaa(f"ctx.{name}"))
            if invariant:
                v.set_metadata("invariant.load", self.ml.empty_md)
            self._cached[key] = v
        return v

    def struct_field(self, base: ir.Value, offset: int, t: ir.Type, tag: str,
                     invariant: bool = False) -> ir.Value:
        b = self.b
        p = b.bitcast(b.gep(base, [ir.Constant(I64, offset)]) if offset else base,
                      t.as_pointer())
        v = b.load(p)
        v.set_metadata("tbaa", self.ml.tbaa(tag))
        if invariant:
            v.set_metadata("invariant.load", self.ml.empty_md)
        return v

    def _trap_block(self, kind: int | None) -> tuple[ir.Block, ir.PhiInstr, ir.PhiInstr | None]:
        """The function's shared block that traps with ``kind`` (None: a dynamic kind),
        with phis for the pc (and the kind)."""
        entry = self._trap_blocks.get(kind)
        if entry is None:
            blk = self.fn.append_basic_block(f"trap{'' if kind is None else kind}")
            tb = ir.IRBuilder(blk)
            pc = tb.phi(I32)
            kphi = tb.phi(I32) if kind is None else None
            kv = kphi if kphi is not None else ir.Constant(I32, kind)
            depth = self.ml.depth_of(tb, self.ctx, self.frame)
            tb.call(self.ml.runtime["rt_trap"], [self.ctx, kv, ir.Constant(I32, self.index),
                                                 pc, depth])
            tb.unreachable()
            entry = (blk, pc, kphi)
            self._trap_blocks[kind] = entry
        return entry

    def trap(self, kind: str) -> None:
        """Trap unconditionally at the current instruction (ends the current block)."""
        blk, pc, _ = self._trap_block(TRAP[kind])
        pc.add_incoming(ir.Constant(I32, self.pc), self.b.block)
        self.b.branch(blk)

    def trap_if(self, cond: ir.Value, kind: str) -> None:
        b = self.b
        blk, pc, _ = self._trap_block(TRAP[kind])
        cont = self.fn.append_basic_block("ok")
        pc.add_incoming(ir.Constant(I32, self.pc), b.block)
        br = b.cbranch(cond, blk, cont)
        br.set_weights([1, 2000])
        b.position_at_end(cont)

    def trap_status(self, status: ir.Value) -> None:
        """Trap with the kind a runtime call returned, when it is not 0."""
        b = self.b
        blk, pc, kphi = self._trap_block(None)
        assert kphi is not None
        cont = self.fn.append_basic_block("ok")
        pc.add_incoming(ir.Constant(I32, self.pc), b.block)
        kphi.add_incoming(status, b.block)
        br = b.cbranch(b.icmp_unsigned("!=", status, ir.Constant(I32, 0)), blk, cont)
        br.set_weights([1, 2000])
        b.position_at_end(cont)

    def pop(self) -> ir.Value:
        return self.stack.pop()

    def popn(self, n: int) -> list[ir.Value]:
        if n == 0:
            return []
        vals = self.stack[-n:]
        del self.stack[-n:]
        return vals

    def push(self, v: ir.Value) -> None:
        self.stack.append(v)

    def io_buffer(self, n: int) -> ir.Value:
        """A u64 scratch array of at least ``n`` slots (one per function, grown as needed)."""
        n = max(n, 1)
        if self._io is None or n > self._io_size:
            a = self.alloca(ir.ArrayType(I64, n))
            self._io = self.entry_builder.bitcast(a, I64P)
            self._io_size = n
        return self._io

    def ctx_ptr(self, name: str, t: ir.Type) -> ir.Value:
        """Pointer to a context field that changes while the guest runs."""
        key = ("ctx_ptr", name)
        p = self._cached.get(key)
        if p is None:
            eb = self.entry_builder
            p = eb.bitcast(eb.gep(self.ctx, [ir.Constant(I32, self.lay.ctx[name])]),
                           t.as_pointer())
            self._cached[key] = p
        return p

    # -- fuel and interrupts --------------------------------------------------------------
    def charge(self, ins: Instr) -> None:
        """Account the fuel cost of ``ins`` (before it is lowered)."""
        name = ins.op.name
        original = name if self._original is None else self._original.get(ins.pc)
        if original is not None:
            if original not in FUEL_FREE:
                self._fuel_cost += 1
            if name in FUEL_BY_OPERAND and self.live:
                self.burn(self.b.zext(self.stack[-1], I64))
            if name in FUEL_FLUSH:
                self.flush_fuel()
        elif name == "end" and self.frames and self.frames[-1].kind == "block":
            # Woven code charges nothing (a probe that stops the run leaves the same
            # budget as on wasm), but pending costs settle where a woven block ends:
            # the block an exit probe wraps the body in, which returns branch to.
            self.flush_fuel()

    def burn(self, amount: ir.Value) -> None:
        """ctx->fuel -= amount."""
        b = self.b
        p = self.ctx_ptr("fuel", I64)
        tag = self.ml.tbaa("ctx.fuel")
        v = b.load(p)
        v.set_metadata("tbaa", tag)
        b.store(b.sub(v, amount), p).set_metadata("tbaa", tag)

    def flush_fuel(self) -> None:
        """Subtract the cost accumulated since the last flush."""
        cost, self._fuel_cost = self._fuel_cost, 0
        if cost and self.live and not self.b.block.is_terminated:
            self.burn(ir.Constant(I64, cost))

    def check_point(self) -> None:
        """The fuel and interrupt checks, at the current instruction (a loop or a call)."""
        b = self.b
        cfg = self.ml.cfg
        if cfg.fuel:
            v = b.load(self.ctx_ptr("fuel", I64))
            v.set_metadata("tbaa", self.ml.tbaa("ctx.fuel"))
            self.trap_if(b.icmp_signed("<", v, ir.Constant(I64, 0)), "fuel")
        if cfg.interruptible:
            flag = b.load_atomic(self.ctx_ptr("interrupt", I32), "monotonic", 4)
            self.trap_if(b.icmp_unsigned("!=", flag, ir.Constant(I32, 0)), "interrupt")

    def sig_id(self, type_index: int) -> ir.Value:
        """The process-wide signature id of type ``type_index`` (ctx->sig_ids, set at
        instantiation: funcrefs of every instance carry ids from the same numbering)."""
        key = ("sig", type_index)
        v = self._cached.get(key)
        if v is None:
            eb = self.entry_builder
            ids = self.ctx_field("sig_ids", I32.as_pointer())
            v = eb.load(eb.gep(ids, [ir.Constant(I64, type_index)]))
            v.set_metadata("tbaa", self.ml.tbaa("ctx.sig_ids[]"))
            v.set_metadata("invariant.load", self.ml.empty_md)
            self._cached[key] = v
        return v

    def link_buffer(self) -> ir.Value:
        """The function's rt_link, for calls into another instance's code."""
        key = ("link",)
        p = self._cached.get(key)
        if p is None:
            words = (self.lay.link_size + 7) // 8
            p = self.entry_builder.bitcast(self.alloca(ir.ArrayType(I64, words)), I8P)
            self._cached[key] = p
        return p

    def record_frame(self) -> ir.Value:
        """frames[depth] = the call's module offset, before a call; returns what the
        callee gets (this function's slot). (``func << 32 | pc`` took a 10-byte constant,
        which LLVM kept in a register or a spill slot across the calls of tak and fib.)"""
        st = self.b.store(ir.Constant(I64, self.f.body_offset + self.pc), self.frame)
        st.set_metadata("tbaa", self.ml.tbaa("frames"))
        return self.frame

    # -- memory -------------------------------------------------------------------------
    def mem_base_and_size(self, mem: int) -> tuple[ir.Value, ir.Value]:
        key = ("mem", mem)
        cached = self._cached.get(key)
        if cached is None:
            # ctx->mems[mem] (a memory object, maybe shared) and its base never change: the
            # whole maximum is reserved when the memory is created.
            eb = self.entry_builder
            tag = self.ml.mem_tag(mem)
            if mem == self.ml.cfg.state_memory:
                # Inline after the context: a constant offset from ctx, which every
                # function keeps anyway (no load per call, no register of its own).
                assert mem in self.ml.cfg.fixed_memory_sizes
                base = eb.gep(self.ctx, [ir.Constant(I64, self.lay.state_offset)],
                              inbounds=True)
                self._cached[key] = (base, None)
                return base, ir.Constant(I64, self.ml.cfg.fixed_memory_sizes[mem])
            if mem < self.lay.inline_mems:
                # Copies in the context (rt_memory_attach keeps them): one load each.
                def inline(name: str) -> ir.Value:
                    off = self.lay.ctx[name] + 8 * mem
                    v = eb.load(eb.bitcast(eb.gep(self.ctx, [ir.Constant(I64, off)]),
                                           I8P.as_pointer()))
                    v.set_metadata("tbaa", self.ml.tbaa(f"ctx.{name}[]"))
                    v.set_metadata("invariant.load", self.ml.empty_md)
                    return v
                base = inline("mem_bases")
                # Its size: the context's copy (rt_memory's mirrors keep it), addressed
                # from ctx; no register for the memory object across calls.
                sp = eb.bitcast(eb.gep(self.ctx, [ir.Constant(
                    I64, self.lay.ctx["mem_sizes"] + 8 * mem)]), I64P)
                cached = (base, sp)
                self._cached[key] = cached
            else:
                mems = self.ctx_field("mems", I8P.as_pointer())
                mp = eb.load(eb.gep(mems, [ir.Constant(I64, mem)]))
                mp.set_metadata("tbaa", self.ml.tbaa("ctx.mems[]"))
                mp.set_metadata("invariant.load", self.ml.empty_md)
                bp = eb.bitcast(eb.gep(mp, [ir.Constant(I64, self.lay.memory["base"])]),
                                I8P.as_pointer())
                base = eb.load(bp)
                base.set_metadata("tbaa", self.ml.tbaa(f"{tag}.base"))
                base.set_metadata("invariant.load", self.ml.empty_md)
                sp = eb.bitcast(eb.gep(mp, [ir.Constant(I64, self.lay.memory["size"])]), I64P)
                cached = (base, sp)
                self._cached[key] = cached
        base, sp = cached
        fixed = self.ml.cfg.fixed_memory_sizes.get(mem)
        if fixed is not None:
            return base, ir.Constant(I64, fixed)
        size = self.b.load(sp)
        size.set_metadata("tbaa", self.ml.tbaa(f"{self.ml.mem_tag(mem)}.size"
                                               if mem >= self.lay.inline_mems
                                               else "ctx.mem_sizes[]"))
        size.set_metadata("range", self.ml.size_range(mem))
        return base, size

    def address(self, mem: int, addr: ir.Value, offset: int, nbytes: int) -> ir.Value:
        """Checked pointer to ``nbytes`` at ``addr + offset`` of memory ``mem``.

        When the memory's minimum size covers ``k = offset + nbytes`` (so ``size - k``
        cannot wrap), the check is ``addr > size - k``: the value compared is the address
        itself, one for all the accesses through it whatever their offsets, and the limit
        is computed where the size is loaded. ``addr + k > size`` made one value per
        offset, which LLVM hoisted out of loops and then kept in registers, or spilled,
        across calls (musl's printf_core: some 50 spills in its entry block).
        """
        b = self.b
        g = self.guarded.get(self.pc) if self.guarded else None
        if g is not None:  # covered by its run's merged check (lower_run)
            p, off = g
            return b.gep(p, [ir.Constant(I64, off)]) if off else p
        base, size = self.mem_base_and_size(mem)
        a = b.zext(addr, I64)
        ea = b.add(a, ir.Constant(I64, offset)) if offset else a
        k = offset + nbytes
        if not isinstance(size, ir.Constant) and k <= self.ml.min_size(mem):
            limit = b.sub(size, ir.Constant(I64, k), flags=["nuw"])
            self.trap_if(b.icmp_unsigned(">", a, limit), "memory")
        else:
            self.trap_if(b.icmp_unsigned(">", b.add(ea, ir.Constant(I64, nbytes)), size),
                         "memory")
        return b.gep(base, [ea])

    def load(self, mem: int, addr: ir.Value, offset: int, t: ir.Type) -> ir.Value:
        b = self.b
        nbytes = t.width // 8 if isinstance(t, ir.IntType) else (4 if t == F32 else 8)
        p = self.address(mem, addr, offset, nbytes)
        v = b.load(b.bitcast(p, t.as_pointer()), align=1)
        v.set_metadata("tbaa", self.ml.tbaa(self.ml.mem_tag(mem)))
        return v

    def store(self, mem: int, addr: ir.Value, offset: int, v: ir.Value) -> None:
        b = self.b
        t = v.type
        nbytes = t.width // 8 if isinstance(t, ir.IntType) else (4 if t == F32 else 8)
        p = self.address(mem, addr, offset, nbytes)
        st = b.store(v, b.bitcast(p, t.as_pointer()), align=1)
        st.set_metadata("tbaa", self.ml.tbaa(self.ml.mem_tag(mem)))

    # -- globals and tables ---------------------------------------------------------------
    def global_ptr(self, idx: int, t: ir.Type) -> ir.Value:
        key = ("global", idx)
        p = self._cached.get(key)
        if p is None:
            eb = self.entry_builder
            g = self.ctx_field("globals", I64P)
            slot = eb.gep(g, [ir.Constant(I32, idx)])
            if self.ml.shared_global(idx):
                cell = eb.load(slot)
                cell.set_metadata("tbaa", self.ml.tbaa(f"global{idx}.cell"))
                cell.set_metadata("invariant.load", self.ml.empty_md)
                p = eb.inttoptr(cell, t.as_pointer())
            else:
                p = eb.bitcast(slot, t.as_pointer())
            self._cached[key] = p
        return p

    def global_tag(self, idx: int) -> str:
        return "global.imported" if self.ml.shared_global(idx) else f"global{idx}"

    def table_base(self, t: int) -> ir.Value:
        key = ("table", t)
        p = self._cached.get(key)
        if p is None:
            tables = self.ctx_field("tables", I8P.as_pointer())
            p = self.entry_builder.load(self.entry_builder.gep(tables, [ir.Constant(I64, t)]))
            p.set_metadata("tbaa", self.ml.tbaa("ctx.tables[]"))
            p.set_metadata("invariant.load", self.ml.empty_md)
            self._cached[key] = p
        return p

    def table_size(self, t: int) -> ir.Value:
        fixed = self.ml.fixed_table_size(t)
        if fixed is not None:
            return ir.Constant(I32, fixed)
        return self.struct_field(self.table_base(t), self.lay.table["size"], I32,
                                 f"{self.ml.table_tag(t)}.size")

    def table_elems(self, t: int) -> ir.Value:
        """``tables[t]->elems``: loaded once, in the entry block, when the table can never
        grow (so never reallocates its elements), else at each use."""
        tag = f"{self.ml.table_tag(t)}.elems"
        if self.ml.fixed_table_size(t) is None:
            return self.struct_field(self.table_base(t), self.lay.table["elems"], I64P, tag)
        key = ("elems", t)
        v = self._cached.get(key)
        if v is None:
            eb = self.entry_builder
            v = eb.load(eb.bitcast(eb.gep(self.table_base(t),
                                          [ir.Constant(I64, self.lay.table["elems"])]),
                                   I64P.as_pointer()))
            v.set_metadata("tbaa", self.ml.tbaa(tag))
            v.set_metadata("invariant.load", self.ml.empty_md)
            self._cached[key] = v
        return v

    def table_elem_ptr(self, t: int, idx: ir.Value) -> ir.Value:
        """Checked pointer to element ``idx`` of table ``t``."""
        b = self.b
        size = self.table_size(t)
        self.trap_if(b.icmp_unsigned(">=", idx, size), "table")
        return b.gep(self.table_elems(t), [b.zext(idx, I64)])

    # -- control ----------------------------------------------------------------------------
    def block_sig(self, ins: Instr) -> tuple[tuple[ir.Type, ...], tuple[ir.Type, ...]]:
        ft = ins.imm.resolve(self.m.types)
        return tuple(lltype(t) for t in ft.params), tuple(lltype(t) for t in ft.results)

    def ensure_slots(self, fr: _Frame) -> list[ir.Value]:
        if fr.slots is None:
            fr.slots = [self.alloca(t) for t in fr.label_types]
            if fr.kind != "loop":
                fr.result_slots = fr.slots
        return fr.slots

    def branch_to(self, fr: _Frame, values: list[ir.Value]) -> None:
        """Store the carried values and jump to the frame's label (builder stays put)."""
        b = self.b
        if fr.kind == "func":
            emit_return(b, self.ret_type, values)
            return
        for slot, v in zip(self.ensure_slots(fr), values, strict=False):
            b.store(v, slot)
        fr.branched = True
        assert fr.label_bb is not None
        b.branch(fr.label_bb)

    def new_block(self, name: str = "") -> ir.Block:
        return self.fn.append_basic_block(name)

    def skip_unreachable(self, instrs: list[Instr], i: int) -> int:
        """From dead code at ``i``, the index of the ``else``/``end`` that ends it."""
        nest = 0
        n = len(instrs)
        while i < n:
            name = instrs[i].op.name
            if name in ("block", "loop", "if"):
                nest += 1
            elif name == "end":
                if nest == 0:
                    return i
                nest -= 1
            elif name == "else" and nest == 0:
                return i
            i += 1
        return n - 1

    # -- the body -------------------------------------------------------------------------------
    def run(self) -> None:
        f = self.f
        ft = self.ft
        eb = self.entry_builder
        # Locals: parameters, then declared locals zeroed.
        for k, t in enumerate(ft.params):
            lt = lltype(t)
            a = eb.alloca(lt)
            eb.store(self.fn.args[2 + k], a)
            self.locals.append(a)
            self.local_types.append(lt)
        for count, t in f.local_groups:
            lt = lltype(t)
            zero = ir.Constant(lt, 0)
            for _ in range(count):
                a = eb.alloca(lt)
                eb.store(zero, a)
                self.locals.append(a)
                self.local_types.append(lt)
        self.pc = f.instrs[0].pc if f.instrs else 0
        if not self._is_small_leaf():
            self.prologue()
        results = tuple(lltype(t) for t in ft.results)
        top = _Frame("func", (), results, 0)
        self.frames.append(top)
        instrs = f.instrs
        runs, loops = self._guard_runs()
        i = 0
        n = len(instrs)
        while i < n:
            if not self.live:
                i = self.skip_unreachable(instrs, i)
            loop = loops.get(i)
            run = runs.get(i)
            if loop is not None:
                self.lower_loop(loop, runs.get(i + 1))
                i = loop.end
            elif run is not None:
                self.lower_run(run)
                i = run.end
            else:
                self.lower_instr(instrs[i])
                i += 1
        eb.branch(self.fn.blocks[1])

    def lower_instr(self, ins: Instr) -> None:
        self.pc = ins.pc
        name = ins.op.name
        handler = LOWERINGS.get(name)
        if handler is None:
            feature = UNSUPPORTED.get(name, ins.op.feature)
            raise UnsupportedFeature(feature, self.f.body_offset + ins.pc,
                                     f"{name} in the native backend")
        if self.metered:
            self.charge(ins)
        handler(self, ins)

    def _guard_runs(self) -> tuple[dict[int, guards.Run], dict[int, guards.Loop]]:
        """Straight-line runs whose accesses share merged bounds checks, and counted
        loops checked once before they start (guards.py). Not with fuel: its accounting
        is per instruction, in one copy."""
        if self.metered:
            return {}, {}
        ml = self.ml
        eligible = {mem: ml.min_size(mem) for mem in range(len(ml.m.all_memories()))
                    if mem != ml.cfg.state_memory and ml.min_size(mem) > 0}
        if not eligible:
            return {}, {}
        i32_locals = {k for k, t in enumerate(self.local_types) if t == I32}
        runs = {} if self._probed() else guards.find_runs(self.f, i32_locals, eligible)
        return runs, guards.find_loops(self.f, i32_locals, eligible)

    def _probed(self) -> bool:
        """Whether the function updates probe state. Its runs keep a check per access:
        there, copies cost more than the checks they save (native icount on bytecode's
        interpreter loop 1.13 -> 1.8x wasmtime, though its uninstrumented code gains).
        Its counted loops are still checked once: with coverage, sha 1.86 -> 1.59 s and
        nbody 1.65 -> 1.37 s; with icount, 1.33 -> 1.13 s and 1.38 -> 1.27 s."""
        state = self.ml.cfg.state_memory
        return state is not None and any(
            ins.op.name in guards.PLAIN_MEMORY and ins.imm[2] == state for ins in self.f.instrs)

    def base_of(self, g: guards.Group) -> ir.Value:
        """The 32-bit value of ``g``'s base, from its locals as they are now (wrapping
        i32 arithmetic, as in Wasm)."""
        b = self.b
        value = None
        for local, factor in g.base:
            v = b.load(self.locals[local])
            if factor != 1:
                v = b.mul(v, ir.Constant(I32, factor))
            value = v if value is None else b.add(value, v)
        assert value is not None
        return value

    def lower_loop(self, loop: guards.Loop, run: guards.Run | None) -> None:
        """Emit ``loop`` twice: with no check on the accesses of ``loop.groups`` when
        their addresses in the first and the last iteration are in bounds (then all
        are: each base moves by a constant stride, and memories never shrink), and as
        usual otherwise, its body being ``run`` if that has merged checks."""
        b = self.b
        assert run is None or (run.start, run.end) == (loop.run.start, loop.run.end)
        ok = self.loop_in_bounds(loop)
        fast = self.fn.append_basic_block("loop_fast")
        exact = self.fn.append_basic_block("loop_exact")
        joined = self.fn.append_basic_block("loop_joined")
        b.cbranch(ok, fast, exact).set_weights([2000, 1])
        instrs = self.f.instrs
        entry_stack = list(self.stack)
        for block, fast_copy in ((fast, True), (exact, False)):
            self.stack = list(entry_stack)
            b.position_at_end(block)
            self.lower_instr(instrs[loop.start])
            if fast_copy:
                self.lower_run(loop.run, loop.groups)
            elif run is not None:
                self.lower_run(run)
            else:
                for ins in instrs[loop.run.start:loop.run.end]:
                    self.lower_instr(ins)
            for ins in instrs[loop.run.end:loop.end]:  # br_if 0, end
                self.lower_instr(ins)
            assert self.live and len(self.stack) == len(entry_stack)
            b.branch(joined)
        b.position_at_end(joined)
        self.stack = entry_stack

    def loop_in_bounds(self, loop: guards.Loop) -> ir.Value:
        """Whether every access of ``loop.groups`` in every iteration is in bounds, from
        the locals' values at the loop's entry (64-bit arithmetic: nothing wraps)."""
        b = self.b

        def c64(v: int) -> ir.Constant:
            return ir.Constant(I64, v)

        signed = loop.exit != "lt_u"
        widen = b.sext if signed else b.zext
        i0 = widen(b.load(self.locals[loop.iv]), I64)
        terms, n = loop.bound
        bound = widen(b.load(self.locals[terms[0][0]]), I64) if terms else c64(
            n if signed else n & 0xFFFFFFFF)
        step = loop.step
        if loop.exit == "ne":
            # iv + step reaches the bound after (bound - i0) / step >= 1 iterations.
            diff = b.sub(bound, i0)
            ok = b.icmp_signed(">" if step > 0 else "<", diff, c64(0))
            if abs(step) != 1:
                ok = b.and_(ok, b.icmp_signed("==", b.srem(diff, c64(step)), c64(0)))
            last = b.sub(b.sdiv(diff, c64(step)), c64(1))
        else:
            # iv < bound on entry, and iv + step cannot wrap past the bound.
            top = (1 << 31) - 1 if signed else (1 << 32) - 1
            ok = b.and_(b.icmp_signed("<", i0, bound),
                        b.icmp_signed("<=", b.add(bound, c64(step - 1)), c64(top)))
            last = b.sdiv(b.sub(b.sub(bound, c64(1)), i0), c64(step))
        # last: the index of the last iteration, 0-based (garbage when not ok).
        for g, stride in zip(loop.groups, loop.strides, strict=True):
            _base, size = self.mem_base_and_size(g.mem)
            first = b.zext(self.base_of(g), I64)
            limit = b.sub(size, c64(g.hi - g.lo), flags=["nuw"])
            ends = [first]
            if stride:
                final = b.add(first, b.mul(last, c64(stride)))
                # The base does not wrap between its two ends (a negative one is huge).
                ok = b.and_(ok, b.icmp_unsigned("<=", final, c64(0xFFFFFFFF)))
                ends.append(final)
            for e in ends:  # e + lo >= 0 and e + hi <= size, as in lower_run
                ok = b.and_(ok, b.icmp_unsigned("<=", b.add(e, c64(g.lo)), limit))
        return ok

    def lower_run(self, run: guards.Run, covered: Sequence[guards.Group] = ()) -> None:
        """Emit ``run`` twice: without the checks its merged checks cover, when they
        pass, and exactly otherwise; the operand stacks meet in phis. The accesses of
        ``covered`` are in bounds, checked already (lower_loop): no check, in both."""
        b = self.b
        ok = None
        guarded: dict[int, tuple[ir.Value, int]] = {}
        for g in covered:
            base, _size = self.mem_base_and_size(g.mem)
            p = b.gep(base, [b.zext(self.base_of(g), I64)])
            for pc, off in g.at.items():
                guarded[pc] = (p, off)
        for g in run.groups:
            base, size = self.mem_base_and_size(g.mem)
            a = b.zext(self.base_of(g), I64)
            # p + lo >= 0 and p + hi <= size, as one unsigned compare (a negative
            # p + lo wraps to a huge value); size - span cannot wrap (span <= minimum).
            low = b.add(a, ir.Constant(I64, g.lo))
            limit = b.sub(size, ir.Constant(I64, g.hi - g.lo), flags=["nuw"])
            c = b.icmp_unsigned("<=", low, limit)
            ok = c if ok is None else b.and_(ok, c)
            p = b.gep(base, [a])
            for pc, off in g.at.items():
                guarded[pc] = (p, off)
        if ok is None:  # all covered: one copy
            self.guarded = guarded
            for ins in self.f.instrs[run.start:run.end]:
                self.lower_instr(ins)
            self.guarded = {}
            return
        covered_only = {pc: guarded[pc] for g in covered for pc in g.at}
        fast = self.fn.append_basic_block("fast")
        exact = self.fn.append_basic_block("exact")
        joined = self.fn.append_basic_block("joined")
        b.cbranch(ok, fast, exact).set_weights([2000, 1])
        entry_stack = list(self.stack)
        body = self.f.instrs[run.start:run.end]
        ends = []
        for block, checks in ((fast, guarded), (exact, covered_only)):
            self.stack = list(entry_stack)
            self.guarded = checks
            b.position_at_end(block)
            for ins in body:
                self.lower_instr(ins)
            assert self.live
            ends.append((b.block, self.stack))
            b.branch(joined)
        self.guarded = {}
        b.position_at_end(joined)
        (fast_end, fast_stack), (exact_end, exact_stack) = ends
        merged = []
        for x, y in zip(fast_stack, exact_stack, strict=True):
            if x is not y:
                phi = b.phi(x.type)
                phi.add_incoming(x, fast_end)
                phi.add_incoming(y, exact_end)
                x = phi
            merged.append(x)
        self.stack = merged

    def _is_small_leaf(self) -> bool:
        """A function that calls nothing and has a small frame cannot exhaust the stack
        (the runtime keeps a margin below the limit), so it needs no entry check."""
        if len(self.locals) > 256:
            return False
        for ins in self.f.instrs:
            name = ins.op.name
            if name == "call" or (name == "call_indirect" and
                                  ins.imm[1] != self.ml.cfg.probe_table):
                return False
        return True

    def prologue(self) -> None:
        """Trap with stack exhaustion when the native stack or the call depth runs out."""
        b = self.b
        sp = b.call(self.ml.intrinsic("llvm.stacksave.p0", I8P, []), [])
        limit = self.ctx_field("stack_limit", I64)
        low = b.icmp_unsigned("<", b.ptrtoint(sp, I64), limit)
        deep = b.icmp_unsigned(">=", self.frame, self.ctx_field("frames_limit", I64P))
        self.trap_if(b.or_(low, deep), "stack")

    # end of the function: see _end


# -- control instructions -------------------------------------------------------------------------

@_lowers("nop")
def _nop(fl: _FuncLowering, ins: Instr) -> None:
    pass


@_lowers("unreachable")
def _unreachable(fl: _FuncLowering, ins: Instr) -> None:
    fl.trap("unreachable")
    fl.live = False
    del fl.stack[fl.frames[-1].height:]


@_lowers("block", "loop")
def _block(fl: _FuncLowering, ins: Instr) -> None:
    params, results = fl.block_sig(ins)
    height = len(fl.stack) - len(params)
    fr = _Frame(ins.op.name, params, results, height)
    if fr.kind == "loop":
        b = fl.b
        header = fl.new_block("loop")
        fr.label_bb = header
        vals = fl.popn(len(params))
        if params:
            slots = fl.ensure_slots(fr)
            for s, v in zip(slots, vals, strict=False):
                b.store(v, s)
        b.branch(header)
        b.position_at_end(header)
        if fl.checked:
            fl.check_point()
        if params:
            for s, _t in zip(fl.ensure_slots(fr), params, strict=False):
                fl.push(b.load(s))
    else:
        fr.end_bb = fl.new_block("block_end")
        fr.label_bb = fr.end_bb
    fl.frames.append(fr)


@_lowers("if")
def _if(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    params, results = fl.block_sig(ins)
    cond = fl.pop()
    fr = _Frame("if", params, results, len(fl.stack) - len(params))
    fr.param_values = fl.stack[len(fl.stack) - len(params):] if params else []
    then_bb = fl.new_block("then")
    fr.else_bb = fl.new_block("else")
    fr.end_bb = fl.new_block("if_end")
    fr.label_bb = fr.end_bb
    b.cbranch(b.icmp_unsigned("!=", cond, ir.Constant(I32, 0)), then_bb, fr.else_bb)
    b.position_at_end(then_bb)
    fl.frames.append(fr)


@_lowers("else")
def _else(fl: _FuncLowering, ins: Instr) -> None:
    fr = fl.frames[-1]
    b = fl.b
    if fl.live:
        vals = fl.popn(len(fr.results))
        fl.branch_to(fr, vals)
    fr.had_else = True
    del fl.stack[fr.height:]
    assert fr.else_bb is not None
    b.position_at_end(fr.else_bb)
    fl.stack.extend(fr.param_values)
    fl.live = True


@_lowers("end")
def _end(fl: _FuncLowering, ins: Instr) -> None:
    fr = fl.frames.pop()
    b = fl.b
    if fr.kind == "func":
        if fl.live:
            emit_return(b, fl.ret_type, fl.popn(len(fr.results)))
        fl.live = False
        return
    if fr.kind == "loop":
        # Only fallthrough reaches a loop's end: the stack carries on as it is.
        return
    if fr.kind == "if" and not fr.had_else:
        # The implicit else passes the parameters through as results.
        if fl.live:
            vals = fl.popn(len(fr.results))
            fl.branch_to(fr, vals)
        assert fr.else_bb is not None
        b.position_at_end(fr.else_bb)
        fl.stack[fr.height:] = []
        fl.branch_to(fr, list(fr.param_values))
        fl.live = False
    if not fr.branched:
        # Nobody jumps here: fall through in place (or stay dead).
        fr.end_bb.function.blocks.remove(fr.end_bb)  # type: ignore[union-attr]
        if fr.kind == "if" and fr.had_else is False:
            pass
        if not fl.live:
            del fl.stack[fr.height:]
        return
    if fl.live:
        vals = fl.popn(len(fr.results))
        fl.branch_to(fr, vals)
    del fl.stack[fr.height:]
    assert fr.end_bb is not None
    b.position_at_end(fr.end_bb)
    for s in fr.result_slots or []:
        fl.push(b.load(s))
    fl.live = True


def _label(fl: _FuncLowering, depth: int) -> _Frame:
    return fl.frames[-1 - depth]


def _carried(fl: _FuncLowering, fr: _Frame) -> list[ir.Value]:
    n = len(fr.label_types)
    return fl.stack[len(fl.stack) - n:] if n else []


def _dead(fl: _FuncLowering) -> None:
    fl.live = False
    del fl.stack[fl.frames[-1].height:]


@_lowers("br")
def _br(fl: _FuncLowering, ins: Instr) -> None:
    fr = _label(fl, ins.imm)
    fl.branch_to(fr, _carried(fl, fr))
    _dead(fl)


@_lowers("br_if")
def _br_if(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    cond = b.icmp_unsigned("!=", fl.pop(), ir.Constant(I32, 0))
    fr = _label(fl, ins.imm)
    cont = fl.new_block("br_if_cont")
    if fr.kind == "func":
        taken = fl.new_block("br_if_ret")
        b.cbranch(cond, taken, cont)
        b.position_at_end(taken)
        emit_return(b, fl.ret_type, _carried(fl, fr))
    else:
        for slot, v in zip(fl.ensure_slots(fr), _carried(fl, fr), strict=False):
            b.store(v, slot)
        fr.branched = True
        assert fr.label_bb is not None
        b.cbranch(cond, fr.label_bb, cont)
    b.position_at_end(cont)


@_lowers("br_table")
def _br_table(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    index = fl.pop()
    labels, default = ins.imm
    targets: dict[int, ir.Block] = {}

    def target(depth: int) -> ir.Block:
        blk = targets.get(depth)
        if blk is None:
            fr = _label(fl, depth)
            if fr.kind != "func" and not fr.label_types:
                fr.branched = True
                assert fr.label_bb is not None
                blk = fr.label_bb
            else:
                blk = fl.new_block("br_table_to")
                with b.goto_block(blk):
                    fl.branch_to(fr, _carried(fl, fr))
            targets[depth] = blk
        return blk

    sw = b.switch(index, target(default))
    for k, depth in enumerate(labels):
        sw.add_case(ir.Constant(I32, k), target(depth))
    _dead(fl)


@_lowers("return")
def _return(fl: _FuncLowering, ins: Instr) -> None:
    emit_return(fl.b, fl.ret_type, fl.popn(len(fl.ft.results)))
    _dead(fl)


def _call_results(fl: _FuncLowering, r: ir.Value, ft: FuncType) -> None:
    if len(ft.results) == 1:
        fl.push(r)
    elif ft.results:
        for k in range(len(ft.results)):
            fl.push(fl.b.extract_value(r, k))


@_lowers("call")
def _call(fl: _FuncLowering, ins: Instr) -> None:
    ft = fl.ml.func_types[ins.imm]
    if fl.checked:
        fl.check_point()
    args = fl.popn(len(ft.params))
    frame = fl.record_frame()
    r = fl.b.call(fl.ml.functions[ins.imm], [fl.ctx, frame, *args])
    _call_results(fl, r, ft)


@_lowers("call_indirect")
def _call_indirect(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    ti, table = ins.imm
    ft = fl.m.types[ti]
    callee = fl.pop()
    args = fl.popn(len(ft.params))
    if table == fl.ml.cfg.probe_table:
        io = fl.io_buffer(len(args))
        for k, v in enumerate(args):
            b.store(to_bits(b, v), b.gep(io, [ir.Constant(I32, k)]))
        # The probe's frame record, as for a call: a call back into this instance from
        # the probe continues below it.
        st = fl.ml.host_call(b, fl.ctx, fl.record_frame(), fl.ml.runtime["rt_probe_call"],
                             [fl.ctx, callee, io, ir.Constant(I32, len(args))])
        fl.trap_status(st)
        return
    if fl.checked:
        fl.check_point()
    lay = fl.lay
    slot = fl.table_elem_ptr(table, callee)
    ref = b.load(slot)
    ref.set_metadata("tbaa", fl.ml.tbaa(f"{fl.ml.table_tag(table)}.elem"))
    fl.trap_if(b.icmp_unsigned("==", ref, ir.Constant(I64, 0)), "null")
    desc = b.inttoptr(ref, I8P)
    tid = fl.struct_field(desc, lay.funcref["type_id"], I32, "funcref.type_id", invariant=True)
    fl.trap_if(b.icmp_unsigned("!=", tid, fl.sig_id(ti)), "signature")
    code = fl.struct_field(desc, lay.funcref["code"], I8P, "funcref.code", invariant=True)
    cctx = fl.struct_field(desc, lay.funcref["ctx"], I8P, "funcref.ctx", invariant=True)
    fnty = fl.ml.fn_type(ft)
    fp = b.bitcast(code, fnty.as_pointer())
    frame = fl.record_frame()
    # A funcref of another instance (a shared table): hand it this run (stack limit, fuel,
    # the way back for traps) around the call, and its own frame slot at the same depth.
    # Rare, so out of line.
    foreign = b.icmp_unsigned("!=", cctx, fl.ctx)
    link = fl.link_buffer()
    before = b.block
    with b.if_then(foreign, likely=False):
        mine = fl.ml.depth_of(b, fl.ctx, frame)
        b.call(fl.ml.runtime["rt_enter"], [fl.ctx, cctx, link,
                                           b.add(mine, ir.Constant(I32, 1))])
        theirs = b.gep(fl.ml.frames_of(b, cctx), [b.zext(mine, I64)])
        inside = b.block
    slot = b.phi(I64P)
    slot.add_incoming(frame, before)
    slot.add_incoming(theirs, inside)
    r = b.call(fp, [cctx, slot, *args])
    with b.if_then(foreign, likely=False):
        b.call(fl.ml.runtime["rt_leave"], [fl.ctx, cctx, link])
    _call_results(fl, r, ft)


# -- parametric and variables ----------------------------------------------------------------------

@_lowers("drop")
def _drop(fl: _FuncLowering, ins: Instr) -> None:
    fl.pop()


@_lowers("select")
def _select(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    c = fl.pop()
    v2 = fl.pop()
    v1 = fl.pop()
    fl.push(b.select(b.icmp_unsigned("!=", c, ir.Constant(I32, 0)), v1, v2))


@_lowers("local.get")
def _local_get(fl: _FuncLowering, ins: Instr) -> None:
    fl.push(fl.b.load(fl.locals[ins.imm]))


@_lowers("local.set")
def _local_set(fl: _FuncLowering, ins: Instr) -> None:
    fl.b.store(fl.pop(), fl.locals[ins.imm])


@_lowers("local.tee")
def _local_tee(fl: _FuncLowering, ins: Instr) -> None:
    fl.b.store(fl.stack[-1], fl.locals[ins.imm])


@_lowers("global.get")
def _global_get(fl: _FuncLowering, ins: Instr) -> None:
    idx = ins.imm
    gt = fl.ml.globals_types[idx]
    t = lltype(gt.valtype)
    const = fl.ml.const_globals.get(idx)
    if const is not None:
        kind, bits = const
        if kind in ("i32", "i64"):
            fl.push(ir.Constant(t, bits))
        else:
            fl.push(_float_const(t, bits))
        return
    v = fl.b.load(fl.global_ptr(idx, t))
    v.set_metadata("tbaa", fl.ml.tbaa(fl.global_tag(idx)))
    if not gt.mutable:
        v.set_metadata("invariant.load", fl.ml.empty_md)
    fl.push(v)


@_lowers("global.set")
def _global_set(fl: _FuncLowering, ins: Instr) -> None:
    v = fl.pop()
    st = fl.b.store(v, fl.global_ptr(ins.imm, v.type))
    st.set_metadata("tbaa", fl.ml.tbaa(fl.global_tag(ins.imm)))


# -- memory ------------------------------------------------------------------------------------------

_LOADS: dict[str, tuple[ir.Type, ir.Type, str]] = {
    "i32.load": (I32, I32, ""), "i64.load": (I64, I64, ""),
    "f32.load": (F32, F32, ""), "f64.load": (F64, F64, ""),
    "i32.load8_s": (I8, I32, "s"), "i32.load8_u": (I8, I32, "u"),
    "i32.load16_s": (I16, I32, "s"), "i32.load16_u": (I16, I32, "u"),
    "i64.load8_s": (I8, I64, "s"), "i64.load8_u": (I8, I64, "u"),
    "i64.load16_s": (I16, I64, "s"), "i64.load16_u": (I16, I64, "u"),
    "i64.load32_s": (I32, I64, "s"), "i64.load32_u": (I32, I64, "u"),
}
_STORES: dict[str, ir.Type | None] = {
    "i32.store": None, "i64.store": None, "f32.store": None, "f64.store": None,
    "i32.store8": I8, "i32.store16": I16, "i64.store8": I8, "i64.store16": I16,
    "i64.store32": I32,
}


def _load(fl: _FuncLowering, ins: Instr) -> None:
    mem_t, out_t, ext = _LOADS[ins.op.name]
    _align, offset, mem = ins.imm
    v = fl.load(mem, fl.pop(), offset, mem_t)
    if ext == "s":
        v = fl.b.sext(v, out_t)
    elif ext == "u":
        v = fl.b.zext(v, out_t)
    fl.push(v)


def _store(fl: _FuncLowering, ins: Instr) -> None:
    narrow = _STORES[ins.op.name]
    _align, offset, mem = ins.imm
    v = fl.pop()
    addr = fl.pop()
    if narrow is not None:
        v = fl.b.trunc(v, narrow)
    fl.store(mem, addr, offset, v)


for _n in _LOADS:
    LOWERINGS[_n] = _load
for _n in _STORES:
    LOWERINGS[_n] = _store


@_lowers("memory.size")
def _memory_size(fl: _FuncLowering, ins: Instr) -> None:
    _base, size = fl.mem_base_and_size(ins.imm)
    fl.push(fl.b.trunc(fl.b.lshr(size, ir.Constant(I64, 16)), I32))


@_lowers("memory.grow")
def _memory_grow(fl: _FuncLowering, ins: Instr) -> None:
    delta = fl.pop()
    fl.push(fl.b.call(fl.ml.runtime["rt_memory_grow"], [fl.ctx, ir.Constant(I32, ins.imm),
                                                         delta]))


@_lowers("memory.copy")
def _memory_copy(fl: _FuncLowering, ins: Instr) -> None:
    dst_mem, src_mem = ins.imm
    d, s, n = fl.popn(3)
    st = fl.b.call(fl.ml.runtime["rt_memory_copy"], [fl.ctx, ir.Constant(I32, dst_mem),
                                                      ir.Constant(I32, src_mem), d, s, n])
    fl.trap_status(st)


@_lowers("memory.fill")
def _memory_fill(fl: _FuncLowering, ins: Instr) -> None:
    d, v, n = fl.popn(3)
    st = fl.b.call(fl.ml.runtime["rt_memory_fill"], [fl.ctx, ir.Constant(I32, ins.imm), d, v, n])
    fl.trap_status(st)


@_lowers("memory.init")
def _memory_init(fl: _FuncLowering, ins: Instr) -> None:
    seg, mem = ins.imm
    d, s, n = fl.popn(3)
    st = fl.b.call(fl.ml.runtime["rt_memory_init"], [fl.ctx, ir.Constant(I32, mem),
                                                      ir.Constant(I32, seg), d, s, n])
    fl.trap_status(st)


@_lowers("data.drop")
def _data_drop(fl: _FuncLowering, ins: Instr) -> None:
    fl.b.call(fl.ml.runtime["rt_data_drop"], [fl.ctx, ir.Constant(I32, ins.imm)])


# -- references and tables ---------------------------------------------------------------------------

@_lowers("ref.null")
def _ref_null(fl: _FuncLowering, ins: Instr) -> None:
    fl.push(ir.Constant(I64, 0))


@_lowers("ref.is_null")
def _ref_is_null(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    fl.push(b.zext(b.icmp_unsigned("==", fl.pop(), ir.Constant(I64, 0)), I32))


@_lowers("ref.func")
def _ref_func(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    funcs = fl.ctx_field("funcs", I8P)
    p = b.gep(funcs, [ir.Constant(I64, ins.imm * fl.lay.funcref_size)])
    fl.push(b.ptrtoint(p, I64))


@_lowers("table.get")
def _table_get(fl: _FuncLowering, ins: Instr) -> None:
    p = fl.table_elem_ptr(ins.imm, fl.pop())
    v = fl.b.load(p)
    v.set_metadata("tbaa", fl.ml.tbaa(f"{fl.ml.table_tag(ins.imm)}.elem"))
    fl.push(v)


@_lowers("table.set")
def _table_set(fl: _FuncLowering, ins: Instr) -> None:
    v = fl.pop()
    p = fl.table_elem_ptr(ins.imm, fl.pop())
    st = fl.b.store(v, p)
    st.set_metadata("tbaa", fl.ml.tbaa(f"{fl.ml.table_tag(ins.imm)}.elem"))


@_lowers("table.size")
def _table_size(fl: _FuncLowering, ins: Instr) -> None:
    fl.push(fl.table_size(ins.imm))


@_lowers("table.grow")
def _table_grow(fl: _FuncLowering, ins: Instr) -> None:
    n = fl.pop()
    init = fl.pop()
    fl.push(fl.b.call(fl.ml.runtime["rt_table_grow"], [fl.ctx, ir.Constant(I32, ins.imm), init,
                                                        n]))


@_lowers("table.fill")
def _table_fill(fl: _FuncLowering, ins: Instr) -> None:
    d, v, n = fl.popn(3)
    st = fl.b.call(fl.ml.runtime["rt_table_fill"], [fl.ctx, ir.Constant(I32, ins.imm), d, v, n])
    fl.trap_status(st)


@_lowers("table.copy")
def _table_copy(fl: _FuncLowering, ins: Instr) -> None:
    dst_t, src_t = ins.imm
    d, s, n = fl.popn(3)
    st = fl.b.call(fl.ml.runtime["rt_table_copy"], [fl.ctx, ir.Constant(I32, dst_t),
                                                     ir.Constant(I32, src_t), d, s, n])
    fl.trap_status(st)


@_lowers("table.init")
def _table_init(fl: _FuncLowering, ins: Instr) -> None:
    seg, table = ins.imm
    d, s, n = fl.popn(3)
    st = fl.b.call(fl.ml.runtime["rt_table_init"], [fl.ctx, ir.Constant(I32, table),
                                                     ir.Constant(I32, seg), d, s, n])
    fl.trap_status(st)


@_lowers("elem.drop")
def _elem_drop(fl: _FuncLowering, ins: Instr) -> None:
    fl.b.call(fl.ml.runtime["rt_elem_drop"], [fl.ctx, ir.Constant(I32, ins.imm)])


# -- constants ---------------------------------------------------------------------------------------

def _float_const(t: ir.Type, bits: int) -> ir.Constant:
    """A float constant with exactly these bits (NaN payloads through a bitcast)."""
    if t == F32:
        bits &= 0xFFFFFFFF
        value = struct.unpack("<f", struct.pack("<I", bits))[0]
        if value != value:
            return ir.Constant(I32, bits).bitcast(F32)
        return ir.Constant(F32, value)
    bits &= 0xFFFFFFFFFFFFFFFF
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    if value != value:
        return ir.Constant(I64, bits).bitcast(F64)
    return ir.Constant(F64, value)


def _identity(v: ir.Value) -> bool:
    """A constant LLVM may fold away as an arithmetic identity (x+-0, x-0, x*1, x/1, x*-1)."""
    return isinstance(v, ir.Constant) and isinstance(v.constant, float) and \
        v.constant in (0.0, 1.0, -1.0)


@_lowers("i32.const")
def _i32_const(fl: _FuncLowering, ins: Instr) -> None:
    fl.push(ir.Constant(I32, ins.imm & 0xFFFFFFFF))


@_lowers("i64.const")
def _i64_const(fl: _FuncLowering, ins: Instr) -> None:
    fl.push(ir.Constant(I64, ins.imm & 0xFFFFFFFFFFFFFFFF))


@_lowers("f32.const")
def _f32_const(fl: _FuncLowering, ins: Instr) -> None:
    fl.push(_float_const(F32, ins.imm))


@_lowers("f64.const")
def _f64_const(fl: _FuncLowering, ins: Instr) -> None:
    fl.push(_float_const(F64, ins.imm))


# -- integer arithmetic ---------------------------------------------------------------------------------

def _ty(name: str) -> ir.Type:
    return {"i32": I32, "i64": I64, "f32": F32, "f64": F64}[name[:3]]


def _bool(fl: _FuncLowering, v: ir.Value) -> None:
    fl.push(fl.b.zext(v, I32))


_ICMP = {"eq": ("==", False), "ne": ("!=", False), "lt_s": ("<", True), "lt_u": ("<", False),
         "gt_s": (">", True), "gt_u": (">", False), "le_s": ("<=", True), "le_u": ("<=", False),
         "ge_s": (">=", True), "ge_u": (">=", False)}


def _icmp(fl: _FuncLowering, ins: Instr) -> None:
    op, signed = _ICMP[ins.op.name[4:]]
    y = fl.pop()
    x = fl.pop()
    b = fl.b
    _bool(fl, b.icmp_signed(op, x, y) if signed else b.icmp_unsigned(op, x, y))


def _eqz(fl: _FuncLowering, ins: Instr) -> None:
    x = fl.pop()
    _bool(fl, fl.b.icmp_unsigned("==", x, ir.Constant(x.type, 0)))


def _ibin(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    y = fl.pop()
    x = fl.pop()
    t = x.type
    op = ins.op.name[4:]
    width = t.width
    if op == "add":
        r = b.add(x, y)
    elif op == "sub":
        r = b.sub(x, y)
    elif op == "mul":
        r = b.mul(x, y)
    elif op == "and":
        r = b.and_(x, y)
    elif op == "or":
        r = b.or_(x, y)
    elif op == "xor":
        r = b.xor(x, y)
    elif op in ("shl", "shr_s", "shr_u"):
        s = b.and_(y, ir.Constant(t, width - 1))
        r = b.shl(x, s) if op == "shl" else b.ashr(x, s) if op == "shr_s" else b.lshr(x, s)
    elif op in ("rotl", "rotr"):
        name = f"llvm.fsh{'l' if op == 'rotl' else 'r'}.i{width}"
        r = b.call(fl.ml.intrinsic(name, t, [t, t, t]), [x, x, y])
    else:
        zero = ir.Constant(t, 0)
        fl.trap_if(b.icmp_unsigned("==", y, zero), "div0")
        if op == "div_s":
            min_int = ir.Constant(t, 1 << (width - 1))
            minus1 = ir.Constant(t, (1 << width) - 1)
            fl.trap_if(b.and_(b.icmp_unsigned("==", x, min_int),
                              b.icmp_unsigned("==", y, minus1)), "overflow")
            r = b.sdiv(x, y)
        elif op == "div_u":
            r = b.udiv(x, y)
        elif op == "rem_s":
            minus1 = ir.Constant(t, (1 << width) - 1)
            safe = b.select(b.icmp_unsigned("==", y, minus1), ir.Constant(t, 1), y)
            r = b.srem(x, safe)
        elif op == "rem_u":
            r = b.urem(x, y)
        else:  # pragma: no cover
            raise AssertionError(op)
    fl.push(r)


def _iun(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    x = fl.pop()
    t = x.type
    op = ins.op.name[4:]
    w = t.width
    if op == "clz":
        r = b.call(fl.ml.intrinsic(f"llvm.ctlz.i{w}", t, [t, I1]), [x, ir.Constant(I1, 0)])
    elif op == "ctz":
        r = b.call(fl.ml.intrinsic(f"llvm.cttz.i{w}", t, [t, I1]), [x, ir.Constant(I1, 0)])
    else:
        r = b.call(fl.ml.intrinsic(f"llvm.ctpop.i{w}", t, [t]), [x])
    fl.push(r)


def _sign_extend(fl: _FuncLowering, ins: Instr) -> None:
    name = ins.op.name
    bits = int(name.split("extend")[1].split("_")[0])
    x = fl.pop()
    fl.push(fl.b.sext(fl.b.trunc(x, ir.IntType(bits)), x.type))


for _t in ("i32", "i64"):
    LOWERINGS[f"{_t}.eqz"] = _eqz
    for _op in _ICMP:
        LOWERINGS[f"{_t}.{_op}"] = _icmp
    for _op in ("add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor",
                "shl", "shr_s", "shr_u", "rotl", "rotr"):
        LOWERINGS[f"{_t}.{_op}"] = _ibin
    for _op in ("clz", "ctz", "popcnt"):
        LOWERINGS[f"{_t}.{_op}"] = _iun
for _n in ("i32.extend8_s", "i32.extend16_s", "i64.extend8_s", "i64.extend16_s",
           "i64.extend32_s"):
    LOWERINGS[_n] = _sign_extend


# -- floating point ------------------------------------------------------------------------------------

_FCMP = {"eq": ("==", True), "ne": ("!=", False), "lt": ("<", True), "gt": (">", True),
         "le": ("<=", True), "ge": (">=", True)}


def _fcmp(fl: _FuncLowering, ins: Instr) -> None:
    op, ordered = _FCMP[ins.op.name[4:]]
    y = fl.pop()
    x = fl.pop()
    b = fl.b
    _bool(fl, b.fcmp_ordered(op, x, y) if ordered else b.fcmp_unordered(op, x, y))


def _fsuffix(t: ir.Type) -> str:
    return "f32" if t == F32 else "f64"


def _fun(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    x = fl.pop()
    t = x.type
    op = ins.op.name[4:]
    if op == "neg":
        fl.push(b.fneg(x))
        return
    name = {"abs": "fabs", "ceil": "ceil", "floor": "floor", "trunc": "trunc",
            "nearest": "roundeven", "sqrt": "sqrt"}[op]
    fl.push(b.call(fl.ml.intrinsic(f"llvm.{name}.{_fsuffix(t)}", t, [t]), [x]))


def _fbin(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    y = fl.pop()
    x = fl.pop()
    t = x.type
    op = ins.op.name[4:]
    if op == "add":
        r = b.fadd(x, y)
    elif op == "sub":
        r = b.fsub(x, y)
    elif op == "mul":
        r = b.fmul(x, y)
    elif op == "div":
        r = b.fdiv(x, y)
    elif op == "copysign":
        r = b.call(fl.ml.intrinsic(f"llvm.copysign.{_fsuffix(t)}", t, [t, t]), [x, y])
    else:
        r = _fminmax(fl, x, y, op == "min")
    if op in ("add", "sub", "mul", "div") and (_identity(x) or _identity(y)):
        # Wasm quiets a signalling NaN operand; LLVM would fold the operation away.
        r = b.call(fl.ml.intrinsic(f"llvm.canonicalize.{_fsuffix(t)}", t, [t]), [r])
    fl.push(r)


def _fminmax(fl: _FuncLowering, x: ir.Value, y: ir.Value, is_min: bool) -> ir.Value:
    """Wasm min/max: NaN if either is NaN (quieted), -0 < +0."""
    b = fl.b
    t = x.type
    it = I32 if t == F32 else I64
    nan = b.fcmp_unordered("uno", x, y)
    eq = b.fcmp_ordered("==", x, y)
    xi = b.bitcast(x, it)
    yi = b.bitcast(y, it)
    # Equal values differ at most in the sign of zero: or-ing the bits picks -0 for min,
    # and-ing picks +0 for max.
    same = b.bitcast(b.or_(xi, yi) if is_min else b.and_(xi, yi), t)
    pick = b.fcmp_ordered("<" if is_min else ">", x, y)
    ordered = b.select(eq, same, b.select(pick, x, y))
    return b.select(nan, b.fadd(x, y), ordered)


for _t in ("f32", "f64"):
    for _op in _FCMP:
        LOWERINGS[f"{_t}.{_op}"] = _fcmp
    for _op in ("abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt"):
        LOWERINGS[f"{_t}.{_op}"] = _fun
    for _op in ("add", "sub", "mul", "div", "min", "max", "copysign"):
        LOWERINGS[f"{_t}.{_op}"] = _fbin


# -- conversions --------------------------------------------------------------------------------------

def _f32_exact(v: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", v))[0])


# (lower, upper) exclusive bounds of the values whose truncation fits.
_TRUNC_BOUNDS: dict[tuple[str, str, bool], tuple[float, float]] = {
    ("i32", "f32", True): (-2147483904.0, 2147483648.0),
    ("i32", "f64", True): (-2147483649.0, 2147483648.0),
    ("i32", "f32", False): (-1.0, 4294967296.0),
    ("i32", "f64", False): (-1.0, 4294967296.0),
    ("i64", "f32", True): (-9223373136366403584.0, 9223372036854775808.0),
    ("i64", "f64", True): (-9223372036854777856.0, 9223372036854775808.0),
    ("i64", "f32", False): (-1.0, 18446744073709551616.0),
    ("i64", "f64", False): (-1.0, 18446744073709551616.0),
}


def _convert(fl: _FuncLowering, ins: Instr) -> None:
    b = fl.b
    name = ins.op.name
    x = fl.pop()
    dst_name, rest = name.split(".", 1)
    dst = _ty(dst_name)
    if name == "i32.wrap_i64":
        r = b.trunc(x, I32)
    elif name == "i64.extend_i32_s":
        r = b.sext(x, I64)
    elif name == "i64.extend_i32_u":
        r = b.zext(x, I64)
    elif name == "f32.demote_f64":
        r = b.fptrunc(x, F32)
        if isinstance(x, ir.CastInstr) and x.opname == "fpext":
            # LLVM folds demote(promote(x)) to x; Wasm quiets a signalling NaN.
            r = b.call(fl.ml.intrinsic("llvm.canonicalize.f32", F32, [F32]), [r])
    elif name == "f64.promote_f32":
        r = b.fpext(x, F64)
    elif rest.startswith("reinterpret"):
        r = b.bitcast(x, dst)
    elif rest.startswith("convert"):
        r = b.sitofp(x, dst) if rest.endswith("_s") else b.uitofp(x, dst)
    elif rest.startswith("trunc_sat"):
        signed = rest.endswith("_s")
        iname = f"llvm.fpto{'s' if signed else 'u'}i.sat.i{dst.width}.{_fsuffix(x.type)}"
        r = b.call(fl.ml.intrinsic(iname, dst, [x.type]), [x])
    elif rest.startswith("trunc"):
        signed = rest.endswith("_s")
        src_name = rest.split("_")[1]
        lo, hi = _TRUNC_BOUNDS[(dst_name, src_name, signed)]
        t = x.type
        lo_c = ir.Constant(t, _f32_exact(lo) if t == F32 else lo)
        hi_c = ir.Constant(t, _f32_exact(hi) if t == F32 else hi)
        fl.trap_if(b.fcmp_unordered("uno", x, x), "conversion")
        fits = b.and_(b.fcmp_ordered(">", x, lo_c), b.fcmp_ordered("<", x, hi_c))
        fl.trap_if(b.not_(fits), "overflow")
        r = b.fptosi(x, dst) if signed else b.fptoui(x, dst)
    else:  # pragma: no cover
        raise AssertionError(name)
    fl.push(r)


for _op in OPCODES:
    if _op.feature in ("mvp", "saturating-float-to-int") and any(
            k in _op.name for k in ("wrap", "extend_i32", "demote", "promote", "reinterpret",
                                    "convert", "trunc_")):
        LOWERINGS[_op.name] = _convert


# -- entry point ---------------------------------------------------------------------------------------

def lower(module: Module, config: LowerConfig) -> Lowered:
    """The LLVM IR of ``module``. Raises UnsupportedFeature for SIMD."""
    for t in module.types:
        for v in (*t.params, *t.results):
            lltype(v)
    for g in module.all_globals():
        lltype(g.valtype)
    return _ModuleLowering(module, config).run()


def _unused(*_: Any) -> None:  # keep linters quiet about helper names used by tests
    return None


_ = (W_F32, W_F64, W_I32, W_I64)
