"""LLVM IR -> machine code with llvmlite.binding, and the on-disk object cache.

The new pass builder runs the O0-O3 pipeline (``CompileOptions.opt_level``);
the host target machine emits an object file, which is cached on disk keyed
by the woven module, the options, the lowering's and the runtime's sources
and the LLVM version, and linked into an ORC LLJIT with the runtime's C
functions imported by address.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import llvmlite
import llvmlite.binding as llvm

from ...ir import ProbesError

__all__ = ["optimize_and_emit", "link", "cache_key", "cache_path", "Linked", "host_cpu"]

_INIT_LOCK = threading.RLock()
_initialized = False
_names = itertools.count()
_TM: dict[int, llvm.TargetMachine] = {}


def _init() -> None:
    global _initialized
    with _INIT_LOCK:
        if not _initialized:
            # llvm.initialize() is gone in llvmlite 0.50; the native target is enough.
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _initialized = True


TUNING = "+prefer-no-gather,+prefer-no-scatter"
"""Tuning added to the host's features. Once a memory size's ``!range`` lets LLVM prove
static arrays in bounds, it vectorizes strided loops with gathers, which are slow on
the CPUs that have them (matmul.c's column walk: 0.94 s with gathers, 0.68 s without,
on an AMD EPYC znver4; clang does the same for Intel parts with the GDS mitigation)."""


def host_cpu() -> tuple[str, str]:
    """The host CPU's name and the features code is compiled for (with `TUNING`)."""
    _init()
    features = llvm.get_host_cpu_features().flatten()
    return llvm.get_host_cpu_name(), f"{features},{TUNING}" if features else TUNING


def target_machine(opt_level: int) -> llvm.TargetMachine:
    _init()
    with _INIT_LOCK:
        tm = _TM.get(opt_level)
        if tm is None:
            target = llvm.Target.from_triple(llvm.get_process_triple())
            cpu, features = host_cpu()
            tm = target.create_target_machine(cpu=cpu, features=features, opt=opt_level,
                                              reloc="pic", codemodel="small")
            _TM[opt_level] = tm
        return tm


def optimize_and_emit(llvm_ir: str, opt_level: int) -> bytes:
    """Parse, verify, optimize and compile to an object file."""
    tm = target_machine(opt_level)
    try:
        mod = llvm.parse_assembly(llvm_ir)
        mod.verify()
    except RuntimeError as e:
        raise ProbesError(f"internal error: invalid LLVM IR from the native lowering: "
                          f"{str(e).strip().splitlines()[0]}") from None
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(speed_level=opt_level)
    pb = llvm.create_pass_builder(tm, pto)
    mpm = pb.getModulePassManager()
    mpm.run(mod, pb)
    return bytes(tm.emit_object(mod))


def cache_key(parts: Iterable[bytes | str]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    cpu, features = host_cpu()
    h.update(f"{llvmlite.__version__}|{llvm.llvm_version_info}|{cpu}|{features}".encode())
    return h.hexdigest()[:32]


def cache_path(cache_dir: str, key: str) -> Path:
    return Path(cache_dir) / "native" / f"{key}.o"


def read_cached(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def write_cached(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs speed


class Linked:
    """Machine code loaded into an LLJIT: symbol addresses, alive as long as this is."""

    def __init__(self, jit: Any, tracker: Any) -> None:
        self._jit = jit
        self._tracker = tracker

    def address(self, name: str) -> int:
        return int(self._tracker[name])


def link(obj: bytes, imports: dict[str, int], exports: list[str]) -> Linked:
    """Load an object file, resolving ``imports`` (name -> address) and libc/libm."""
    tm = target_machine(2)
    jit = llvm.create_lljit_compiler(tm, use_jit_link=True)
    builder = llvm.JITLibraryBuilder().add_object_img(obj).add_current_process()
    for name, addr in imports.items():
        builder = builder.import_symbol(name, addr)
    for name in exports:
        builder = builder.export_symbol(name)
    try:
        tracker = builder.link(jit, f"probes_native_{next(_names)}")
    except RuntimeError as e:
        raise ProbesError(f"internal error: cannot link native code: {e}") from None
    return Linked(jit, tracker)
