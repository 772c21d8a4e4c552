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
from .monitors import Monitor, create, refuse_duplicates
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
    if isinstance(program, (bytes, bytearray, memoryview)):
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
    collected up to it. So does an exception raised by a host function in
    ``imports`` or by a probe's callback: a trap of kind ``host`` at the call,
    whose ``__cause__`` is the exception. Decode, validation, link and probe
    errors do raise.
    """
    module, name, digest = prepare(program)
    call_args = _coerce_args(module, invoke, args) if invoke is not None else []
    if invoke is None:
        _check_start(module)
    if isinstance(monitors, (str, Monitor)):
        monitors = [monitors]
    mons = [create(m) if isinstance(m, str) else m for m in monitors]
    for m in mons:
        if not hasattr(m, "attach"):
            raise TypeError(f"monitors must be Monitor instances or names like 'icount', "
                            f"not {type(m).__name__}")
    refuse_duplicates([m.name for m in mons])
    _check_files(dirs, stdin, stdout, stderr)
    if isinstance(argv, (str, bytes)):
        raise TypeError("argv must be a sequence of strings, not one string")
    bad = [k for k, v in (env or {}).items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise TypeError(f"env keys and values must be strings (bad: {bad[0]!r})")
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
    result = RunResult(ProfileData(program=name, module_sha256=digest, backend=backend,
                                   monitors=[m.name for m in mons]), mons, module)
    try:
        inst = exe.instantiate(wasi=wasi, imports=imports)
    except Trap as start_trap:  # in the start function
        result.trap = start_trap
        inst = None
    except SystemExit as e:  # proc_exit in the start function
        result.exit_code = int(e.code or 0)
        inst = None
    except KeyboardInterrupt:
        result.interrupted = True
        inst = None
    if inst is None:
        for mon in mons:
            mon.collect(result.profile)
    else:
        try:
            if invoke is not None:
                result.value = inst.call(invoke, *call_args)
                result.exit_code = None
            else:
                result.exit_code = inst.run_wasi()
        except Trap as trap:
            result.trap = trap
        except SystemExit as e:  # proc_exit from an invoked export
            result.exit_code = int(e.code or 0)
        except KeyboardInterrupt:
            result.interrupted = True
        except Exception as e:
            # A host function or probe callback raised: a trap of kind ``host``
            # (its cause is the exception), with the profile up to there.
            trap = inst.stats.trap
            if trap is None or trap.__cause__ is not e:
                raise
            result.trap = trap
        finally:
            inst.close()  # first: it delivers buffered events (a Ctrl-C skips that)
            for mon in mons:
                mon.collect(result.profile)
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


def _check_files(dirs: Sequence[tuple[str, str]], stdin: str | None, stdout: str | None,
                 stderr: str | None) -> None:
    """One ProbeError for a preopen or stdio file that cannot work (the engines
    only say "failed to set stdin file")."""
    for host, _guest in dirs:
        if not os.path.isdir(host):
            why = "not a directory" if os.path.exists(host) else "no such directory"
            raise ProbeError(f"preopened directory {host}: {why}")
    if stdin is not None:
        if not os.path.exists(stdin):
            raise ProbeError(f"stdin {stdin}: no such file")
        if os.path.isdir(stdin):
            raise ProbeError(f"stdin {stdin}: is a directory")
    for what, out in (("stdout", stdout), ("stderr", stderr)):
        if out is None:
            continue
        if os.path.isdir(out):
            raise ProbeError(f"{what} {out}: is a directory")
        parent = os.path.dirname(out) or "."
        if not os.path.isdir(parent):
            raise ProbeError(f"{what} {out}: no such directory {parent}")


def _check_start(module: Module) -> None:
    """A ProbeError when ``_start`` is exported but cannot be a WASI command's entry."""
    export = next((e for e in module.exports if e.name == "_start"), None)
    if export is None:
        return  # the backend says so (and how to use --invoke)
    if export.kind != "func":
        raise ProbeError(f"_start is exported as a {export.kind}, not a function: not a WASI "
                         "command (use --invoke to call an export)")
    params = module.func_type(export.index).params
    if params:
        raise ProbeError(f"_start takes parameters ({' '.join(map(str, params))}): not a "
                         "WASI command (use --invoke to call it with arguments)")


_INT_BITS = {"i32": 32, "i64": 64}


def _coerce_args(module: Module, export: str, args: Sequence[Any]) -> list[Any]:
    """Parse string arguments by the export's parameter types."""
    func = next((e.index for e in module.exports if e.kind == "func" and e.name == export), None)
    if func is None:
        names = [e.name for e in module.exports if e.kind == "func"]
        raise ProbeError(f"no exported function {export!r} (exports: "
                         f"{', '.join(names) or 'none'})")
    ftype = module.func_type(func)
    params = ftype.params
    if len(args) != len(params):
        raise ProbeError(f"{export} takes {len(params)} argument(s) "
                         f"({' '.join(map(str, params)) or 'none'}), got {len(args)}")
    if any(t.name == "v128" for t in ftype.results):
        raise ProbeError(f"{export} returns a v128, which cannot be passed to the host")
    out: list[Any] = []
    for a, t in zip(args, params, strict=False):
        if not isinstance(a, str):
            if t.name in _INT_BITS and (isinstance(a, bool) or not isinstance(a, int)):
                raise ProbeError(f"argument {a!r} is not a valid {t}")
            if t.name in ("f32", "f64") and (isinstance(a, bool)
                                              or not isinstance(a, (int, float))):
                raise ProbeError(f"argument {a!r} is not a valid {t}")
            if isinstance(a, int) and t.name in _INT_BITS:
                _check_int_range(a, t.name)
            out.append(a)
            continue
        try:
            if t.name in _INT_BITS:
                out.append(_check_int_range(int(a, 0), t.name))
            elif t.name in ("f32", "f64"):
                out.append(float(a))
            else:
                raise ProbeError(f"cannot pass {t} arguments from the command line")
        except ValueError:
            raise ProbeError(f"argument {a!r} is not a valid {t}") from None
    return out


def _check_int_range(value: int, name: str) -> int:
    """``value`` when an i32/i64 can hold it (signed or unsigned), else a ProbeError."""
    bits = _INT_BITS[name]
    if not -(1 << (bits - 1)) <= value < (1 << bits):
        raise ProbeError(f"argument {value} is out of range for {name} "
                         f"({-(1 << (bits - 1))}..{(1 << bits) - 1})")
    return value



