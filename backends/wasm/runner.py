"""Running woven modules on wasmtime, and the host side of every probe kind."""

from __future__ import annotations

import bisect
import functools
import hashlib
import importlib.metadata
import os
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime

from ...ir import LinkError, Location, Module, ProbeError, ProbesError, Trap
from ...ir.loader import CACHE_DIR
from ...ir.types import FuncType
from ...probe import (
    CountProbe,
    CoverageProbe,
    DynamicLoc,
    OperandProbe,
    Probe,
    ShadowStackProbe,
    TraceProbe,
    read_out_of_bounds,
)
from ...probeset import ENTRY, EXIT, ProbeSet
from ..base import TABLE_ELEMENTS_LIMIT, CompileOptions, WasiOptions
from .trap_sites import folded_unreachable, memory_site, sunk_load
from .weaver import START_EXPORT, STATE_EXPORT, TABLE_EXPORT, Layout, Woven, weave

__all__ = ["WasmBackend", "WasmExecutable", "WasmInstance"]

_INTRINSIC = (CountProbe, CoverageProbe, OperandProbe, TraceProbe, ShadowStackProbe)

TRAP_KINDS = {
    "STACK_OVERFLOW": "call stack exhausted",
    "MEMORY_OUT_OF_BOUNDS": "out of bounds memory access",
    "HEAP_MISALIGNED": "misaligned memory access",
    "TABLE_OUT_OF_BOUNDS": "undefined element",
    "INDIRECT_CALL_TO_NULL": "uninitialized element",
    "BAD_SIGNATURE": "indirect call type mismatch",
    "INTEGER_OVERFLOW": "integer overflow",
    "INTEGER_DIVISION_BY_ZERO": "integer divide by zero",
    "BAD_CONVERSION_TO_INTEGER": "invalid conversion to integer",
    "UNREACHABLE": "unreachable",
    "INTERRUPT": "interrupt",
    "OUT_OF_FUEL": "out of fuel",
}
"""wasmtime trap codes -> the spec's trap messages."""


class _ProbeTrap(Exception):
    """Raised in a host callback to stop the guest with a Trap at a location."""

    def __init__(self, reason: str, loc: Location) -> None:
        super().__init__(reason)
        self.reason = reason
        self.loc = loc
        self.callers: tuple[Location, ...] = ()
        """Where the frames below made their calls, innermost first (native: read from
        its frame records when the probe stops; wasm reads them from wasmtime's trap)."""


_ENGINES: dict[bool, wasmtime.Engine] = {}
_ENGINE_LOCK = threading.Lock()


def _engine(interruptible: bool = False) -> wasmtime.Engine:
    """The shared engine for a configuration (compiled code belongs to its engine).
    Budgets are metered by the woven code, never by wasmtime's fuel."""
    with _ENGINE_LOCK:
        eng = _ENGINES.get(interruptible)
        if eng is None:
            cfg = wasmtime.Config()
            cfg.wasm_multi_memory = True
            cfg.wasm_simd = True
            cfg.wasm_bulk_memory = True
            cfg.wasm_reference_types = True
            cfg.wasm_multi_value = True
            cfg.epoch_interruption = interruptible
            eng = _ENGINES[interruptible] = wasmtime.Engine(cfg)
        return eng


class _CtrlC:
    """Lets Ctrl-C stop a guest that is running compiled code.

    Python runs its SIGINT handler only between bytecodes, never while the
    guest runs; so a thread watches the signal wakeup fd and bumps the
    engine's epoch, which makes the guest trap with INTERRUPT at its next
    loop or call. Only in the main thread (where signals are delivered).
    """

    def __init__(self, engine: wasmtime.Engine) -> None:
        self.engine = engine
        self._old = -1
        self._fds: tuple[int, int] | None = None

    def __enter__(self) -> _CtrlC:
        import signal

        if threading.current_thread() is not threading.main_thread():
            return self
        r, w = os.pipe()
        os.set_blocking(w, False)
        try:
            self._old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        except ValueError:
            os.close(r)
            os.close(w)
            return self
        self._fds = (r, w)
        threading.Thread(target=self._watch, args=(r,), daemon=True).start()
        return self

    def _watch(self, r: int) -> None:
        import signal

        while True:
            try:
                data = os.read(r, 64)
            except OSError:
                return
            if not data:
                return
            if signal.SIGINT in data:
                self.engine.increment_epoch()

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._fds is None:
            return
        signal.set_wakeup_fd(self._old)
        r, w = self._fds
        os.close(w)
        os.close(r)


def _compile_cached(engine: wasmtime.Engine, wasm: bytes,
                    options: CompileOptions) -> wasmtime.Module:
    """wasmtime compile, cached on disk by content hash and wasmtime version."""
    if not options.cache:
        return wasmtime.Module(engine, wasm)
    version = importlib.metadata.version("wasmtime")
    flavour = f"|{version}|{options.interruptible}"
    key = hashlib.sha256(wasm + flavour.encode()).hexdigest()[:32]
    cache_dir = Path(options.cache_dir or CACHE_DIR) / "wasmtime"
    path = cache_dir / f"{key}.cwasm"
    if path.exists():
        try:
            return wasmtime.Module.deserialize_file(engine, str(path))
        except wasmtime.WasmtimeError:
            pass  # stale or corrupt entry: recompile and overwrite
    mod = wasmtime.Module(engine, wasm)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(mod.serialize())
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs speed
    return mod


class WasmBackend:
    """Probes woven into re-emitted Wasm, run on wasmtime."""

    name = "wasm"

    def compile(self, module: Module, probes: ProbeSet | None = None,
                options: CompileOptions | None = None) -> WasmExecutable:
        options = options or CompileOptions()
        probes = probes if probes is not None else ProbeSet(module)
        snapshot = probes.copy()
        # The budget is metered by the woven code (probe code costs nothing), not
        # by wasmtime's fuel, which would charge the probes' instructions too.
        woven = weave(module, snapshot, options.trace_capacity, options.dynamic,
                      fuel=bool(options.fuel), count_tree=options.count_tree,
                      interruptible=options.interruptible)
        engine = _engine(options.interruptible)
        try:
            compiled = _compile_cached(engine, woven.wasm, options)
        except wasmtime.WasmtimeError as e:
            raise ProbesError(f"wasmtime rejected the woven module: {_first_line(e)}") from None
        return WasmExecutable(module, probes, snapshot, woven, engine, compiled, options)


class WasmExecutable:
    """A compiled, instrumented module; instantiate it to run."""

    def __init__(self, module: Module, probes: ProbeSet, snapshot: ProbeSet, woven: Woven,
                 engine: wasmtime.Engine, compiled: wasmtime.Module,
                 options: CompileOptions) -> None:
        self.module = module
        """The original module."""
        self.probes = probes
        """The live ProbeSet (changes during a run are honoured at armed sites)."""
        self.snapshot = snapshot
        """The probes as they were when compiled."""
        self.woven = woven
        """The instrumented binary and its layout."""
        self.engine = engine
        self.compiled = compiled
        self.options = options

    @property
    def wasm(self) -> bytes:
        return self.woven.wasm

    def instantiate(self, wasi: WasiOptions | None = None,
                    imports: dict[str, dict[str, Any]] | None = None) -> WasmInstance:
        return WasmInstance(self, wasi, imports or {})


@dataclass
class _TrapPoint:
    func: int
    index: int
    """Instruction index in the body; instructions after it did not run."""
    inclusive: bool
    """Whether the instruction at `index` itself began (False for probe traps)."""


class _RanAtStops:
    """What the guest's stops prove ran: for each frame, its block up to the
    frame's point and, where coverage classes share flags, the blocks that
    dominate it (ir/dominance.py: the innermost frame is the one that matters)."""

    def __init__(self, layout: Layout, firsts_of: Any) -> None:
        self.layout = layout
        self.firsts_of = firsts_of
        self.upto: dict[tuple[int, int], tuple[int, bool]] = {}
        """(func, block first index) -> furthest (index, began) a frame stood at."""
        self.whole: set[tuple[int, int]] = set()
        """(func, block first index) of blocks that ran to their end."""

    def add(self, stack: list[_TrapPoint]) -> None:
        layout = self.layout
        for tp in stack:
            firsts = self.firsts_of(tp.func)
            pos = bisect.bisect_right(firsts, tp.index) - 1
            key = (tp.func, firsts[pos])
            mark = (tp.index, tp.inclusive)
            if self.upto.get(key, (-1, False)) < mark:
                self.upto[key] = mark
            idom = layout.cov_idom.get(tp.func)
            if idom:
                d = idom[pos]
                # A block already present brought its own dominators with it.
                while d >= 0 and (tp.func, firsts[d]) not in self.whole:
                    self.whole.add((tp.func, firsts[d]))
                    d = idom[d]

    def reached(self, func: int, first: int) -> bool:
        """Whether control reached the block's first instruction (a stop just
        before it counts)."""
        return (func, first) in self.whole or (func, first) in self.upto

    def covers(self, func: int, first: int, index: int) -> bool:
        if (func, first) in self.whole:
            return True
        mark = self.upto.get((func, first))
        return mark is not None and (index < mark[0] or (index == mark[0] and mark[1]))


@dataclass
class RunStats:
    """Facts about one instance's execution."""

    exit_code: int | None = None
    """WASI exit code, when the program exited."""
    trap: Trap | None = None
    """The trap that ended the run, if any. When a host function or a probe
    callback raised, the call re-raises that exception, and this is the trap
    it stands for (kind ``host``, the exception as ``__cause__``)."""


def host_trap(e: Exception, frames: Sequence[Location], name: str | None) -> Trap:
    """What an exception raised in host code does to the guest: it stops the run
    where the import (``name``) or the probe was called."""
    what = f"host function {name}" if name else "a probe callback"
    trap = Trap("host", frames[0] if frames else None, frames,
                f"{what} raised {type(e).__name__}: {e}")
    trap.__cause__ = e
    return trap


class WasmInstance:
    """One instantiation: a store, its probe state and the host callbacks."""

    def __init__(self, exe: WasmExecutable, wasi: WasiOptions | None,
                 imports: dict[str, dict[str, Any]]) -> None:
        self.exe = exe
        self.module = exe.module
        self.layout: Layout = exe.woven.layout
        self.stats = RunStats()
        self._init_stops()
        self._frozen: bytes | None = None
        self._firsts: dict[int, list[int]] = {}
        self._verbatim_pcs: dict[int, list[int]] = {}
        self._flag_global_objs: dict[str, Any] = {}  # export name -> wasmtime.Global
        self._pending: BaseException | None = None
        self._pending_import: str | None = None  # the import that raised `_pending`
        self._generic_raised: tuple[BaseException, str] | None = None  # see `_invoke`
        self._calls_in_progress = 0  # guest calls on the stack (host callbacks re-enter)
        self._keep: list[Any] = []  # raw callbacks must outlive the store
        self.store = wasmtime.Store(exe.engine)
        self.store.set_limits(table_elements=TABLE_ELEMENTS_LIMIT)
        if exe.options.interruptible:
            self.store.set_epoch_deadline(1)
        linker = wasmtime.Linker(exe.engine)
        if wasi is not None or any(i.module.startswith("wasi") for i in self.module.imports):
            self.store.set_wasi((wasi or WasiOptions()).to_wasmtime())
            linker.define_wasi()
            self._shadow_proc_exit(linker)
        self._define_imports(linker, imports)
        try:
            self.instance = linker.instantiate(self.store, exe.compiled)
        except wasmtime.Trap as t:
            raise self._convert_trap(t) from None
        except wasmtime.WasmtimeError as e:
            msg = _first_line(e)
            if msg.startswith(("unknown import", "incompatible import")):
                raise LinkError(f"cannot instantiate: {msg}") from None
            # Not the program's imports: the host's resources (e.g. memory).
            raise ProbesError(f"cannot instantiate: {msg}") from None
        ex = self.instance.exports(self.store)
        self._exports = ex
        self._state = ex[STATE_EXPORT]
        mem0 = self.layout.memory_exports.get(0)
        self._memory = ex[mem0] if mem0 is not None else None  # "" is a name too
        self._fill_table(ex[TABLE_EXPORT])
        if self.layout.fuel_export:
            ex[self.layout.fuel_export].set_value(self.store, wasmtime.Val.i64(exe.options.fuel))
        self._init_probe_state()
        if self.layout.moved_start is not None:
            try:
                self._invoke(ex[START_EXPORT], ())
            except _Exit as e:  # proc_exit in the start function, as in `call`
                raise SystemExit(e.code) from None

    def _init_probe_state(self) -> None:
        """The host side of the probes, once the state memory is reachable.
        (Shared with the native backend, whose instances subclass this one.)"""
        self._inline: dict[Location, set[int]] = {}
        self._sites: list[Any] = [None] * len(self.layout.sites)
        self._site_locs = {site.loc for site in self.layout.sites}
        self._bind_intrinsics()
        probes = self.exe.probes
        for loc, flag in self.layout.armed.items():
            if probes.at(loc) or probes.global_probes:
                self._write_flag(flag, b"\x01")
        self._unsubscribe = probes.subscribe(self._on_change)

    # -- linking ---------------------------------------------------------------------------
    def _define_imports(self, linker: wasmtime.Linker,
                        imports: dict[str, dict[str, Any]]) -> None:
        linker.allow_shadowing = True
        for imp in self.module.imports:
            provided = imports.get(imp.module, {}).get(imp.name)
            if provided is None:
                continue
            if callable(provided) and not isinstance(provided, wasmtime.Func):
                if imp.kind != "func":
                    raise LinkError(f"import {imp.module}.{imp.name} is a {imp.kind}, "
                                    f"not a function", f"{imp.module}.{imp.name}")
                assert isinstance(imp.desc, int)
                ft = self.module.types[imp.desc]
                wft = wasmtime.FuncType([_wt(t) for t in ft.params],
                                        [_wt(t) for t in ft.results])
                raw = _raw_import(self, wft, ft, provided, f"{imp.module}.{imp.name}")
                if raw is not None:
                    linker.define(self.store, imp.module, imp.name, raw)
                else:
                    linker.define_func(imp.module, imp.name, wft,
                                       self._noting_raises(provided, f"{imp.module}.{imp.name}"))
            else:
                linker.define(self.store, imp.module, imp.name, provided)

    def _noting_raises(self, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        """``fn``, noting what it raises: wasmtime-py re-raises it from the call."""
        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            except Exception as e:
                self._generic_raised = (e, name)
                raise
        return call

    def _shadow_proc_exit(self, linker: wasmtime.Linker) -> None:
        """Our own ``proc_exit`` (see `_raw_proc_exit`)."""
        for imp in self.module.imports:
            if (imp.module, imp.name, imp.kind) == ("wasi_snapshot_preview1", "proc_exit",
                                                    "func") and raw_host_calls():
                ft = self.module.types[imp.desc]  # type: ignore[index]
                if [t.name for t in ft.params] == ["i32"] and not ft.results:
                    linker.allow_shadowing = True
                    linker.define(self.store, imp.module, imp.name, _raw_proc_exit(self))

    def _fill_table(self, table: wasmtime.Table) -> None:
        """One host function per callback signature. Numeric signatures use a raw
        trampoline (no per-call wrapper objects: ~0.5 µs instead of ~2.5 µs per
        call); anything else, or a wasmtime-py without that API, the generic one."""
        for slot, sig in enumerate(self.layout.slots):
            ft = wasmtime.FuncType([_wt(t) for t in sig.params], [])
            func = _raw_host_func(self, ft, slot, sig.params)
            if func is None:
                fn = self._flush_trace if slot == 0 else self._dispatch
                func = wasmtime.Func(self.store, ft, fn)
            table.set(self.store, slot, func)

    # -- intrinsic probes: live readers over the state memory ---------------------------------
    def _state_bytes(self, start: int, size: int) -> bytes:
        if self._frozen is not None:
            return self._frozen[start:start + size]
        return self._with_flag_globals(self._state.read(self.store, start, start + size), start)

    def _with_flag_globals(self, raw: Any, start: int) -> bytes:
        """State bytes from ``start`` with the flags kept in globals filled in."""
        flags = self.layout.flag_globals
        if not flags:
            return bytes(raw)
        out = bytearray(raw)
        for off, name in flags.items():
            if start <= off < start + len(out):
                out[off - start] = self._flag_global(name)
        return bytes(out)

    def _flag_global(self, name: str) -> int:
        g = self._flag_global_objs.get(name)
        if g is None:  # one export lookup per flag, not per read
            g = self._flag_global_objs[name] = self.instance.exports(self.store)[name]
        assert isinstance(g, wasmtime.Global)
        return 1 if g.value(self.store) else 0

    def _u64(self, offset: int) -> int:
        return struct.unpack("<Q", self._state_bytes(offset, 8))[0]

    def _u8(self, offset: int) -> int:
        return self._state_bytes(offset, 1)[0]

    def _block_of(self, loc: Location) -> tuple[int, int]:
        """(block first index, instruction index) of an original location."""
        pcs = self.layout.pcs[loc.func]
        index = bisect.bisect_left(pcs, loc.pc)
        firsts = self._firsts_of(loc.func)
        return firsts[bisect.bisect_right(firsts, index) - 1], index

    def count_at(self, loc: Location) -> int:
        """Executions of ``loc`` (or an entry/exit site) counted by the woven code."""
        if loc.pc in (ENTRY, EXIT):
            off = self.layout.site_counters.get(loc)
            return 0 if off is None else self._u64(off)
        first, index = self._block_of(loc)
        if loc.func in self.layout.count_trees:
            n = self._tree_counts(loc.func)[bisect.bisect_left(self._firsts_of(loc.func), first)]
        else:
            off = self.layout.block_counters.get((loc.func, first))
            if off is None:
                raise ProbeError(f"no counter was woven for {loc}")
            n = self._u64(off)
        # Each trap in this block counted the instructions after it once too often.
        for at, began in self._overrun.get((loc.func, first), ()):
            if index > at or (index == at and not began):
                n -= 1
        return n

    def _tree_counts(self, func: int) -> list[int]:
        """Entries of every block of a function counted on a spanning tree
        (count_tree.py), from its counters and the stops recorded so far. Solved
        again only when those change (a probe reading many counts mid-run reads
        one snapshot of them)."""
        where = self._tree_where.get(func)
        if where is None:
            firsts = self._firsts_of(func)
            offs = [self.layout.block_counters[(func, firsts[k])]
                    for k in self.layout.count_trees[func].measured]
            lo = min(offs, default=0)  # a function's counters are allocated together
            where = self._tree_where[func] = (lo, max(offs, default=lo - 8) + 8 - lo,
                                              [o - lo for o in offs])
        lo, size, rel = where
        raw = self._state_bytes(lo, size)
        key = (func, self._nstops, raw)
        counts = self._tree_memo.get(key)
        if counts is not None:
            return counts
        tree = self.layout.count_trees[func]
        firsts = self._firsts_of(func)
        counters = {k: struct.unpack_from("<Q", raw, r)[0]
                    for k, r in zip(tree.measured, rel, strict=True)}
        stops: dict[int, int] = {}
        for (g, first), points in self._overrun.items():
            if g == func:
                k = bisect.bisect_left(firsts, first)
                stops[k] = stops.get(k, 0) + len(points)
        counts = tree.solve(counters, stops)[:len(firsts)]
        if len(self._tree_memo) > 4096:
            self._tree_memo.clear()
        self._tree_memo[key] = counts
        return counts

    def covered(self, loc: Location) -> bool:
        """Whether ``loc`` executed, from the woven coverage flags (exact once the
        guest has stopped; while it runs, classes still in progress read False)."""
        if loc.pc in (ENTRY, EXIT):
            off = self.layout.site_flags.get(loc)
            return off is not None and self._u8(off) != 0
        first, index = self._block_of(loc)
        return self._block_covered(loc.func, first, index)

    def _block_covered(self, func: int, first: int, index: int) -> bool:
        key = (func, first)
        if key not in self.layout.cov_flags and key not in self.layout.cov_implied:
            return False        # no coverage asked for here
        # If the class never completed, where runs stopped shows what of it ran
        # (ir/dominance.py).
        return self._class_completed(func, first) or self._ran.covers(func, first, index)

    def _class_completed(self, func: int, first: int,
                         memo: dict[tuple[int, int], bool] | None = None) -> bool:
        """Whether the coverage class of this block reached its last instruction."""
        key = (func, first)
        off = self.layout.cov_flags.get(key)
        if off is not None:
            return self._u8(off) != 0
        after = self.layout.cov_implied.get(key)
        if after is None:
            return False
        # No flag: the class completed iff control reached a block after it (the
        # weaver keeps these from resting on the class, so this recursion ends).
        # Memoized per snapshot: the coverage monitor asks once per instruction.
        if memo is None:
            frozen = self._frozen
            if frozen is not None and self._implied_of is not frozen:
                self._implied_of, self._implied_ran = frozen, {}
            memo = self._implied_ran if frozen is not None else {}
        ran = memo.get(key)
        if ran is None:
            ran = memo[key] = any(self._ran.reached(g, b) or self._class_completed(g, b, memo)
                                  for g, b in after)
        return ran

    def _firsts_of(self, func: int) -> list[int]:
        firsts = self._firsts.get(func)
        if firsts is None:
            firsts = self._firsts[func] = [b.first for b in self.layout.blocks[func]]
        return firsts

    def _init_stops(self) -> None:
        self._overrun: dict[tuple[int, int], list[tuple[int, bool]]] = {}
        """(func, block first index) -> (index, began) of every trap in that block."""
        self._ran = _RanAtStops(self.layout, self._firsts_of)
        """What the stacks of all stops so far prove ran."""
        self._nstops = 0
        """Trap points recorded so far (versions `_overrun`)."""
        self._tree_memo: dict[tuple[int, int, bytes], list[int]] = {}
        """Block counts of spanning-tree functions by (func, stops, counter bytes)."""
        self._tree_where: dict[int, tuple[int, int, list[int]]] = {}
        """func -> (offset, size) of its counters in the state, and each one's place."""
        self._implied_of: bytes | None = None
        self._implied_ran: dict[tuple[int, int], bool] = {}
        """Flagless classes that completed, for the state snapshot `_implied_of`."""

    def _stopped_at(self, stack: list[_TrapPoint], trap_point: _TrapPoint | None) -> None:
        """Record where every frame stood when the guest stopped, innermost first
        (for coverage), and the trap point in the innermost frame (for counts).
        Stops accumulate: an instance may trap in one call and run on in the next."""
        self._ran.add(stack)
        if trap_point is not None:
            firsts = self._firsts_of(trap_point.func)
            first = firsts[bisect.bisect_right(firsts, trap_point.index) - 1]
            self._overrun.setdefault((trap_point.func, first), []).append(
                (trap_point.index, trap_point.inclusive))
            self._nstops += 1

    def _stopped_in(self, frames: list[Location], began: bool = True,
                    entered: bool = True) -> None:
        """The guest stopped with these frames (innermost first); ``began``: whether
        the innermost frame's instruction started (not for a probe before it);
        ``entered``: False when the innermost function stopped in its entry check
        (fuel, interrupt, stack), before any of its code ran."""
        inner = self._points(frames[:1], began) if entered else []
        self._stopped_at(inner + self._points(frames[1:]), inner[0] if inner else None)

    def _points(self, frames: list[Location], began: bool = True) -> list[_TrapPoint]:
        """Trap points of frames in instrumented functions."""
        points = []
        seen: set[tuple[int, int]] = set()
        for loc in frames:
            if loc.func in self.layout.pcs and loc.pc >= 0 and (loc.func, loc.pc) not in seen:
                seen.add((loc.func, loc.pc))  # deep recursion repeats the same frames
                _first, index = self._block_of(loc)
                points.append(_TrapPoint(loc.func, index, began))
        return points

    def histogram(self, probe: OperandProbe) -> dict[int, int]:
        off, slots = self.layout.histograms[id(probe)]
        raw = self._state_bytes(off, 8 * slots)
        values = struct.unpack(f"<{slots}Q", raw)
        return {i: v for i, v in enumerate(values) if v}

    def _bind_intrinsics(self) -> None:
        histograms_bound: set[int] = set()  # one histogram per probe, wherever inserted
        for loc, probes in self.exe.snapshot.items():
            inline = self._inline.setdefault(loc, set())
            for p in probes:
                if isinstance(p, CountProbe):
                    p._bind(lambda loc=loc: self.count_at(loc))
                elif isinstance(p, CoverageProbe):
                    p._bind(lambda loc=loc: self.covered(loc))
                elif isinstance(p, OperandProbe):
                    if id(p) not in self.layout.histograms:
                        continue  # only in unreachable code
                    if id(p) not in histograms_bound:
                        histograms_bound.add(id(p))
                        p._bind(lambda p=p: self.histogram(p))
                elif isinstance(p, ShadowStackProbe):
                    if id(p) not in histograms_bound:
                        histograms_bound.add(id(p))
                        p._bind(self._stack_reader(p))
                elif not isinstance(p, TraceProbe):
                    continue
                inline.add(id(p))

    def _state_address(self) -> int:
        """Where the state memory's bytes are (fixed: its size never changes)."""
        import ctypes

        return ctypes.addressof(self._state.data_ptr(self.store).contents)

    def _stack_reader(self, probe: ShadowStackProbe) -> Any:
        """A reader of the shadow stack that needs no store access, so a sampling
        thread can call it while the guest runs (the state memory never moves:
        its minimum and maximum size are equal)."""
        import ctypes

        sp_off, buf_off, cap = self.layout.stacks[id(probe)]
        base = self._state_address()

        def read() -> list[int]:
            if self._frozen is not None:
                raw_sp = self._frozen[sp_off:sp_off + 4]
            else:
                raw_sp = ctypes.string_at(base + sp_off, 4)
            depth = min(struct.unpack("<I", raw_sp)[0] // 4, cap)
            if depth <= 0:
                return []
            raw = (self._frozen[buf_off:buf_off + 4 * depth] if self._frozen is not None
                   else ctypes.string_at(base + buf_off, 4 * depth))
            return list(struct.unpack(f"<{depth}I", raw))
        return read

    def _on_change(self, kind: str, loc: Location | None, probe: Probe) -> None:
        """A probe was inserted or removed while this instance is live."""
        layout = self.layout
        if loc is None:  # global probes
            if layout.armed:
                on = b"\x01" if self.exe.probes.global_probes else None
                for l2, flag in layout.armed.items():
                    self._write_flag(flag, on or self._wanted(l2))
            elif kind == "insert" and not any(s.is_global for s in layout.sites):
                raise ProbeError("global probes inserted during a run need a module compiled "
                                 "with dynamic=True (or a global probe at compile time)")
            return
        if loc in layout.armed:
            self._write_flag(layout.armed[loc], self._wanted(loc))
        inline = self._inline.get(loc, set())
        if kind == "remove":
            if id(probe) in inline and not any(p is probe for p in self.exe.probes.at(loc)):
                inline.discard(id(probe))
                self._settle_one(probe)
            return
        if loc in self._site_locs:
            return  # fired by the host dispatcher from now on
        if isinstance(probe, CountProbe) and loc.pc >= 0 and loc.func in layout.pcs:
            first, _ = self._block_of(loc)
            if (loc.func, first) in layout.block_counters or loc.func in layout.count_trees:
                base = self.count_at(loc)
                probe._bind(lambda: self.count_at(loc) - base)
                inline.add(id(probe))
                self._inline[loc] = inline
                return
        raise ProbeError(f"cannot insert a probe at {loc} during a run: no site was woven "
                         f"there (compile with dynamic=True to arm every location)")

    def _wanted(self, loc: Location) -> bytes:
        probes = self.exe.probes
        return b"\x01" if probes.at(loc) or probes.global_probes else b"\x00"

    def _write_flag(self, offset: int, value: bytes) -> None:
        self._state.write(self.store, value, offset)

    def _settle_one(self, probe: Probe) -> None:
        settle = getattr(probe, "_settle", None)
        if settle is not None:
            for src in list(getattr(probe, "_sources", ())):
                settle(src)

    # -- host dispatch ---------------------------------------------------------------------
    def _dispatch(self, site_id: int, *values: Any) -> None:
        """Fire the host-dispatched probes of a site, in order.

        What fires is looked up in the live ProbeSet, cached per site until the
        set changes; the tuple is taken when the firing begins, so changes to
        this site's list made by the probes themselves wait for the next one.
        The DynamicLoc is reused: it is only valid during `fire`.
        """
        entry = self._sites[site_id]
        if entry is None or entry[0] != self.exe.probes.version:
            entry = self._site_entry(site_id)
        _, fires, dl, k = entry
        if values:
            dl._operands = values[:k]
            dl._locals = values[k:]
        for fire in fires:
            action = fire(dl)
            if action is not None and action.trap_reason is not None:
                raise _ProbeTrap(action.trap_reason, dl.location)

    def _site_entry(self, site_id: int) -> tuple[int, tuple[Any, ...], DynamicLoc, int]:
        site = self.layout.sites[site_id]
        loc = site.loc
        probes: tuple[Probe, ...] = self.exe.probes.at(loc)
        if site.is_global:
            probes = self.exe.probes.global_probes + probes
        inline = self._inline.get(loc, ())
        fires = tuple(p.fire for p in probes if id(p) not in inline)
        dl = DynamicLoc(loc.func, loc.pc, site.reads, (), (),
                        self._read_memory if site.reads.memory else None)
        entry = (self.exe.probes.version, fires, dl, site.reads.operands)
        self._sites[site_id] = entry
        return entry

    def _read_memory(self, addr: int, size: int) -> bytes:
        if self._memory is None:
            raise ProbeError("the program has no memory to read")
        if addr + size > self._memory.data_len(self.store):
            raise read_out_of_bounds(addr, size)
        return bytes(self._memory.read(self.store, addr, addr + size))

    def _flush_trace(self) -> None:
        layout = self.layout
        if not layout.trace_buf:
            return
        pos = struct.unpack("<I", self._state_bytes(0, 4))[0]
        n = pos // 16
        if not n:
            return
        raw = self._state_bytes(layout.trace_buf, pos)
        self._state.write(self.store, b"\0\0\0\0", 0)
        per_probe: dict[int, tuple[TraceProbe, list[tuple[Location, int]]]] = {}
        for site, value in struct.iter_unpack("<I4xQ", raw[:n * 16]):
            loc = layout.trace_sites[site]
            for p in self.exe.snapshot.at(loc):
                if isinstance(p, TraceProbe):
                    per_probe.setdefault(id(p), (p, []))[1].append((loc, value))
        for p, events in per_probe.values():
            p._append(events)

    # -- running ---------------------------------------------------------------------------
    def _invoke(self, fn: Any, args: tuple[Any, ...]) -> Any:
        self._frozen = None  # the guest runs again: read live state
        for sp_off, _, _ in self.layout.stacks.values():
            self._state.write(self.store, b"\0\0\0\0", sp_off)  # a trap may have left frames
        try:
            if self.exe.options.interruptible:
                if not self._calls_in_progress:
                    # A deadline one tick past the engine's epoch now: a Ctrl-C that
                    # stopped (or came after) an earlier call does not stop this one.
                    self.store.set_epoch_deadline(1)
                self._calls_in_progress += 1
                try:
                    with _CtrlC(self.exe.engine):
                        return fn(self.store, *args)
                finally:
                    self._calls_in_progress -= 1
            return fn(self.store, *args)
        except wasmtime.ExitTrap as e:
            self.stats.exit_code = e.code
            self._finish()
            raise _Exit(e.code) from None
        except (wasmtime.Trap, wasmtime.WasmtimeError) as t:
            pending, self._pending = self._pending, None
            if pending is not None:  # raised in a raw host function
                if isinstance(pending, _ProbeTrap):
                    return self._probe_trapped(pending, t)
                frames = self._frames(t)
                if isinstance(pending, _Exit):  # proc_exit: the call began, and ended all
                    self._stopped_in(frames)
                    self.stats.exit_code = pending.code
                    self._finish()
                    raise pending from None
                # An import failed in its call (which began), or a probe before its
                # instruction (which did not).
                name, self._pending_import = self._pending_import, None
                self._stopped_in(frames, began=name is not None)
                if isinstance(pending, Exception):
                    self.stats.trap = host_trap(pending, frames, name)
                self._finish()
                raise pending from None
            if not isinstance(t, wasmtime.Trap):  # e.g. the host ran out of memory
                raw = _wasm_frames(t)
                self._stopped_in(self._locations(raw), entered=self._entered(raw))
                self._finish()
                raise ProbesError(f"wasmtime: {_first_line(t)}") from None
            trap = self._convert_trap(t)
            self._finish()
            if trap.kind == "interrupt":
                raise KeyboardInterrupt from None
            self.stats.trap = trap
            raise trap from None
        except _ProbeTrap as pt:
            return self._probe_trapped(pt)
        except Exception as e:
            raised, self._generic_raised = self._generic_raised, None
            if raised is None or raised[0] is not e:
                raise
            # A host function on wasmtime-py's generic path (reference types, or no
            # unchecked API) raised it: the guest's frames are lost with it.
            self._stopped_in([])
            self.stats.trap = host_trap(e, [], raised[1])
            self._finish()
            raise

    def _probe_trapped(self, pt: _ProbeTrap, t: Exception | None = None) -> Any:
        """A probe asked to stop the program: a Trap at the probe's location, before
        its instruction (``t``: the wasmtime trap, whose frames show the callers)."""
        callers = self._frames(t)[1:] if t is not None else []
        self._stopped_in([pt.loc, *callers], began=False)
        trap = Trap("probe", pt.loc, (pt.loc, *callers), pt.reason)
        self.stats.trap = trap
        self._finish()
        raise trap from None

    def call(self, export: str, *args: Any) -> Any:
        """Call an exported function; traps raise `Trap` at original locations."""
        fn = self._exports.get(export) if hasattr(self._exports, "get") else None
        if fn is None:
            try:
                fn = self._exports[export]
            except KeyError:
                fn = None
        if not isinstance(fn, wasmtime.Func):
            names = [e.name for e in self.module.exports if e.kind == "func"]
            raise ProbesError(f"no exported function {export!r} (exports: "
                              f"{', '.join(names) or 'none'})")
        try:
            result = self._invoke(fn, args)
        except _Exit as e:
            raise SystemExit(e.code) from None
        self._finish()
        return result

    @property
    def fuel(self) -> int | None:
        """Fuel left (negative once exhausted), or None when the run is not metered."""
        name = self.layout.fuel_export
        return None if name is None else int(self._exports[name].value(self.store))

    def run_wasi(self) -> int:
        """Run the WASI command (``_start``); returns its exit code. Traps raise `Trap`."""
        try:
            fn = self._exports["_start"]
        except KeyError:
            raise ProbesError("the program has no _start export: not a WASI command "
                              "(use --invoke to call an export)") from None
        try:
            self._invoke(fn, ())
        except _Exit as e:
            return e.code
        self._finish()
        self.stats.exit_code = 0
        return 0

    def _finish(self) -> None:
        """The guest stopped (return, exit or trap): deliver buffered trace events and
        snapshot the probe state so reading thousands of counters is cheap."""
        self._frozen = None
        self._flush_trace()
        self._frozen = self._with_flag_globals(
            self._state.read(self.store, 0, self.layout.state_size), 0)

    def close(self) -> None:
        """Settle intrinsic probes (keep their final values) and release the store."""
        self._flush_trace()
        for _loc, probes in self.exe.snapshot.items():
            for p in probes:
                if isinstance(p, (CountProbe, OperandProbe)):
                    for src in list(p._sources):
                        p._settle(src)
                elif isinstance(p, CoverageProbe):
                    if p.hit:
                        p._sources.clear()
        self._unsubscribe()

    def _convert_trap(self, t: wasmtime.Trap) -> Trap:
        code = t.trap_code
        kind = TRAP_KINDS.get(code.name if code is not None else "", "")
        if not kind:
            kind = _first_line(t).removeprefix("wasm trap: ") or "trap"
        raw = _wasm_frames(t)
        frames = self._locations(raw)
        budget = self.layout.fuel_traps.get(raw[0]) if raw else None
        if budget is not None:  # a woven budget check
            kind = "out of fuel"
            loc, began = budget
            frames[0] = loc
            self._stopped_in(frames, began=began)
        else:
            if frames and kind in ("unreachable", "out of bounds memory access"):
                frames[0] = self._fused_trap_site(frames[0], kind)
            self._stopped_in(frames, entered=self._entered(raw))
        return Trap(kind, frames[0] if frames else None, frames)

    def _fused_trap_site(self, loc: Location, kind: str) -> Location:
        """The instruction that trapped, where Cranelift reported the trap at another
        it had fused it with (`trap_sites`)."""
        if not self.module.num_imported_funcs <= loc.func < self.module.num_funcs:
            return loc
        instrs = self.module.function(loc.func).instrs
        pcs = self.layout.pcs.get(loc.func) or [ins.pc for ins in instrs]
        index = bisect.bisect_left(pcs, loc.pc)
        if index >= len(instrs) or instrs[index].pc != loc.pc:
            return loc
        if kind == "unreachable":
            site = folded_unreachable(instrs, index)
        else:
            site = sunk_load(instrs, index)
            if site == index:
                site = folded_unreachable(instrs, index, memory=True)
            if site == index:
                site = memory_site(instrs, index, self._memory_size)
        return loc if site == index else Location(loc.func, instrs[site].pc)

    def _memory_size(self, index: int) -> int | None:
        """The size in bytes of the program's memory ``index`` now."""
        name = self.layout.memory_exports.get(index)
        if name is None:
            return None
        return int(self._exports[name].data_len(self.store))

    def _entered(self, raw: list[tuple[int, int]]) -> bool:
        """Whether the innermost of the raw frames (`_wasm_frames`) got past its
        function's entry check: a trap at a woven offset before the body's first
        original instruction stopped before the entry counters and probes ran."""
        if not raw:
            return True
        func, offset = raw[0]
        if offset < 0:
            return False
        maps = self.layout.offset_maps.get(func)
        return maps is None or not maps[0] or offset >= maps[0][0]

    def _frames(self, t: Exception) -> list[Location]:
        """The guest frames of a trap or error at original locations, innermost first."""
        return self._locations(_wasm_frames(t))

    def _locations(self, raw: list[tuple[int, int]]) -> list[Location]:
        frames = []
        for func, offset in raw:
            loc = self._original_location(func, offset)
            if loc is not None:
                frames.append(loc)
        return frames

    def _original_location(self, func: int, woven_pc: int) -> Location | None:
        if func < self.module.num_imported_funcs:
            return None
        maps = self.layout.offset_maps.get(func)
        if maps is None:
            # Copied verbatim: an offset of the original body. Name the instruction
            # it falls in (wasmtime may report a function's own offset, or none).
            instrs = self.module.function(func).instrs
            pcs = self._verbatim_pcs.get(func)
            if pcs is None:
                pcs = self._verbatim_pcs[func] = [ins.pc for ins in instrs]
            i = max(0, bisect.bisect_right(pcs, woven_pc) - 1)
            return Location(func, pcs[i]) if pcs else None
        woven, orig = maps
        i = bisect.bisect_left(woven, woven_pc)
        if i >= len(orig):
            i = len(orig) - 1
        return Location(func, orig[i])


_RAW_FIELDS = {"i32": "i32", "i64": "i64", "f32": "f32", "f64": "f64"}
_RAW_REFS = frozenset(["funcref", "externref"])


def _raw_reader(kind: str) -> Callable[[Any, Any], Any]:
    """``read(caller, raw)``: a raw argument of type ``kind`` as wasmtime-py passes it
    to host functions (a number, None, a `wasmtime.Func` or the host's object)."""
    import ctypes

    from wasmtime import _ffi as ffi
    from wasmtime._value import _unintern

    field = _RAW_FIELDS.get(kind)
    if field is not None:
        return lambda caller, raw: getattr(raw, field)
    if kind == "funcref":
        def read_func(caller: Any, raw: Any) -> Any:
            if not raw.funcref:
                return None
            func = ffi.wasmtime_func_t()
            ffi.wasmtime_func_from_raw(ffi.wasmtime_caller_context(caller), raw.funcref,
                                       ctypes.byref(func))
            return wasmtime.Func._from_raw(func)
        return read_func

    def read_extern(caller: Any, raw: Any) -> Any:
        if not raw.externref:
            return None
        context = ffi.wasmtime_caller_context(caller)
        ref = ffi.wasmtime_externref_t()
        ffi.wasmtime_externref_from_raw(context, raw.externref, ctypes.byref(ref))
        try:
            index = ffi.wasmtime_externref_data(context, ctypes.byref(ref))
            return _unintern(index) if index else None
        finally:
            ffi.wasmtime_externref_unroot(ctypes.byref(ref))
    return read_extern


_NULL_FINALIZER: Any = None


@functools.cache
def raw_host_calls() -> bool:
    """Whether this wasmtime-py has the unchecked host-function API `_raw_host_func`
    uses (host calls that keep the trap's frames and cost ~0.5 µs, not ~2.5 µs)."""
    try:
        from wasmtime import _ffi as ffi

        return all(hasattr(ffi, n) for n in ("wasmtime_func_new_unchecked",
                                              "wasmtime_func_unchecked_callback_t",
                                              "wasmtime_trap_new"))
    except ImportError:
        return False


def _park(inst: WasmInstance, e: BaseException) -> int:
    """Park ``e`` on the instance (`_invoke` re-raises it) and return a new trap:
    exceptions cannot cross the C boundary, and the trap keeps the guest's frames."""
    import ctypes

    from wasmtime import _ffi as ffi

    inst._pending = e
    msg = b"probes: host function stopped the guest"
    return ctypes.cast(ffi.wasmtime_trap_new(msg, len(msg)), ctypes.c_void_p).value or 0


def _unchecked_func(inst: WasmInstance, ft: wasmtime.FuncType, callback: Any) -> wasmtime.Func:
    """A wasmtime Func calling ``callback(env, caller, args, nargs) -> trap pointer``."""
    import ctypes

    from wasmtime import _ffi as ffi

    global _NULL_FINALIZER
    if _NULL_FINALIZER is None:
        _NULL_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(0)
    raw_cb = ffi.wasmtime_func_unchecked_callback_t(callback)
    func = ffi.wasmtime_func_t()
    ffi.wasmtime_func_new_unchecked(inst.store._context(), ft.ptr(), raw_cb, None,
                                    _NULL_FINALIZER, ctypes.byref(func))
    inst._keep.append(raw_cb)  # the callback must outlive the store
    return wasmtime.Func._from_raw(func)


def _raw_host_func(inst: WasmInstance, ft: wasmtime.FuncType, slot: int,
                   params: tuple[Any, ...]) -> wasmtime.Func | None:
    """A callback-table function on wasmtime's unchecked API, reading raw arguments
    directly; None when the signature or this wasmtime-py does not allow it."""
    if any(t.name not in _RAW_FIELDS and t.name not in _RAW_REFS
           for t in params) or not raw_host_calls():
        return None
    dispatch = inst._dispatch
    flush = inst._flush_trace
    if any(t.name in _RAW_REFS for t in params):
        readers = [_raw_reader(t.name) for t in params[1:]]

        def callback(env: Any, caller: Any, args: Any, nargs: int) -> int:
            try:
                dispatch(args[0].i32, *[read(caller, args[i + 1])
                                        for i, read in enumerate(readers)])
                return 0
            except BaseException as e:  # noqa: BLE001 - parked, re-raised by _invoke
                return _park(inst, e)

        return _unchecked_func(inst, ft, callback)
    fields = [_RAW_FIELDS[t.name] for t in params[1:]]

    if slot == 0:
        def callback(env: Any, caller: Any, args: Any, nargs: int) -> int:
            try:
                flush()
                return 0
            except BaseException as e:  # noqa: BLE001 - parked, re-raised by _invoke
                return _park(inst, e)
    elif not fields:
        def callback(env: Any, caller: Any, args: Any, nargs: int) -> int:
            try:
                dispatch(args[0].i32)
                return 0
            except BaseException as e:  # noqa: BLE001
                return _park(inst, e)
    else:
        def callback(env: Any, caller: Any, args: Any, nargs: int) -> int:
            try:
                dispatch(args[0].i32, *[getattr(args[i + 1], f)
                                        for i, f in enumerate(fields)])
                return 0
            except BaseException as e:  # noqa: BLE001
                return _park(inst, e)

    return _unchecked_func(inst, ft, callback)


def _raw_import(inst: WasmInstance, wft: wasmtime.FuncType, ft: FuncType,
                fn: Callable[..., Any], name: str) -> wasmtime.Func | None:
    """A user's host function with numeric parameters and results on the unchecked
    API, as wasmtime-py would call it (numbers in, a value or a tuple out): an
    exception it raises becomes a trap that keeps the guest's frames, so the run
    stops at the call with exact probe state. None: the generic path."""
    if any(t.name not in _RAW_FIELDS for t in (*ft.params, *ft.results)) or not raw_host_calls():
        return None
    params = [_RAW_FIELDS[t.name] for t in ft.params]
    results = [_RAW_FIELDS[t.name] for t in ft.results]

    def callback(env: Any, caller: Any, args: Any, nargs: int) -> int:
        try:
            out = fn(*[getattr(args[i], f) for i, f in enumerate(params)])
            if results:
                values = tuple(out) if len(results) > 1 and isinstance(out, (tuple, list)) \
                    else (out,)
                if len(values) != len(results):
                    raise ProbesError(f"host function {name} returned {len(values)} values, "
                                      f"expected {len(results)}")
                for k, (v, f) in enumerate(zip(values, results, strict=True)):
                    setattr(args[k], f, v.value if isinstance(v, wasmtime.Val) else v)
            return 0
        except BaseException as e:  # noqa: BLE001 - parked, re-raised by _invoke
            inst._pending_import = name
            return _park(inst, e)

    return _unchecked_func(inst, wft, callback)


def _raw_proc_exit(inst: WasmInstance) -> wasmtime.Func:
    """WASI ``proc_exit`` as a trap that keeps the guest's frames (wasmtime's own
    exit has none) and any status, as on the native backend (wasmtime refuses
    statuses from 126 on, so C's ``exit(200)`` would not give 200)."""
    ft = wasmtime.FuncType([wasmtime.ValType.i32()], [])

    def callback(env: Any, caller: Any, args: Any, nargs: int) -> int:
        return _park(inst, _Exit(args[0].i32))

    return _unchecked_func(inst, ft, callback)


def _wasm_frames(t: Exception) -> list[tuple[int, int]]:
    """(function index, body offset) of each guest frame a wasmtime Trap or error
    carries, innermost first. (Traps returned by host functions arrive as errors.)"""
    if isinstance(t, wasmtime.Trap):
        return [(fr.func_index, _known_offset(fr.func_offset)) for fr in t.frames or ()]
    try:
        import ctypes

        from wasmtime import _ffi as ffi

        vec = ffi.wasm_frame_vec_t(0, None)
        ffi.wasmtime_error_wasm_trace(t.ptr(), ctypes.byref(vec))  # type: ignore[attr-defined]
        try:
            return [(ffi.wasm_frame_func_index(vec.data[i]),
                     _known_offset(ffi.wasm_frame_func_offset(vec.data[i])))
                    for i in range(vec.size)]
        finally:
            ffi.wasm_frame_vec_delete(ctypes.byref(vec))
    except (ImportError, AttributeError, TypeError):
        return []


def _known_offset(offset: int | None) -> int:
    """A frame's body offset, or -1 where wasmtime knows none (it reports
    2**64 - 1 for a stack overflow in the callee's prologue, before any of its
    instructions)."""
    return -1 if offset is None or offset >= 1 << 32 else offset


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _wt(t: Any) -> wasmtime.ValType:
    return {
        "i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64,
        "f32": wasmtime.ValType.f32, "f64": wasmtime.ValType.f64,
        "funcref": wasmtime.ValType.funcref, "externref": wasmtime.ValType.externref,
        "v128": getattr(wasmtime.ValType, "v128", wasmtime.ValType.i64),
    }[t.name]()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__

