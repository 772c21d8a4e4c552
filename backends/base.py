"""The backend contract: every backend compiles a Module + ProbeSet and runs it.

One place (`get_backend`) chooses between implementations; the test suite
runs per backend.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..ir import Module, ProbesError, validate
from ..probeset import ProbeSet

__all__ = ["Backend", "Executable", "Instance", "CompileOptions", "WasiOptions", "get_backend",
           "BACKENDS", "TABLE_ELEMENTS_LIMIT", "FUEL_FREE", "FUEL_BY_OPERAND", "FUEL_FLUSH",
           "check_module"]

FUEL_FREE = frozenset(["nop", "drop", "block", "loop", "end", "else", "return", "unreachable"])
"""Instructions wasmtime's fuel metering does not charge (every other costs 1, and a
function entry 1)."""
FUEL_BY_OPERAND = frozenset(["memory.copy", "memory.fill", "memory.grow"])
"""Instructions that also cost their last operand (bytes moved, pages asked for)."""
FUEL_FLUSH = frozenset(["block", "loop", "if", "else", "end", "br", "br_if", "br_table",
                        "return", "call", "call_indirect", "unreachable"])
"""Instructions before which a straight-line run's accumulated cost is charged
(control may leave the run there). The budget is checked at loop headers and
before calls, where wasmtime checks fuel."""

TABLE_ELEMENTS_LIMIT = 10_000_000
"""Most elements a table may hold (80 MB of references): beyond it, ``table.grow``
returns -1 and instantiation fails, on every backend (cext/runtime.c MAX_TABLE).
Unlimited, one ``table.grow`` could make the host allocate and zero 32 GB."""


_VALID: weakref.WeakSet[Module] = weakref.WeakSet()


def check_module(module: Module) -> None:
    """Validate ``module`` before it is woven (once per Module object).
    The woven module is validated again by its engine, but that cannot catch
    everything: an index one past the program's memories, tables or globals
    names what the weaver appends."""
    if module not in _VALID:
        validate(module)
        for f in module.functions:
            if any(ins.pc < 0 for ins in f.instrs):
                raise ProbesError(
                    f"function {f.index} has instructions without a code offset (a body set "
                    "in Python): run decode(encode(module)) first, so that locations can "
                    "name its instructions")
        _VALID.add(module)


@dataclass(frozen=True)
class CompileOptions:
    """Options every backend understands (backends may ignore some)."""

    trace_capacity: int = 4096
    """Events the in-guest trace buffer holds before it is flushed to the host."""
    cache: bool = True
    """Cache compiled code on disk, keyed by content hash."""
    cache_dir: str | None = None
    """Cache location (default: $PROBES_CACHE_DIR or ~/.cache/probes)."""
    dynamic: bool = False
    """Arm every instruction so probes can be inserted anywhere during a run (slow:
    a flag test per instruction). Otherwise only locations that had probes at
    compile time accept probes during a run."""
    interruptible: bool = False
    """wasm backend: let Ctrl-C stop a running guest (epoch checks in loops/calls)."""
    fuel: int = 0
    """Instruction budget (0: off): wasmtime's fuel cost of the program's own
    instructions (`FUEL_FREE`, `FUEL_BY_OPERAND`); when it runs out the guest traps
    with "out of fuel". Probe code costs nothing, on every backend."""
    opt_level: int = 2
    """native backend: LLVM optimization level 0-3."""
    count_tree: bool = True
    """Count blocks on a spanning tree of each function's flow graph: counters only
    where flow conservation cannot derive the count (the same exact counts, about
    half the increments). False: one counter per counted block."""


@dataclass
class WasiOptions:
    """The WASI environment of a run."""

    argv: list[str] = field(default_factory=lambda: ["program"])
    """Arguments, program name first."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables."""
    preopens: list[tuple[str, str]] = field(default_factory=list)
    """(host directory, guest path) pairs."""
    stdin: str | None = None
    """File for standard input (None: inherit)."""
    stdout: str | None = None
    """File for standard output (None: inherit)."""
    stderr: str | None = None
    """File for standard error (None: inherit)."""

    def to_wasmtime(self) -> Any:
        import wasmtime

        cfg = wasmtime.WasiConfig()
        cfg.argv = list(self.argv)
        cfg.env = list(self.env.items())
        for host, guest in self.preopens:
            cfg.preopen_dir(host, guest)
        if self.stdin is None:
            cfg.inherit_stdin()
        else:
            cfg.stdin_file = self.stdin
        if self.stdout is None:
            cfg.inherit_stdout()
        else:
            cfg.stdout_file = self.stdout
        if self.stderr is None:
            cfg.inherit_stderr()
        else:
            cfg.stderr_file = self.stderr
        return cfg


class Instance(Protocol):
    """A running program with its probe state."""

    def call(self, export: str, *args: Any) -> Any: ...

    def run_wasi(self) -> int: ...

    def close(self) -> None: ...


class Executable(Protocol):
    """A compiled, instrumented program."""

    def instantiate(self, wasi: WasiOptions | None = None,
                    imports: dict[str, dict[str, Any]] | None = None) -> Instance: ...


class Backend(Protocol):
    """Compiles a module with its probes."""

    name: str

    def compile(self, module: Module, probes: ProbeSet | None = None,
                options: CompileOptions | None = None) -> Executable: ...


BACKENDS = ("wasm", "native")
"""Backend names, the default first."""


def get_backend(name: str = "wasm") -> Backend:
    """The backend called ``name``."""
    if name == "wasm":
        from .wasm import WasmBackend
        return WasmBackend()
    if name == "native":
        try:
            from .native import NativeBackend
        except ImportError as e:
            raise ProbesError(f"the native backend needs llvmlite and cffi "
                              f"(pip install 'probes[native]'): {e}") from None
        return NativeBackend()
    raise ProbesError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
