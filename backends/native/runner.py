"""The native backend: weave, lower to LLVM, JIT, and run on the C runtime.

Probes are placed exactly as on the wasm backend: the module is woven by
`backends.wasm.weaver` (counters, flags, histograms, trace buffer and
shadow stacks in an appended state memory; Python callbacks behind an
appended table), and the woven module is what gets lowered — so counter adds,
flag stores and buffer appends are compiled inline by LLVM, and the host
side of every probe kind is the wasm runner's, reused by subclassing
`WasmInstance` over a state memory that lives in the C runtime (read by
Python through cffi buffers, without copies).

Fuel (`CompileOptions.fuel`, the ``timeout`` monitor) and Ctrl-C
(`CompileOptions.interruptible`) share one compiled check at every loop
header and before every call (backends/native/lower.py): the budget lives in
the context's ``fuel`` (set at instantiation, spent across calls like a
wasmtime store's), and while the guest runs a thread watching the signal
wakeup fd sets the context's ``interrupt`` flag on SIGINT; the guest then
traps with ``interrupt`` and the runner raises KeyboardInterrupt after
settling the probe state, as the wasm runner does.

Sharing between instances, as wasmtime objects are shared on the wasm
backend: ``inst.export(name)`` returns a `NativeMemory`, `NativeTable`,
`NativeGlobal` or `NativeFunc`, and passing it in another instantiation's
``imports={module: {name: obj}}`` links the same object (memories and tables
are reference-counted runtime objects the contexts point to; an imported
mutable global's slot points to the exporter's slot). A funcref stored in a
shared table runs in its own instance's context wherever it is
``call_indirect``-ed from. Lifetimes: a memory lives while any context or
`NativeMemory` holds it; an instance whose table or globals were handed out
(or that imported a table) is only *marked* closed by `close` and freed when
garbage-collected, since another instance may still call its functions
through a shared table — the `NativeTable` keeps every instance linked to it
alive. Call_indirect signature checks use process-wide signature ids
(`sig_id`), so funcrefs of different modules compare correctly.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...ir import LinkError, Location, Module, ProbeError, ProbesError, Trap, decode
from ...ir.loader import CACHE_DIR
from ...ir.module import Instr
from ...ir.types import FuncType, GlobalType, ValType
from ...probe import read_out_of_bounds
from ...probeset import ProbeSet
from ..base import CompileOptions, WasiOptions
from ..wasm.runner import (
    RunStats,
    WasmInstance,
    _CtrlC,
    _Exit,
    _ProbeTrap,
    _TrapPoint,
    host_trap,
)
from ..wasm.weaver import START_EXPORT, STATE_EXPORT, TABLE_EXPORT, Woven, weave
from . import jit
from .lower import (
    INIT_SYMBOL,
    RUNTIME_SYMBOLS,
    TRAP,
    CtxLayout,
    LowerConfig,
    func_symbol,
    lower,
    type_ids,
)

__all__ = ["NativeBackend", "NativeExecutable", "NativeInstance", "MemoryImport", "TableImport",
           "NativeMemory", "NativeTable", "NativeGlobal", "NativeFunc", "sig_id",
           "TRAP_NAMES", "WASI_SIGNATURES", "ExternRef"]

TRAP_NAMES = {
    TRAP["unreachable"]: "unreachable",
    TRAP["memory"]: "out of bounds memory access",
    TRAP["table"]: "undefined element",
    TRAP["null"]: "uninitialized element",
    TRAP["signature"]: "indirect call type mismatch",
    TRAP["overflow"]: "integer overflow",
    TRAP["div0"]: "integer divide by zero",
    TRAP["conversion"]: "invalid conversion to integer",
    TRAP["stack"]: "call stack exhausted",
    TRAP["fuel"]: "out of fuel",
    TRAP["null_ref"]: "null reference",
    TRAP["interrupt"]: "interrupt",
}
"""Runtime trap kind -> the kind string the wasm backend reports for the same trap."""

_I = "i32"
_L = "i64"
WASI_SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "args_get": ((_I, _I), (_I,)), "args_sizes_get": ((_I, _I), (_I,)),
    "environ_get": ((_I, _I), (_I,)), "environ_sizes_get": ((_I, _I), (_I,)),
    "clock_res_get": ((_I, _I), (_I,)), "clock_time_get": ((_I, _L, _I), (_I,)),
    "random_get": ((_I, _I), (_I,)), "sched_yield": ((), (_I,)),
    "fd_write": ((_I, _I, _I, _I), (_I,)), "fd_read": ((_I, _I, _I, _I), (_I,)),
    "fd_pread": ((_I, _I, _I, _L, _I), (_I,)), "fd_pwrite": ((_I, _I, _I, _L, _I), (_I,)),
    "fd_seek": ((_I, _L, _I, _I), (_I,)), "fd_tell": ((_I, _I), (_I,)),
    "fd_close": ((_I,), (_I,)), "fd_sync": ((_I,), (_I,)), "fd_datasync": ((_I,), (_I,)),
    "fd_fdstat_get": ((_I, _I), (_I,)), "fd_fdstat_set_flags": ((_I, _I), (_I,)),
    "fd_filestat_get": ((_I, _I), (_I,)), "fd_filestat_set_size": ((_I, _L), (_I,)),
    "fd_prestat_get": ((_I, _I), (_I,)), "fd_prestat_dir_name": ((_I, _I, _I), (_I,)),
    "fd_readdir": ((_I, _I, _I, _L, _I), (_I,)),
    "path_open": ((_I, _I, _I, _I, _I, _L, _L, _I, _I), (_I,)),
    "path_filestat_get": ((_I, _I, _I, _I, _I), (_I,)),
    "path_create_directory": ((_I, _I, _I), (_I,)),
    "path_unlink_file": ((_I, _I, _I), (_I,)),
    "path_remove_directory": ((_I, _I, _I), (_I,)),
    "poll_oneoff": ((_I, _I, _I, _I), (_I,)),
    "proc_exit": ((_I,), ()),
}
"""The WASI functions implemented in C, with their signatures."""

WASI_ENOSYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fd_advise": ((_I, _L, _L, _I), (_I,)), "fd_allocate": ((_I, _L, _L), (_I,)),
    "fd_fdstat_set_rights": ((_I, _L, _L), (_I,)),
    "fd_filestat_set_times": ((_I, _L, _L, _I), (_I,)), "fd_renumber": ((_I, _I), (_I,)),
    "path_filestat_set_times": ((_I, _I, _I, _I, _L, _L, _I), (_I,)),
    "path_link": ((_I, _I, _I, _I, _I, _I, _I), (_I,)),
    "path_readlink": ((_I, _I, _I, _I, _I, _I), (_I,)),
    "path_rename": ((_I, _I, _I, _I, _I, _I), (_I,)),
    "path_symlink": ((_I, _I, _I, _I, _I), (_I,)), "proc_raise": ((_I,), (_I,)),
    "sock_accept": ((_I, _I, _I), (_I,)), "sock_recv": ((_I, _I, _I, _I, _I, _I), (_I,)),
    "sock_send": ((_I, _I, _I, _I, _I), (_I,)), "sock_shutdown": ((_I, _I), (_I,)),
}
"""The rest of WASI preview1: linked (like wasmtime does), failing with ENOSYS."""

WASI_MODULES = ("wasi_snapshot_preview1",)
BACKTRACE_LIMIT = 20
"""Innermost frames kept in `Trap.backtrace` (what wasmtime reports, for equal traps)."""
_ENOSYS = 52
_MAX_DEPTH = 50000
_PAGE = 65536
_LOWERING_VERSION = "1"


@dataclass(frozen=True)
class MemoryImport:
    """A memory to satisfy a memory import with: a fresh one of this size, private to the
    instance (pass a `NativeMemory` to share one)."""

    min: int
    """Initial pages."""
    max: int | None = None
    """Maximum pages."""


@dataclass(frozen=True)
class TableImport:
    """A table to satisfy a table import with: a fresh one of this size, all null, private
    to the instance (pass a `NativeTable` to share one)."""

    min: int
    """Initial elements."""
    max: int | None = None
    """Maximum elements."""


_SIG_LOCK = threading.Lock()
_SIG_IDS: dict[FuncType, int] = {}


def sig_id(ft: FuncType) -> int:
    """The process-wide id of a signature (structurally equal types share one), what
    funcrefs carry and call_indirect compares across instances."""
    with _SIG_LOCK:
        return _SIG_IDS.setdefault(ft, len(_SIG_IDS))


class _Bytes:
    """Bounds-checked reads and writes over ``view()``, as a wasmtime Memory has them
    (the store argument is ignored)."""

    def view(self) -> Any:
        raise NotImplementedError

    def read(self, store: Any, start: int, end: int) -> bytes:
        view = self.view()
        if start < 0 or end > len(view) or start > end:
            raise ProbesError(f"memory read [{start}, {end}) out of bounds")
        return bytes(view[start:end])

    def write(self, store: Any, data: bytes, offset: int) -> None:
        view = self.view()
        if offset < 0 or offset + len(data) > len(view):
            raise ProbesError(f"memory write at {offset} out of bounds")
        view[offset:offset + len(data)] = data


class NativeMemory(_Bytes):
    """A linear memory of the C runtime, shareable between instances.

    ``inst.export(name)`` gives an instance's; `NativeMemory.new` a standalone one.
    Pass it as a memory import to share it. Holds a reference on the runtime memory, so
    it stays valid after every instance using it is freed. Reads and writes take a
    ``store`` argument (ignored) like wasmtime's Memory."""

    def __init__(self, rt: Any, ptr: Any, max_pages: int | None) -> None:
        self._rt = rt
        self._ptr = rt.ffi.gc(ptr, rt.lib.rt_memory_release)  # one reference, ours
        self.max = max_pages
        """Maximum pages (None: unbounded)."""

    @classmethod
    def new(cls, min: int, max: int | None = None) -> NativeMemory:
        """A fresh memory of ``min`` pages (zeroed), growable to ``max``."""
        rt = _runtime()
        ptr = rt.lib.rt_memory_new(min, 65536 if max is None else max)
        if ptr == rt.ffi.NULL:
            raise ProbesError(f"cannot allocate a memory of {min} pages")
        return cls(rt, ptr, max)

    def size(self, store: Any = None) -> int:
        """Current size in pages."""
        return int(self._ptr.size) // _PAGE

    def data_len(self, store: Any = None) -> int:
        return int(self._ptr.size)

    def grow(self, delta: int, store: Any = None) -> int:
        """Grow by ``delta`` pages; the old size, or -1 when it cannot."""
        return int(self._rt.lib.rt_memory_grow_object(self._ptr, delta))

    def view(self) -> Any:
        return self._rt.ffi.buffer(self._ptr.base, self._ptr.size)



class NativeTable:
    """A table of the C runtime, shareable between instances (``inst.export(name)`` or
    `NativeTable.new`; pass it as a table import). Keeps every instance linked to it
    alive, since any of them may have stored funcrefs into it."""

    def __init__(self, rt: Any, ptr: Any, elem: ValType, max_elems: int | None,
                 externs: list[Any] | None = None) -> None:
        self._rt = rt
        self._ptr = rt.ffi.gc(ptr, rt.lib.rt_table_release)  # one reference, ours
        self.elem = elem
        """Element type (funcref or externref)."""
        self.max = max_elems
        """Maximum elements (None: unbounded)."""
        self._owners: list[NativeInstance] = []
        self._externs: list[Any] = externs if externs is not None else []

    @classmethod
    def new(cls, min: int, max: int | None = None, elem: ValType | None = None) -> NativeTable:
        """A fresh table of ``min`` null elements (funcref unless ``elem`` says)."""
        from ...ir.types import FUNCREF

        rt = _runtime()
        ptr = rt.lib.rt_table_new(min, 0xFFFFFFFF if max is None else max)
        if ptr == rt.ffi.NULL:
            raise ProbesError(f"cannot allocate a table of {min} elements")
        return cls(rt, ptr, elem or FUNCREF, max)

    def size(self, store: Any = None) -> int:
        return int(self._ptr.size)

    def grow(self, delta: int, init: int = 0) -> int:
        """Grow by ``delta`` elements set to the bits ``init``; the old size or -1."""
        return int(self._rt.lib.rt_table_grow_object(self._ptr, init, delta))

    def get_bits(self, index: int) -> int:
        if not 0 <= index < self.size():
            raise ProbesError(f"table index {index} out of bounds")
        return int(self._ptr.elems[index])


class NativeGlobal:
    """A global of an instance (``inst.export(name)``). As the import of a mutable
    global it is shared by reference: the importer reads and writes the exporter's slot."""

    def __init__(self, owner: NativeInstance, cell: Any, gtype: GlobalType) -> None:
        self._owner = owner  # keeps the slot's context alive
        self._cell = cell
        self.type = gtype
        """Value type and mutability."""
        self._externs = owner._externs

    @property
    def bits(self) -> int:
        """The current value as a bit pattern."""
        return int(self._cell[0])

    @property
    def value(self) -> Any:
        return self._owner._from_value_bits(self.bits, self.type.valtype)


class NativeFunc:
    """An exported function of an instance, importable by another instance (checked
    against the import's signature; calls go through the exporter's `invoke_raw`)."""

    def __init__(self, inst: NativeInstance, index: int, ft: FuncType) -> None:
        self._inst = inst
        self.index = index
        self.type = ft
        """The signature."""

    def raw(self) -> Callable[..., Any]:
        """A host function taking and returning bit patterns."""
        inst, index = self._inst, self.index

        def call(*bits: int) -> Any:
            out = inst.invoke_raw(index, list(bits))
            return out[0] if len(out) == 1 else tuple(out) if out else None
        call.__probes_raw__ = True  # type: ignore[attr-defined]
        return call

    def __call__(self, *args: Any) -> Any:
        return self._inst._invoke(self.index, args)


@dataclass(frozen=True)
class ExternRef:
    """An opaque host reference passed through externref values."""

    value: Any
    """The host object."""


def _runtime() -> Any:
    from ...cext import RuntimeUnavailable, load

    try:
        rt = load()
    except RuntimeUnavailable as e:
        raise ProbesError(f"the native backend's C runtime is unavailable: {e}") from None
    _install_callback(rt)
    return rt


_CALLBACK_LOCK = threading.Lock()
_CALLBACK_INSTALLED: set[int] = set()


def _install_callback(rt: Any) -> None:
    with _CALLBACK_LOCK:
        if id(rt) in _CALLBACK_INSTALLED:
            return
        ffi = rt.ffi

        @ffi.def_extern(name="rt_py_callback")
        def _callback(handle: Any, kind: int, index: int, io: Any, n: int) -> int:
            try:
                inst: NativeInstance = ffi.from_handle(handle)
            except BaseException:  # pragma: no cover - a dangling handle
                return TRAP["host"]
            return inst._host_call(kind, index, io, n)

        _CALLBACK_INSTALLED.add(id(rt))


# -- values ---------------------------------------------------------------------------------------

def to_bits(value: Any, t: ValType) -> int:
    """A Python value as the 64-bit pattern the runtime passes around."""
    name = t.name
    if name == "i32":
        return int(value) & 0xFFFFFFFF
    if name == "i64":
        return int(value) & 0xFFFFFFFFFFFFFFFF
    if name == "f32":
        return struct.unpack("<I", struct.pack("<f", float(value)))[0]
    if name == "f64":
        return struct.unpack("<Q", struct.pack("<d", float(value)))[0]
    raise ProbeError(f"cannot pass a {name} value from Python")


def from_bits(bits: int, t: ValType) -> Any:
    name = t.name
    if name == "i32":
        bits &= 0xFFFFFFFF
        return bits - (1 << 32) if bits >> 31 else bits
    if name == "i64":
        bits &= 0xFFFFFFFFFFFFFFFF
        return bits - (1 << 64) if bits >> 63 else bits
    if name == "f32":
        return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]
    if name == "f64":
        return struct.unpack("<d", struct.pack("<Q", bits & 0xFFFFFFFFFFFFFFFF))[0]
    return bits


# -- compiling -----------------------------------------------------------------------------------

_SOURCE_DIGEST: str | None = None


def _source_digest() -> str:
    """Digest of the lowering and runtime sources, so stale cache entries never load."""
    global _SOURCE_DIGEST
    if _SOURCE_DIGEST is None:
        h = hashlib.sha256(_LOWERING_VERSION.encode())
        here = Path(__file__).resolve().parent
        for name in ("lower.py", "jit.py"):
            h.update((here / name).read_bytes())
        cext = here.parent.parent / "cext"
        for name in ("runtime_api.h", "runtime.c", "wasi.c"):
            p = cext / name
            if p.exists():
                h.update(p.read_bytes())
        _SOURCE_DIGEST = h.hexdigest()[:16]
    return _SOURCE_DIGEST


@dataclass
class CompileStats:
    """How one compile went."""

    cached: bool = False
    """Whether the object code came from the disk cache."""
    lower_s: float = 0.0
    """Seconds spent building LLVM IR."""
    llvm_s: float = 0.0
    """Seconds spent optimizing and generating code."""
    link_s: float = 0.0
    """Seconds spent linking into the JIT."""


class NativeBackend:
    """Wasm -> LLVM IR -> machine code, run on the C runtime of probes.cext."""

    name = "native"

    def __init__(self) -> None:
        self.rt = _runtime()
        self.layout = CtxLayout.from_ffi(self.rt.ffi)

    def compile(self, module: Module, probes: ProbeSet | None = None,
                options: CompileOptions | None = None) -> NativeExecutable:
        options = options or CompileOptions()
        if options.fuel < 0:
            raise ProbesError("the fuel budget must be positive")
        probes = probes if probes is not None else ProbeSet(module)
        snapshot = probes.copy()
        # Fuel and interrupt checks sit at loop headers here (lower.py), not in
        # the woven code, but stop runs there all the same. Loops stay whole:
        # peeled, LLVM's code gains on nbody and sha but loses more on bytecode
        # and matmul (benchmarks/README.md).
        woven = weave(module, snapshot, options.trace_capacity, options.dynamic,
                      count_tree=options.count_tree,
                      interruptible=options.interruptible or bool(options.fuel),
                      peel_loops=False, flag_globals=False)
        wm = decode(woven.wasm)
        stats = CompileStats()
        opt = max(0, min(3, int(options.opt_level)))
        config = self._config(wm, woven, options)
        key = jit.cache_key([woven.wasm, f"opt={opt}|depth={config.max_depth}|"
                             f"fuel={config.fuel}|interrupt={config.interruptible}",
                             _source_digest()])
        path = jit.cache_path(options.cache_dir or CACHE_DIR, key)
        obj = jit.read_cached(path) if options.cache else None
        lowered_ids = type_ids(wm.types)
        if obj is not None:
            stats.cached = True
        else:
            t0 = time.perf_counter()
            lowered = lower(wm, config)
            t1 = time.perf_counter()
            obj = jit.optimize_and_emit(lowered.llvm_ir, opt)
            stats.lower_s = t1 - t0
            stats.llvm_s = time.perf_counter() - t1
            if options.cache:
                jit.write_cached(path, obj)
        t2 = time.perf_counter()
        linked = self._link(obj, config)
        stats.link_s = time.perf_counter() - t2
        return NativeExecutable(self, module, probes, snapshot, woven, wm, linked, config,
                                lowered_ids, options, stats)

    def _config(self, wm: Module, woven: Woven | None = None,
                options: CompileOptions | None = None) -> LowerConfig:
        probe_table = next((e.index for e in wm.exports
                            if e.kind == "table" and e.name == TABLE_EXPORT), None)
        wasi: dict[int, str] = {}
        for i, imp in enumerate(wm.imports_of("func")):
            if imp.module in WASI_MODULES and imp.name in WASI_SIGNATURES:
                assert isinstance(imp.desc, int)
                ft = wm.types[imp.desc]
                params, results = WASI_SIGNATURES[imp.name]
                if (tuple(t.name for t in ft.params) == params
                        and tuple(t.name for t in ft.results) == results):
                    wasi[i] = f"rt_wasi_{imp.name}"
        fixed: dict[int, int] = {}
        nimported = len(wm.imports_of("memory"))
        for k, mt in enumerate(wm.memories):
            if mt.limits.max is not None and mt.limits.max == mt.limits.min:
                fixed[nimported + k] = mt.limits.min * _PAGE
        exports = sorted({e.index for e in wm.exports if e.kind == "func"})
        state = _inline_state(wm)
        options = options or CompileOptions()
        fuel = bool(options.fuel)
        maps = woven.layout.offset_maps if woven is not None and fuel else {}
        original_ops: dict[int, dict[int, str]] = {}
        for f, (woven_pcs, pcs) in maps.items():
            op_at = {ins.pc: ins.op.name for ins in woven.module.function(f).instrs}
            original_ops[f] = {w: op_at[p] for w, p in zip(woven_pcs, pcs, strict=True)}
        return LowerConfig(self.layout, probe_table=probe_table, wasi=wasi,
                           max_depth=_MAX_DEPTH, fixed_memory_sizes=fixed,
                           state_memory=state[0] if state else None, exports=exports,
                           fuel=fuel, interruptible=options.interruptible,
                           original_ops=original_ops)

    def _link(self, obj: bytes, config: LowerConfig) -> jit.Linked:
        rt = self.rt
        ffi, lib = rt.ffi, rt.lib
        imports: dict[str, int] = {}
        for name in RUNTIME_SYMBOLS:
            imports[name] = int(ffi.cast("uintptr_t", getattr(lib, name)))
        for sym in set(config.wasi.values()):
            addr = lib.rt_wasi_lookup(sym.removeprefix("rt_wasi_").encode())
            imports[sym] = int(ffi.cast("uintptr_t", addr))
        exports = [INIT_SYMBOL] + [f"__probes_w{i}" for i in config.exports]
        return jit.link(obj, imports, exports)


def _inline_state(wm: Module) -> tuple[int, int] | None:
    """(index, pages) of the woven module's state memory when it can live inline after the
    context (a defined memory of a fixed, nonzero size), else None."""
    index = next((e.index for e in wm.exports
                  if e.kind == "memory" and e.name == STATE_EXPORT), None)
    if index is None or index < len(wm.imports_of("memory")):
        return None
    limits = wm.all_memories()[index].limits
    if limits.max != limits.min or not limits.min:
        return None
    return index, limits.min


class NativeExecutable:
    """Compiled machine code for one module + probe set; instantiate it to run."""

    def __init__(self, backend: NativeBackend, module: Module, probes: ProbeSet,
                 snapshot: ProbeSet, woven: Woven, compiled_module: Module,
                 linked: jit.Linked, config: LowerConfig, tids: list[int],
                 options: CompileOptions, stats: CompileStats) -> None:
        self.backend = backend
        self.module = module
        """The original module."""
        self.probes = probes
        """The live ProbeSet."""
        self.snapshot = snapshot
        """The probes as they were when compiled."""
        self.woven = woven
        """The woven binary and its layout (what was lowered)."""
        self.compiled_module = compiled_module
        """The woven module, decoded."""
        self.linked = linked
        self.config = config
        self.type_ids = tids
        self.options = options
        self.stats = stats
        """Compile statistics (cache hit, times)."""
        self.wrappers = {i: linked.address(f"__probes_w{i}") for i in config.exports}
        self.init_address = linked.address(INIT_SYMBOL)

    @property
    def wasm(self) -> bytes:
        return self.woven.wasm

    def instantiate(self, wasi: WasiOptions | None = None,
                    imports: dict[str, dict[str, Any]] | None = None) -> NativeInstance:
        return NativeInstance(self, wasi, imports or {})


# -- running --------------------------------------------------------------------------------------

class _StateMemory(_Bytes):
    """A runtime memory seen through the interface of a wasmtime Memory (store ignored)."""

    def __init__(self, inst: NativeInstance, index: int) -> None:
        self._inst = inst
        self._index = index

    def view(self) -> Any:
        inst = self._inst
        if inst._ctx is None:
            raise ProbesError("the instance is closed")
        m = inst._ctx.mems[self._index]
        return inst._ffi.buffer(m.base, m.size)

    def address(self) -> int:
        return int(self._inst._ffi.cast("uintptr_t", self._inst._ctx.mems[self._index].base))

    def data_len(self, store: Any = None) -> int:
        return int(self._inst._ctx.mems[self._index].size)



class NativeInstance(WasmInstance):
    """One instantiation on the C runtime; the probes' host side is the wasm runner's."""

    def __init__(self, exe: NativeExecutable, wasi: WasiOptions | None,  # noqa: C901
                 imports: dict[str, dict[str, Any]]) -> None:
        rt = exe.backend.rt
        self._rt = rt
        self._ffi = rt.ffi
        self._lib = rt.lib
        self.exe = exe  # type: ignore[assignment]
        self.module = exe.module
        self.layout = exe.woven.layout
        self.stats = RunStats()
        self._frozen: bytes | None = None
        self._firsts: dict[int, list[int]] = {}
        self._verbatim_pcs: dict[int, list[int]] = {}
        self._init_stops()
        self.store = None
        self._pending: BaseException | None = None
        self._pending_stop: tuple[list[Location], bool, str | None] | None = None
        """Where `_pending` stopped the guest: frames, whether the innermost
        instruction began, and the import that raised (None: a probe)."""
        self._externs: list[Any] = []
        self._wasi_ptr: Any = None
        self._unsubscribe: Callable[[], None] = lambda: None
        self._closed = False
        self._keep = False
        """The context may be used by other instances (a table or global handed out or
        a table imported): `close` leaves freeing it to the garbage collector."""
        self._linked: list[Any] = []
        """Imported shared objects (keeping their owners alive while this one lives)."""
        self._objects: dict[tuple[str, int], Any] = {}
        """(kind, index) -> the shared object of an imported or exported entity."""
        self._cells: list[Any] = []
        wm = exe.compiled_module
        self._wm = wm
        ffi, lib = self._ffi, self._lib
        nfuncs = wm.num_funcs
        mems = wm.all_memories()
        tables = wm.all_tables()
        globals_ = wm.all_globals()
        state = _inline_state(wm)
        self._inline_state = state[0] if state else None
        if state is not None:
            ctx = lib.rt_ctx_new_inline(len(mems), len(tables), len(globals_), nfuncs,
                                        len(wm.datas), len(wm.elems), exe.config.max_depth,
                                        *state)
        else:
            ctx = lib.rt_ctx_new(len(mems), len(tables), len(globals_), nfuncs,
                                 len(wm.datas), len(wm.elems), exe.config.max_depth)
        if ctx == ffi.NULL:
            raise ProbesError("out of memory creating a native instance")
        self._ctx = ctx
        try:
            self._setup(wasi, imports)
        except BaseException:
            # Active segments may already have put this instance's funcrefs into a shared
            # table: then its context must outlive the failed instantiation.
            self._closed = True
            if not self._keep:
                self._free()
            raise

    # -- instantiation --------------------------------------------------------------------------
    def _setup(self, wasi: WasiOptions | None, imports: dict[str, dict[str, Any]]) -> None:
        exe = self.exe
        wm = self._wm
        ffi, lib, ctx = self._ffi, self._lib, self._ctx
        self._handle = ffi.new_handle(self)
        ctx.py_handle = self._handle
        ctx.fuel = exe.options.fuel
        self._sig_ids = ffi.new("uint32_t[]", max(len(wm.types), 1))
        for k, t in enumerate(wm.types):
            self._sig_ids[k] = sig_id(t)
        ctx.sig_ids = self._sig_ids
        # Memories.
        mem_imports = wm.imports_of("memory")
        for i, mt in enumerate(wm.all_memories()):
            lo, hi = mt.limits.min, mt.limits.max
            if i < len(mem_imports):
                imp = mem_imports[i]
                given = _imported(imports, imp, (NativeMemory, MemoryImport), "a NativeMemory")
                size = given.size() if isinstance(given, NativeMemory) else given.min
                if size < lo or (hi is not None and (given.max is None or given.max > hi)):
                    raise _incompatible(imp)
                if isinstance(given, NativeMemory):
                    lib.rt_memory_attach(ctx, i, given._ptr)
                    self._objects[("memory", i)] = given
                    continue
                lo, hi = given.min, given.max
            if i == self._inline_state:
                continue  # laid out with the context
            if lib.rt_memory_setup(ctx, i, lo, 65536 if hi is None else hi) != 0:
                raise ProbesError(f"cannot allocate memory {i} ({lo} pages)")
        # Tables.
        table_imports = wm.imports_of("table")
        for i, tt in enumerate(wm.all_tables()):
            lo, hi = tt.limits.min, tt.limits.max
            if i < len(table_imports):
                imp = table_imports[i]
                given = _imported(imports, imp, (NativeTable, TableImport), "a NativeTable")
                if isinstance(given, NativeTable):
                    size = given.size()
                    if given.elem != tt.elem or size < lo or (
                            hi is not None and (given.max is None or given.max > hi)):
                        raise _incompatible(imp)
                    lib.rt_table_attach(ctx, i, given._ptr)
                    self._link_table(i, given)
                    continue
                lo, hi = given.min, given.max
            if lib.rt_table_setup(ctx, i, lo, 0xFFFFFFFF if hi is None else hi) != 0:
                raise ProbesError(f"cannot allocate table {i} ({lo} elements)")
        # Functions: descriptors for funcrefs, with the JIT code addresses.
        nfuncs = wm.num_funcs
        addrs = ffi.new("void *[]", max(nfuncs, 1))
        ffi.cast("void (*)(void **)", exe.init_address)(addrs)
        for i in range(nfuncs):
            fr = ctx.funcs[i]
            fr.code = addrs[i]
            fr.ctx = ctx
            ti = wm.imports_of("func")[i].desc if i < wm.num_imported_funcs else \
                wm.function(i).type_index
            assert isinstance(ti, int)
            fr.type_id = self._sig_ids[ti]
            fr.index = i
        self._funcs_base = int(ffi.cast("uintptr_t", ctx.funcs))
        self._funcref_size = ffi.sizeof("rt_funcref")
        # Host functions.
        self._host_funcs: dict[int, tuple[Callable[..., Any], FuncType]] = {}
        for i, imp in enumerate(wm.imports_of("func")):
            if i in exe.config.wasi:
                continue
            assert isinstance(imp.desc, int)
            ft = wm.types[imp.desc]
            given = imports.get(imp.module, {}).get(imp.name)
            if given is None and imp.module in WASI_MODULES:
                sig = WASI_SIGNATURES.get(imp.name) or WASI_ENOSYS.get(imp.name)
                if sig is None:
                    raise LinkError(f"unknown import: `{imp.module}::{imp.name}` is not a "
                                    f"WASI preview1 function", f"{imp.module}.{imp.name}")
                if sig != (tuple(t.name for t in ft.params), tuple(t.name for t in ft.results)):
                    raise _incompatible(imp)
                given = _enosys(imp.name, ft)
            if given is None:
                raise LinkError(f"unknown import: `{imp.module}::{imp.name}` has not been "
                                f"defined", f"{imp.module}.{imp.name}")
            if isinstance(given, NativeFunc):
                if given.type != ft:
                    raise _incompatible(imp)
                given = given.raw()
            if not callable(given) or isinstance(given, (NativeMemory, NativeTable,
                                                         NativeGlobal)):
                raise _incompatible(imp)
            self._host_funcs[i] = (given, ft)
        # Globals.
        gl_imports = wm.imports_of("global")
        for i, imp in enumerate(gl_imports):
            given = imports.get(imp.module, {}).get(imp.name)
            if given is None:
                raise LinkError(f"unknown import: `{imp.module}::{imp.name}` has not been "
                                f"defined", f"{imp.module}.{imp.name}")
            gt = imp.desc
            assert isinstance(gt, GlobalType)
            if isinstance(given, (NativeMemory, NativeTable, NativeFunc)) or callable(given):
                raise _incompatible(imp)
            if isinstance(given, NativeGlobal):
                if given.type != gt:
                    raise _incompatible(imp)
                if gt.valtype.is_ref and given._externs is not self._externs:
                    self._adopt_externs(given._externs)
                if gt.mutable:  # shared by reference: the slot holds the exporter's slot
                    ctx.globals[i] = int(ffi.cast("uintptr_t", given._cell))
                    self._objects[("global", i)] = given
                    self._linked.append(given)
                else:
                    ctx.globals[i] = given.bits
                continue
            gtype = getattr(given, "type", None)
            if isinstance(gtype, ValType) and gtype != gt.valtype:
                raise _incompatible(imp)
            bits = self._value_bits(given, gt.valtype)
            if gt.mutable:  # a private slot of this instance
                cell = ffi.new("uint64_t[1]", [bits])
                self._cells.append(cell)
                ctx.globals[i] = int(ffi.cast("uintptr_t", cell))
            else:
                ctx.globals[i] = bits
        for k, g in enumerate(wm.globals):
            ctx.globals[len(gl_imports) + k] = self._eval_const(g.init)
        # Segments.
        for i, d in enumerate(wm.datas):
            if lib.rt_segment_setup(ctx, 0, i, d.init, len(d.init)) != 0:
                raise ProbesError("out of memory")
        for i, el in enumerate(wm.elems):
            refs = self._elem_refs(el)
            raw = struct.pack(f"<{len(refs)}Q", *refs)
            if lib.rt_segment_setup(ctx, 1, i, raw, len(refs)) != 0:
                raise ProbesError("out of memory")
        # WASI.
        if wasi is not None or any(imp.module in WASI_MODULES for imp in wm.imports):
            self._setup_wasi(wasi or WasiOptions())
        # Probe state and memory 0, as the wasm runner sees them.
        state_index = next(e.index for e in wm.exports
                           if e.kind == "memory" and e.name == "__probes_state")
        self._state = _StateMemory(self, state_index)  # type: ignore[assignment]
        self._memory = _StateMemory(self, 0) if self.module.all_memories() else None  # type: ignore[assignment]
        self._exports = {e.name: e.index for e in wm.exports if e.kind == "func"}
        self._globals_exports = {e.name: e.index for e in wm.exports if e.kind == "global"}
        # Active segments, in order (traps here fail the instantiation).
        for i, el in enumerate(wm.elems):
            if el.mode == "active":
                assert el.offset is not None
                off = self._eval_const(el.offset) & 0xFFFFFFFF
                st = lib.rt_table_init(ctx, el.table, i, off, 0, len(el))
                if st:  # named as the wasm backend (wasmtime) names it
                    raise Trap(TRAP_NAMES[TRAP["table"]])
            if el.mode in ("active", "declarative"):
                lib.rt_elem_drop(ctx, i)
        for i, d in enumerate(wm.datas):
            if d.mode == "active":
                assert d.offset is not None
                off = self._eval_const(d.offset) & 0xFFFFFFFF
                st = lib.rt_memory_init(ctx, d.memory, i, off, 0, len(d.init))
                if st:
                    raise Trap(TRAP_NAMES[TRAP["memory"]])
                lib.rt_data_drop(ctx, i)
        # The wasm runner's probe bookkeeping.
        self._init_probe_state()
        if self.layout.moved_start is not None:
            try:
                self._invoke(self._exports[START_EXPORT], ())
            except _Exit as e:  # proc_exit in the start function, as in `call`
                raise SystemExit(e.code) from None

    def _setup_wasi(self, opts: WasiOptions) -> None:
        lib, ffi = self._lib, self._ffi
        w = lib.rt_wasi_new()
        if w == ffi.NULL:
            raise ProbesError("out of memory")
        self._wasi_ptr = w
        self._ctx.wasi = w
        for a in opts.argv:
            lib.rt_wasi_add_arg(w, a.encode())
        for k, v in opts.env.items():
            lib.rt_wasi_add_env(w, f"{k}={v}".encode())
        for fd, path in ((0, opts.stdin), (1, opts.stdout), (2, opts.stderr)):
            if path is not None and lib.rt_wasi_set_stdio(w, fd, str(path).encode()) != 0:
                raise ProbesError(f"cannot open {path} for the program's "
                                  f"{('stdin', 'stdout', 'stderr')[fd]}")
        for host, guest in opts.preopens:
            if lib.rt_wasi_preopen(w, str(host).encode(), str(guest).encode()) != 0:
                raise ProbesError(f"cannot preopen directory {host}")

    def _value_bits(self, value: Any, t: ValType) -> int:
        bits = getattr(value, "bits", None)
        if isinstance(bits, int):  # a raw value (FuncRef, or an import given by bits)
            return bits
        if t.is_ref:
            return self.ref_bits(value, t)
        return to_bits(value, t)

    def ref_bits(self, value: Any, t: ValType) -> int:
        """A host value as a reference's bits (None is null)."""
        if value is None:
            return 0
        self._externs.append(value.value if isinstance(value, ExternRef) else value)
        return len(self._externs)

    def funcref_bits(self, func: int) -> int:
        return self._funcs_base + func * self._funcref_size

    def _eval_const(self, expr: tuple[Instr, ...]) -> int:
        stack: list[int] = []
        for ins in expr:
            name = ins.op.name
            if name == "end":
                break
            if name in ("i32.const", "f32.const"):
                stack.append(ins.imm & 0xFFFFFFFF)
            elif name in ("i64.const", "f64.const"):
                stack.append(ins.imm & 0xFFFFFFFFFFFFFFFF)
            elif name == "ref.null":
                stack.append(0)
            elif name == "ref.func":
                stack.append(self.funcref_bits(ins.imm))
            elif name == "global.get":
                stack.append(self._global_cell(ins.imm)[0])
            else:
                b = stack.pop()
                a = stack.pop()
                mask = 0xFFFFFFFF if name.startswith("i32") else 0xFFFFFFFFFFFFFFFF
                op = name.split(".")[1]
                r = a + b if op == "add" else a - b if op == "sub" else a * b
                stack.append(r & mask)
        return stack[-1] if stack else 0

    def _global_cell(self, idx: int) -> Any:
        """Pointer to the 8 bytes of global ``idx`` (another instance's slot for an
        imported mutable global)."""
        ctx = self._ctx
        if idx < len(self._wm.imports_of("global")) and self._wm.all_globals()[idx].mutable:
            return self._ffi.cast("uint64_t *", ctx.globals[idx])
        return ctx.globals + idx

    def _adopt_externs(self, externs: list[Any]) -> None:
        """Share another instance's externref handles (a shared table or global carries
        them); handles this instance made before are kept at their numbers."""
        if externs is self._externs or self._externs:
            return  # renumbering our handles would break the values holding them
        self._externs = externs

    def _link_table(self, index: int, table: NativeTable) -> None:
        self._objects[("table", index)] = table
        if self not in table._owners:
            table._owners.append(self)
        if table not in self._linked:
            self._linked.append(table)
        if table.elem.name == "externref":
            self._adopt_externs(table._externs)
        self._keep = True

    # -- exports as shareable objects -----------------------------------------------------------
    def export(self, name: str) -> Any:
        """The export ``name`` as an object another instantiation can import: a
        `NativeFunc`, `NativeMemory`, `NativeTable` or `NativeGlobal` (the same object
        each time for memories, tables and globals)."""
        if self._ctx is None:
            raise ProbesError("the instance is closed")
        e = next((e for e in self._wm.exports if e.name == name), None)
        if e is None:
            raise ProbesError(f"no export {name!r}")
        if e.kind == "func":
            return NativeFunc(self, e.index, self._wm.func_type(e.index))
        key = (e.kind, e.index)
        obj = self._objects.get(key)
        if obj is not None:
            return obj
        lib, ctx = self._lib, self._ctx
        if e.kind == "memory":
            ptr = ctx.mems[e.index]
            lib.rt_memory_retain(ptr)
            obj = NativeMemory(self._rt, ptr, self._wm.all_memories()[e.index].limits.max)
        elif e.kind == "table":
            ptr = ctx.tables[e.index]
            lib.rt_table_retain(ptr)
            tt = self._wm.all_tables()[e.index]
            obj = NativeTable(self._rt, ptr, tt.elem, tt.limits.max, self._externs)
            self._link_table(e.index, obj)
        elif e.kind == "global":
            obj = NativeGlobal(self, self._global_cell(e.index), self._wm.all_globals()[e.index])
            self._keep = True  # the object (and importers of a mutable one) read our slot
        else:  # pragma: no cover - tags (exceptions) are rejected before
            raise ProbesError(f"cannot export a {e.kind}")
        self._objects[key] = obj
        return obj

    def _elem_refs(self, el: Any) -> list[int]:
        if el.funcs is not None:
            return [self.funcref_bits(f) for f in el.funcs]
        return [self._eval_const(e) for e in el.exprs or ()]

    # -- state access (the wasm runner's hooks) -------------------------------------------------
    def _state_address(self) -> int:
        return int(self._state.address())  # type: ignore[attr-defined]

    def _read_memory(self, addr: int, size: int) -> bytes:
        if self._memory is None:
            raise ProbeError("the program has no memory to read")
        if addr + size > self._memory.data_len():  # type: ignore[union-attr]
            raise read_out_of_bounds(addr, size)
        return self._memory.read(None, addr, addr + size)  # type: ignore[union-attr]

    # -- host calls from generated code ---------------------------------------------------------
    def _host_call(self, kind: int, index: int, io: Any, n: int) -> int:
        try:
            if kind == 1:  # a probe: weaver callback-table slot
                if index == 0:
                    self._flush_trace()
                    return 0
                sig = self.layout.slots[index]
                values = [self._from_value_bits(int(io[k]), t) if t.is_ref
                          else from_bits(int(io[k]), t) for k, t in enumerate(sig.params)]
                self._dispatch(*values)
                return 0
            fn, ft = self._host_funcs[index]
            raw = getattr(fn, "__probes_raw__", False)
            if raw:  # arguments and results as bit patterns
                args = [int(io[k]) for k in range(len(ft.params))]
            else:
                args = [self._from_value_bits(int(io[k]), t) for k, t in enumerate(ft.params)]
            result = fn(*args)
            results = ft.results
            if not results:
                return 0
            if len(results) == 1:
                result = (result,)
            if len(result) != len(results):
                raise ProbesError(f"host function returned {len(result)} values, expected "
                                  f"{len(results)}")
            for k, (v, t) in enumerate(zip(result, results, strict=False)):
                io[k] = int(v) & 0xFFFFFFFFFFFFFFFF if raw else self._value_bits(v, t)
            return 0
        except BaseException as e:  # unwound in C, re-raised by _invoke
            if isinstance(e, _ProbeTrap):
                e.callers = self._callers()
            elif kind == 1:  # a probe failed before its instruction
                site = self.layout.sites[int(io[0])] if index else None  # 0: trace flush
                self._pending_stop = ([site.loc] if site else []) + list(self._callers()), \
                    False, None
            else:  # an import failed in its call, recorded in the caller's frame slot
                imp = self._wm.imports_of("func")[index]
                here = self._frame_locations([int(self._ctx.entry_frame[0])])
                self._pending_stop = here + list(self._callers()), True, \
                    f"{imp.module}.{imp.name}"
            self._pending = e
            return TRAP["host"]

    def _callers(self) -> tuple[Location, ...]:
        """During a host or probe call: where the frames below it made their calls,
        innermost first (the caller's slot is ``ctx->entry_frame`` meanwhile)."""
        ffi, ctx = self._ffi, self._ctx
        depth = (int(ffi.cast("uintptr_t", ctx.entry_frame))
                 - int(ffi.cast("uintptr_t", ctx.frames))) // 8
        return tuple(self._frame_locations(self._records(depth)))

    def _records(self, depth: int) -> list[int]:
        """The innermost `BACKTRACE_LIMIT` frame records below depth ``depth``."""
        frames = self._ctx.frames
        return [int(frames[d]) for d in range(depth - 1, max(depth - BACKTRACE_LIMIT, 0) - 1, -1)]

    def _from_value_bits(self, bits: int, t: ValType) -> Any:
        if t.name == "externref":
            return None if bits == 0 else self._externs[bits - 1]
        if t.name == "funcref":
            return None if bits == 0 else FuncRef(bits)
        return from_bits(bits, t)

    # -- running ---------------------------------------------------------------------------------
    def _invoke(self, fn: Any, args: tuple[Any, ...]) -> Any:
        func = int(fn)
        ft = self._wm.func_type(func)
        bits = [self._value_bits(a, t) for a, t in zip(args, ft.params, strict=False)]
        out = self.invoke_raw(func, bits)
        values = [self._from_value_bits(b, t) for b, t in zip(out, ft.results, strict=False)]
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def invoke_raw(self, func: int, bits: list[int]) -> list[int]:
        """Call function ``func`` with arguments and results as 64-bit patterns."""
        exe = self.exe
        if self._ctx is None or self._closed:
            raise ProbesError("the instance is closed")
        wrapper = exe.wrappers.get(func)  # type: ignore[attr-defined]
        if wrapper is None:
            raise ProbesError(f"function {func} is not exported")
        ft = self._wm.func_type(func)
        if len(bits) != len(ft.params):
            raise ProbesError(f"function {func} takes {len(ft.params)} argument(s), "
                              f"got {len(bits)}")
        self._frozen = None  # the guest runs again: read live state
        for sp_off, _, _ in self.layout.stacks.values():
            self._state.write(None, b"\0\0\0\0", sp_off)  # a trap may have left frames
        io = self._ffi.new("uint64_t[]", max(len(ft.params), len(ft.results), 1))
        for k, v in enumerate(bits):
            io[k] = v & 0xFFFFFFFFFFFFFFFF
        self._pending = None
        ctx = self._ctx
        ctx.interrupt = 0
        fn = self._ffi.cast("void *", wrapper)
        if exe.options.interruptible:
            flag = _InterruptFlag(ctx, self._lib)
            try:
                with _CtrlC(flag):  # type: ignore[arg-type]
                    kind = self._lib.rt_invoke(ctx, fn, io)
            finally:
                flag.detach()
        else:
            kind = self._lib.rt_invoke(ctx, fn, io)
        if kind == 0:
            return [int(io[k]) for k in range(len(ft.results))]
        self._unwound(kind)
        raise AssertionError("unreachable")  # pragma: no cover

    def _unwound(self, kind: int) -> None:
        ctx = self._ctx
        if kind == TRAP["exit"]:
            code = int(ctx.exit_code)
            self.stats.exit_code = code
            self._finish()
            raise _Exit(code)
        pending, self._pending = self._pending, None
        owner: NativeInstance = self  # whose code the pending exception stopped
        if kind == TRAP["host"] and pending is None:
            # A host call failed in another instance's code called through a shared table.
            origin = ctx.trap_origin
            if origin != self._ffi.NULL and origin != ctx and origin.py_handle != self._ffi.NULL:
                owner = self._ffi.from_handle(origin.py_handle)
                pending, owner._pending = owner._pending, None
        if kind == TRAP["host"] and pending is not None:
            if isinstance(pending, _ProbeTrap):
                frames = [pending.loc, *pending.callers][:BACKTRACE_LIMIT]
                owner._stopped_in(frames, began=False)  # locations in the owner's module
                trap = Trap("probe", pending.loc, tuple(frames), pending.reason)
                self.stats.trap = trap
                self._finish()
                raise trap
            stop, owner._pending_stop = owner._pending_stop, None
            if stop is not None:
                frames, began, name = stop
                frames = frames[:BACKTRACE_LIMIT]
                owner._stopped_in(frames, began=began)
                if isinstance(pending, Exception):
                    self.stats.trap = host_trap(pending, frames, name)
            self._finish()
            raise pending
        trap = self._make_trap(kind)
        self._finish()
        if kind == TRAP["interrupt"]:
            raise KeyboardInterrupt
        self.stats.trap = trap
        raise trap

    def _make_trap(self, kind: int) -> Trap:
        ctx = self._ctx
        depth = int(ctx.trap_depth)
        func, pc = int(ctx.trap_func), int(ctx.trap_pc)
        raw: list[tuple[int, int]] = []
        if func >= 0:
            raw.append((func, pc))
        max_depth = self.exe.config.max_depth  # type: ignore[attr-defined]
        frames = [loc for f, p in raw if (loc := self._location(f, p)) is not None]
        frames += self._frame_locations(self._records(min(depth, max_depth + 1)))
        frames = frames[:BACKTRACE_LIMIT]
        top = frames[0] if frames else None
        if top is not None and top.func in self.layout.pcs and kind != TRAP["stack"]:
            _first, index = self._block_of(top)
            # Fuel and interrupt checks sit after a loop and just before a call, where
            # the call has begun (wasmtime checks at the callee's entry): every kind
            # of trap stops at an instruction that began.
            point = _TrapPoint(top.func, index, True)
            self._stopped_at([point], point)
        name = TRAP_NAMES.get(kind, "trap")
        return Trap(name, top, frames)

    def _frame_locations(self, offsets: list[int]) -> list[Location]:
        """Original locations of frame records: calls' module offsets in the compiled
        module (lower.record_frame)."""
        functions = self._wm.functions
        starts = [f.body_offset for f in functions]
        out = []
        for offset in offsets:
            i = bisect.bisect_right(starts, offset) - 1
            if i >= 0 and (loc := self._location(functions[i].index,
                                                 offset - starts[i])) is not None:
                out.append(loc)
        return out

    def _location(self, func: int, pc: int) -> Location | None:
        if func < self.module.num_imported_funcs or func >= self.module.num_funcs:
            return None
        return self._original_location(func, pc)

    def call(self, export: str, *args: Any) -> Any:
        """Call an exported function; traps raise `Trap` at original locations."""
        func = self._exports.get(export)  # type: ignore[attr-defined]
        if func is None:
            names = [e.name for e in self.module.exports if e.kind == "func"]
            raise ProbesError(f"no exported function {export!r} (exports: "
                              f"{', '.join(names) or 'none'})")
        try:
            result = self._invoke(func, args)
        except _Exit as e:
            raise SystemExit(e.code) from None
        self._finish()
        return result

    def run_wasi(self) -> int:
        """Run the WASI command (``_start``); returns its exit code. Traps raise `Trap`."""
        func = self._exports.get("_start")  # type: ignore[attr-defined]
        if func is None:
            raise ProbesError("the program has no _start export: not a WASI command "
                              "(use --invoke to call an export)")
        try:
            self._invoke(func, ())
        except _Exit as e:
            return e.code
        self._finish()
        self.stats.exit_code = 0
        return 0

    def _finish(self) -> None:
        self._frozen = None
        self._flush_trace()
        self._frozen = self._state.read(None, 0, self.layout.state_size)

    @property
    def fuel(self) -> int | None:
        """Fuel left (negative once exhausted), or None when the run is not metered."""
        if not self.exe.options.fuel or self._ctx is None:
            return None
        return int(self._ctx.fuel)

    def global_value(self, name: str) -> Any:
        """The value of an exported global."""
        idx = self._globals_exports.get(name)
        if idx is None:
            raise ProbesError(f"no exported global {name!r}")
        return self._from_value_bits(int(self._global_cell(idx)[0]),
                                     self._wm.all_globals()[idx].valtype)

    def global_bits(self, name: str) -> int:
        idx = self._globals_exports[name]
        return int(self._global_cell(idx)[0])

    def close(self) -> None:
        """Settle intrinsic probes and free the runtime state (once no other instance can
        reach it: see the module docstring)."""
        if self._ctx is None or self._closed:
            return
        try:
            super().close()
            if self._frozen is None:
                self._frozen = self._state.read(None, 0, self.layout.state_size)
        finally:
            self._closed = True
            if not self._keep:
                self._free()

    def _free(self) -> None:
        ctx = self._ctx
        self._ctx = None
        if ctx is not None:
            if self._wasi_ptr is not None:
                ctx.wasi = self._ffi.NULL
                self._lib.rt_wasi_free(self._wasi_ptr)
                self._wasi_ptr = None
            self._lib.rt_ctx_free(ctx)

    def __del__(self) -> None:
        try:
            if getattr(self, "_ctx", None) is not None:
                self._unsubscribe()
                self._free()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class _InterruptFlag:
    """What `_CtrlC` bumps on SIGINT: the ``interrupt`` flag of the context and of
    the instances its code is calling into (``rt_interrupt``; the guest traps at its
    next loop header or call). Detached once the guest returns, so a late signal
    never writes to a freed context."""

    def __init__(self, ctx: Any, lib: Any) -> None:
        self._ctx = ctx
        self._lib = lib
        self._lock = threading.Lock()

    def increment_epoch(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._lib.rt_interrupt(self._ctx)

    def detach(self) -> None:
        with self._lock:
            self._ctx = None


@dataclass(frozen=True)
class FuncRef:
    """A non-null funcref handed to Python (its runtime descriptor address)."""

    bits: int
    """The reference's bits."""


def _imported(imports: dict[str, dict[str, Any]], imp: Any, kinds: tuple[type, ...],
              what: str) -> Any:
    given = imports.get(imp.module, {}).get(imp.name)
    if given is None:
        raise LinkError(f"unknown import: `{imp.module}::{imp.name}` has not been defined "
                        f"(pass {what})", f"{imp.module}.{imp.name}")
    if not isinstance(given, kinds):
        raise _incompatible(imp)
    return given


def _incompatible(imp: Any) -> LinkError:
    return LinkError(f"incompatible import type for `{imp.module}::{imp.name}`",
                     f"{imp.module}.{imp.name}")


def _enosys(name: str, ft: FuncType) -> Callable[..., Any]:
    """A WASI function outside the C subset: fails with ENOSYS (52)."""

    def stub(*args: Any) -> Any:
        if len(ft.results) == 1:
            return _ENOSYS
        return None
    stub.__name__ = f"wasi_{name}_enosys"
    return stub


_ = (itertools, sys, func_symbol)
