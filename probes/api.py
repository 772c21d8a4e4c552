"""One call to run a program under monitors: what the CLI and most users need.

    >>> import probes
    >>> result = probes.run("examples/fib.wasm", ["icount", "branches"])
    >>> result.profile.total_instructions
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .backends.base import CompileOptions, WasiOptions, get_backend
from .ir import Module, ProbeError, Trap, load_bytes
from .ir.decoder import decode
from .monitors import Monitor, create
from .probeset import ProbeSet
from .profile import ProfileData

__all__ = ["run", "RunResult", "prepare"]


@dataclass
class RunResult:
    """What a run produced."""

    profile: ProfileData
    """Everything the monitors collected (also after a trap)."""
    monitors: list[Monitor]
    """The monitors, for their `report`."""
    module: Module
    """The program."""
    exit_code: int | None = None
    """WASI exit code (0 when ``_start`` returned normally)."""
    trap: Trap | None = None
    """The trap that ended the run, if any."""
    value: Any = None
    """Return value of an ``invoke``d export."""
    interrupted: bool = False
    """Whether Ctrl-C stopped the run."""

    def reports(self) -> list[tuple[str, str]]:
        """(monitor name, summary text) for each monitor with something to say."""
        out = []
        for mon in self.monitors:
            text = mon.report(self.profile, self.module)
            if text:
                out.append((mon.name, text))
        return out


def prepare(program: str | os.PathLike[str] | Module | bytes) -> tuple[Module, str, str]:
    """(module, display name, sha256 of the binary) for a path, bytes or Module."""
    if isinstance(program, Module):
        return program, "<module>", ""
    if isinstance(program, (bytes, bytearray)):
        data = bytes(program)
        return decode(data), "<bytes>", hashlib.sha256(data).hexdigest()
    data = load_bytes(program)
    return decode(data), str(program), hashlib.sha256(data).hexdigest()


def run(program: str | os.PathLike[str] | Module | bytes,
        monitors: Sequence[Monitor | str] = (), *, backend: str = "wasm",
        argv: Sequence[str] | None = None, env: dict[str, str] | None = None,
        dirs: Sequence[tuple[str, str]] = (), invoke: str | None = None,
        args: Sequence[Any] = (), stdin: str | None = None, stdout: str | None = None,
        stderr: str | None = None, imports: dict[str, dict[str, Any]] | None = None,
        options: CompileOptions | None = None, probes: ProbeSet | None = None,
        progress: Callable[[str], ContextManager[Any]] | None = None,
        interruptible: bool = False) -> RunResult:
    """Run a WASI program (or one export with ``invoke``) under ``monitors``.

    A trap does not raise: it is returned in `RunResult.trap`, with the profile
    collected up to it. Decode, validation, link and probe errors do raise.
    """
    module, name, digest = prepare(program)
    mons = [create(m) if isinstance(m, str) else m for m in monitors]
    ps = probes if probes is not None else ProbeSet(module)
    opts = options or CompileOptions()
    if interruptible:
        opts = replace(opts, interruptible=True)
    for mon in mons:
        mon.attach(module, ps)
        extra = mon.compile_options()
        if extra:
            opts = replace(opts, **extra)
    if progress is not None:
        with progress(f"compiling {name} ({module.code_size} bytes of code)"):
            exe = get_backend(backend).compile(module, ps, opts)
    else:
        exe = get_backend(backend).compile(module, ps, opts)
    prog = "program" if name.startswith("<") else Path(name).name
    wasi = WasiOptions(argv=[prog, *(argv or ())], env=dict(env or {}), preopens=list(dirs),
                       stdin=stdin, stdout=stdout, stderr=stderr)
    inst = exe.instantiate(wasi=wasi, imports=imports)
    result = RunResult(ProfileData(program=name, module_sha256=digest, backend=backend,
                                   monitors=[m.name for m in mons]), mons, module)
    try:
        if invoke is not None:
            result.value = inst.call(invoke, *_coerce_args(module, invoke, args))
            result.exit_code = None
        else:
            result.exit_code = inst.run_wasi()
    except Trap as t:
        result.trap = t
    except SystemExit as e:  # proc_exit from an invoked export
        result.exit_code = int(e.code or 0)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        for mon in mons:
            mon.collect(result.profile)
        inst.close()
    result.profile.exit_code = result.exit_code
    if result.trap is not None:
        t = result.trap
        result.profile.trap = {
            "kind": t.kind, "message": str(t),
            "func": t.location.func if t.location else None,
            "pc": t.location.pc if t.location else None,
            "backtrace": [[loc.func, loc.pc] for loc in t.backtrace],
        }
    return result


def _coerce_args(module: Module, export: str, args: Sequence[Any]) -> list[Any]:
    """Parse string arguments by the export's parameter types."""
    func = next((e.index for e in module.exports if e.kind == "func" and e.name == export), None)
    if func is None:
        names = [e.name for e in module.exports if e.kind == "func"]
        raise ProbeError(f"no exported function {export!r} (exports: "
                         f"{', '.join(names) or 'none'})")
    params = module.func_type(func).params
    if len(args) != len(params):
        raise ProbeError(f"{export} takes {len(params)} argument(s) "
                         f"({' '.join(map(str, params)) or 'none'}), got {len(args)}")
    out: list[Any] = []
    for a, t in zip(args, params, strict=False):
        if not isinstance(a, str):
            out.append(a)
            continue
        try:
            if t.name in ("i32", "i64"):
                out.append(int(a, 0))
            elif t.name in ("f32", "f64"):
                out.append(float(a))
            else:
                raise ProbeError(f"cannot pass {t} arguments from the command line")
        except ValueError:
            raise ProbeError(f"argument {a!r} is not a valid {t}") from None
    return out



