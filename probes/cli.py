"""The command line: ``python -m probes COMMAND ...`` (also installed as ``probes``).

Each subcommand is one function registered with `command`, which declares
its arguments::

    @command("hello", "print a greeting", PROG, arg("--loud", action="store_true"))
    def _hello(args: argparse.Namespace) -> int:
        ...
        return 0

User errors (`ProbesError`, unreadable files, unknown functions) print one
line ``probes: error: ...`` to stderr and exit 1; usage errors exit 2;
Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .atomic import atomic_write
from .ir import ProbesError
from .ir.decoder import decode
from .ir.errors import DecodeError, LinkError, ProbeError, UnsupportedFeature, ValidationError
from .ir.features import FEATURES, features_used
from .ir.leb import read_u32
from .ir.loader import InputNotFound, load_bytes
from .ir.module import SECTION_NAMES, Module
from .ir.types import GlobalType, MemoryType, TableType

__all__ = ["COMMANDS", "PROG", "arg", "build_parser", "command", "main"]


# -- registry -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Arg:
    """One ``add_argument`` call."""

    names: tuple[str, ...]
    """Positional name or option strings."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for ``add_argument``."""


def arg(*names: str, **kwargs: Any) -> Arg:
    """Declare an argument of a subcommand (same parameters as ``add_argument``)."""
    return Arg(names, kwargs)


@dataclass(frozen=True, slots=True)
class Command:
    """A registered subcommand."""

    name: str
    """What the user types."""
    help: str
    """One line for ``probes --help``."""
    args: tuple[Arg, ...]
    """Its arguments."""
    run: Callable[[argparse.Namespace], int]
    """Does the work; returns the exit code."""
    description: str | None = None
    """Longer text for ``probes NAME --help`` (defaults to the function's docstring)."""


COMMANDS: dict[str, Command] = {}
"""Subcommands by name, in registration order."""


def command(name: str, help: str, *args: Arg
            ) -> Callable[[Callable[[argparse.Namespace], int]],
                          Callable[[argparse.Namespace], int]]:
    """Register the decorated function as subcommand ``name``."""
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(name, help, args, fn, fn.__doc__)
        return fn
    return register


PROG = arg("prog", metavar="PROG", help="the program: a .wasm, .wat or .c file")
"""The positional program argument most commands take."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="probes",
        description="Dynamic instrumentation and profiling of WebAssembly programs.",
    )
    parser.add_argument("--version", action="version", version=f"probes {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help,
                           description=_dedent(cmd.description) or cmd.help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        for a in cmd.args:
            p.add_argument(*a.names, **a.kwargs)
        p.set_defaults(_run=cmd.run)
    return parser


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name`` (for its usage line)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub: argparse.ArgumentParser = action.choices[name]
            return sub
    return parser


def _dedent(text: str | None) -> str | None:
    if not text:
        return None
    import inspect
    return inspect.cleandoc(text)


# -- shared helpers ---------------------------------------------------------------------
def _load(path: str) -> tuple[bytes, Module]:
    data = load_bytes(path)
    return data, decode(data)


def _write_output(text: str, out: str | None) -> None:
    """Text to stdout, or whole to the file ``out`` (missing folders made, as for -o)."""
    if out is None or out == "-":
        sys.stdout.write(text)
        return
    atomic_write(out, text)


def _resolve_defined_func(m: Module, spec: str) -> int:
    """A defined function's index from a user's NAME_OR_INDEX, or a ProbesError."""
    try:
        func = m.resolve_func(spec)
    except KeyError as e:
        if spec.startswith("$"):
            return _resolve_defined_func(m, spec[1:])
        raise ProbesError(str(e.args[0]) if e.args else f"no function {spec!r}") from None
    if func < m.num_imported_funcs:
        raise ProbesError(f"function {func} ({m.func_name(func)}) is imported and has no body")
    return func


# -- inspect ----------------------------------------------------------------------------
def _sections(data: bytes) -> list[dict[str, Any]]:
    """Section headers of an already decoded (so well-formed) binary."""
    out = []
    pos = 8
    while pos < len(data):
        start = pos
        sid = data[pos]
        size, pos = read_u32(data, pos + 1, len(data))
        entry: dict[str, Any] = {"id": sid, "name": SECTION_NAMES.get(sid, str(sid)),
                                 "offset": start, "payload_offset": pos, "size": size}
        if sid == 0:
            n, p = read_u32(data, pos, pos + size)
            entry["custom_name"] = data[p:p + n].decode("utf-8", errors="replace")
        out.append(entry)
        pos += size
    return out


def _import_desc(m: Module, desc: int | TableType | MemoryType | GlobalType) -> str:
    if isinstance(desc, int):
        sig = str(m.types[desc]) if desc < len(m.types) else "?"
        return f"(type {desc}) {sig}"
    if isinstance(desc, TableType):
        return f"{desc.elem} {_limits(desc.limits.min, desc.limits.max)}"
    if isinstance(desc, MemoryType):
        return f"{_limits(desc.limits.min, desc.limits.max)} pages"
    return f"{'mut ' if desc.mutable else ''}{desc.valtype}"


def _limits(lo: int, hi: int | None) -> str:
    return f"{lo}..{'' if hi is None else hi}"


def inspect_module(path: str, data: bytes, m: Module) -> dict[str, Any]:
    """What ``probes inspect`` reports, as plain data (the ``--json`` output)."""
    nimp = m.num_imported_funcs
    n_imp = {k: len(m.imports_of(k)) for k in ("table", "memory", "global")}
    start = None
    if m.start is not None:
        start = {"index": m.start, "name": m.func_name(m.start)}
    used = features_used(m)
    return {
        "path": path,
        "size": len(data),
        "sections": _sections(data),
        "imports": [{"module": i.module, "name": i.name, "kind": i.kind,
                     "type": _import_desc(m, i.desc)} for i in m.imports],
        "exports": [{"name": e.name, "kind": e.kind, "index": e.index} for e in m.exports],
        "counts": {
            "types": len(m.types),
            "functions": m.num_funcs,
            "imported_functions": nimp,
            "defined_functions": len(m.functions),
            "tables": n_imp["table"] + len(m.tables),
            "imported_tables": n_imp["table"],
            "memories": n_imp["memory"] + len(m.memories),
            "imported_memories": n_imp["memory"],
            "globals": n_imp["global"] + len(m.globals),
            "imported_globals": n_imp["global"],
            "elems": len(m.elems),
            "datas": len(m.datas),
            "customs": len(m.customs),
        },
        "features": [f for f in FEATURES if f in used] + sorted(used - set(FEATURES)),
        "code_size": m.code_size,
        "start": start,
    }


def _inspect_text(info: dict[str, Any]) -> str:
    lines = [f"{info['path']}: {info['size']} bytes"]
    lines.append(f"sections ({len(info['sections'])}):")
    lines.append(f"  {'id':>3}  {'name':<10} {'offset':>10} {'size':>9}")
    for s in info["sections"]:
        extra = f"  \"{s['custom_name']}\"" if "custom_name" in s else ""
        lines.append(f"  {s['id']:>3}  {s['name']:<10} {s['offset']:>#10x} {s['size']:>9}{extra}")
    lines.append(f"imports ({len(info['imports'])}):")
    for i in info["imports"]:
        lines.append(f"  {i['kind']:<7} {i['module']}.{i['name']}: {i['type']}")
    lines.append(f"exports ({len(info['exports'])}):")
    for e in info["exports"]:
        lines.append(f"  {e['kind']:<7} {e['name']} -> {e['kind']} {e['index']}")
    c = info["counts"]
    lines.append("counts:")

    def row(label: str, total: int, imported: int | None = None, rest: str = "") -> None:
        detail = f" ({imported} imported{rest})" if imported else ""
        lines.append(f"  {label:<10} {total}{detail}")

    row("types", c["types"])
    lines.append(f"  {'functions':<10} {c['functions']} ({c['imported_functions']} imported, "
                 f"{c['defined_functions']} defined)")
    row("tables", c["tables"], c["imported_tables"])
    row("memories", c["memories"], c["imported_memories"])
    row("globals", c["globals"], c["imported_globals"])
    row("elems", c["elems"])
    row("datas", c["datas"])
    lines.append(f"features: {', '.join(info['features'])}")
    lines.append(f"code size: {info['code_size']} bytes")
    st = info["start"]
    if st is None:
        lines.append("start: none")
    else:
        lines.append(f"start: func {st['index']}" + (f" ({st['name']})" if st["name"] else ""))
    return "\n".join(lines) + "\n"


@command("inspect", "summarize a module: sections, imports, exports, counts, features",
         PROG, arg("--json", action="store_true", help="machine-readable JSON output"))
def _inspect(args: argparse.Namespace) -> int:
    """Summarize a module: its size and sections (id, name, offset, payload
    size; custom sections by name), imports, exports, how many types,
    functions, tables, memories, globals and segments it has, the
    WebAssembly features it uses, its code size and start function."""
    data, m = _load(args.prog)
    info = inspect_module(args.prog, data, m)
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
    else:
        sys.stdout.write(_inspect_text(info))
    return 0


# -- cfg --------------------------------------------------------------------------------
@command("cfg", "print the control-flow graph of a function (text or Graphviz DOT)",
         PROG,
         arg("--func", "-f", metavar="NAME_OR_INDEX",
             help="function index, debug name or export name (default: every defined "
                  "function)"),
         arg("--format", choices=("text", "dot"), default="text",
             help="output format (default: text)"),
         arg("-o", "--output", metavar="FILE", help="write to FILE instead of stdout"),
         arg("--profile", metavar="PROFILE.json",
             help="annotate blocks and edges with the counts of a saved profile"))
def _cfg(args: argparse.Namespace) -> int:
    """Print the basic blocks and edges of a function's control-flow graph.

    Blocks list their pc range (byte offsets from the start of the function
    body) and instructions; edges are fallthrough, branch, br_table (with the
    table position), loop (back edges) or return (to the virtual exit).
    With --format dot, render with e.g. `dot -Tsvg`."""
    from .ir.cfg import build_cfg

    _check_output(args.output, "-o", args.prog)
    _check_output(args.output, "-o", args.profile, "profile")
    data, m = _load(args.prog)
    if args.func is not None:
        funcs = [_resolve_defined_func(m, args.func)]
    else:
        funcs = [f.index for f in m.functions]
    annotate = None
    if args.profile:
        from .cli_reports import annotated_cfg
        annotate = annotated_cfg(args.profile, args.prog, data, m)
    parts = []
    for func in funcs:
        if annotate is not None:
            parts.append(annotate(func, args.format))
            continue
        cfg = build_cfg(m, func)
        parts.append(cfg.to_dot(m) if args.format == "dot" else cfg.to_text(m))
    _write_output(("\n" if args.format == "text" else "").join(parts), args.output)
    return 0


# -- running ------------------------------------------------------------------------------
EXIT_USAGE = 2
"""Bad command line (argparse)."""
EXIT_UNKNOWN_MONITOR = 3
"""``--monitor`` names no registered monitor."""
EXIT_BAD_OPTION = 4
"""A monitor option is unknown or has a bad value."""
EXIT_LINK = 5
"""An import of the program could not be satisfied."""
EXIT_BAD_MODULE = 65
"""The module is malformed, invalid or uses an unsupported feature (EX_DATAERR)."""
EXIT_NO_INPUT = 66
"""The program or profile file is missing or unreadable (EX_NOINPUT)."""
EXIT_TRAP = 134
"""The guest trapped (like wasmtime's CLI: 128 + SIGABRT)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C."""


class _MonitorSpecError(ProbesError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _monitors(specs: Sequence[str]) -> list[Any]:
    from .ir.errors import ProbeError
    from .monitors import available, create, refuse_duplicates

    out = []
    for spec in specs:
        name = spec.partition(":")[0]
        if name not in available():
            raise _MonitorSpecError(f"unknown monitor {name!r} (available: "
                                    f"{', '.join(available())}; see `probes monitors`)",
                                    EXIT_UNKNOWN_MONITOR)
        try:
            # Checked here too (run() checks it) so that it is a bad option, exit 4.
            refuse_duplicates([*(m.name for m in out), name])
            out.append(create(spec))
        except ProbeError as e:
            raise _MonitorSpecError(str(e), EXIT_BAD_OPTION) from None
    return out


def _dirs(specs: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        host, sep, guest = spec.partition(":")
        if not host:
            raise ProbesError(f"--dir {spec}: expected HOST[:GUEST] (no host directory)")
        if not os.path.isdir(host):
            raise ProbesError(f"--dir {spec}: {host} is not a directory")
        out.append((host, guest if sep else host))
    return out


def _env(specs: Sequence[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key:
            raise ProbesError(f"--env {spec!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _check_output(path: str | None, option: str, prog: str | None = None,
                  what_is: str = "program") -> None:
    """Refuse, before a long run, an output path that cannot be written (or that
    is the input ``prog`` itself: the program, or ``what_is``)."""
    if not path or path == "-":
        return
    what = f"{option}{path}" if option.endswith("=") else f"{option} {path}"
    if os.path.isdir(path):
        raise ProbesError(f"{what}: is a directory")
    if prog and os.path.isfile(path) and os.path.isfile(prog) and os.path.samefile(path, prog):
        raise ProbesError(f"{what}: that is the {what_is}; refusing to overwrite it")
    parent = os.path.dirname(path)
    while parent and not os.path.exists(parent):  # created on write
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise ProbesError(f"{what}: {parent} is not a directory")


def _check_stdin(path: str | None) -> None:
    if path is None:
        return
    if not os.path.exists(path):
        raise ProbesError(f"--stdin {path}: no such file")
    if os.path.isdir(path):
        raise ProbesError(f"--stdin {path}: is a directory")


class _Progress:
    """Says what is going on when a step takes long (compiling a large module)."""

    def __init__(self, what: str, delay: float = 0.5) -> None:
        import threading
        import time

        self.what = what
        self.delay = delay
        self._start = time.monotonic()
        self._shown = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        if not self._done.wait(self.delay):
            self._shown = True
            sys.stderr.write(f"probes: {self.what}...\n")
            sys.stderr.flush()

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import time

        self._done.set()
        self._thread.join()
        if self._shown and exc[0] is None:
            sys.stderr.write(f"probes: {self.what}: done in "
                             f"{time.monotonic() - self._start:.1f} s\n")


RUN_ARGS = (
    PROG,
    arg("--backend", "-b", default="wasm", choices=("wasm", "native"),
        help="execution backend (default: wasm, on wasmtime)"),
    arg("--dir", action="append", default=[], metavar="HOST[:GUEST]",
        help="preopen a host directory for the program (repeatable)"),
    arg("--env", action="append", default=[], metavar="KEY=VALUE",
        help="set an environment variable for the program (repeatable)"),
    arg("--invoke", nargs="+", metavar=("EXPORT", "ARG"),
        help="call an exported function with arguments instead of running _start"),
    arg("--stdin", metavar="FILE", help="read the program's stdin from FILE"),
    arg("program_args", nargs="*", default=[], metavar="-- ARGS",
        help="arguments for the program (after --)"),
)


def _execute(args: argparse.Namespace, monitor_specs: Sequence[str]) -> int:
    """Run the program under monitors; shared by `run` and `trace`."""
    from .api import run

    monitors = _monitors(monitor_specs)
    for mon in monitors:  # e.g. trace:file=...: written after the run
        if isinstance(getattr(mon, "file", None), str):
            _check_output(mon.file, f"-m {mon.name}:file=", args.prog)
    _check_output(getattr(args, "output", None), "-o", args.prog)
    _check_output(getattr(args, "report", None), "--report", args.prog)
    profile_out, report_out = getattr(args, "output", None), getattr(args, "report", None)
    if profile_out and report_out and \
            os.path.abspath(profile_out) == os.path.abspath(report_out):
        raise ProbesError(f"-o and --report both name {profile_out}: the summaries would "
                          "replace the profile")
    _check_stdin(args.stdin)
    invoke = args.invoke[0] if args.invoke else None
    invoke_args = tuple(args.invoke[1:]) if args.invoke else ()
    try:
        result = run(args.prog, monitors, backend=args.backend, argv=args.program_args,
                     env=_env(args.env), dirs=_dirs(args.dir), invoke=invoke,
                     args=invoke_args, stdin=args.stdin, progress=_Progress,
                     interruptible=True)
    except ProbeError as e:
        if invoke is not None and args.program_args and " argument(s) " in str(e):
            # `--invoke f -- 5`: the 5 went to the program's argv.
            raise ProbeError(f"{e} (arguments after -- go to the program's argv; give the "
                             f"export's after --invoke {invoke})") from None
        raise
    out = getattr(args, "output", None)
    if out:
        result.profile.save(out)
    report_file = getattr(args, "report", None)
    texts = [text for _, text in result.reports()]
    if texts:
        body = "\n\n".join(texts) + "\n"
        if report_file:
            atomic_write(report_file, body.encode())  # like -o: makes missing folders
        else:
            sys.stdout.flush()
            sys.stderr.write(body)
    if invoke is not None and result.trap is None and not result.interrupted:
        value = result.value
        if value is not None:
            sys.stdout.write(f"{value}\n")
    if result.interrupted:
        _error("interrupted" + (f"; profile written to {out}" if out else ""))
        return EXIT_INTERRUPTED
    if result.trap is not None:
        t = result.trap
        module = result.module
        where = ""
        if t.location is not None:
            name = module.func_name(t.location.func)
            where = f" in {name}" if name else ""
            if 0 <= t.location.pc < 2**32:
                where += (f" (func {t.location.func} pc {t.location.pc}, module offset "
                          f"0x{module.offset_of(t.location):x})")
            else:  # the engine did not know where in the function (stack overflow)
                where += f" (func {t.location.func})"
        _error(f"trap: {t.kind}{where}" + (f"; profile written to {out}" if out else ""))
        return EXIT_TRAP
    return exit_status(result.exit_code)


def exit_status(code: int | None) -> int:
    """The process exit status for a WASI exit code: itself when it fits in 0..255,
    else 255 (the OS would keep only the low byte, so proc_exit(256) would look
    like success)."""
    if not code:
        return 0
    return code if 0 <= code <= 255 else 255


@command("run", "run a WASI program (or one export) on a backend, without probes",
         *RUN_ARGS)
def _run_cmd(args: argparse.Namespace) -> int:
    """Run a WASI program with stdio passed through; exits with its exit code.

    Example: probes run examples/interp.wasm -- 3"""
    return _execute(args, [])


@command("trace", "run a program under monitors and collect a profile",
         *RUN_ARGS,
         arg("--monitor", "-m", action="append", default=[], metavar="NAME[:K=V,...]",
             help="attach a monitor (repeatable; see `probes monitors`)"),
         arg("-o", "--output", metavar="OUT.json", help="write the whole profile as JSON"),
         arg("--report", metavar="FILE", help="write the monitors' summaries to FILE "
                                              "instead of stderr"))
def _trace(args: argparse.Namespace) -> int:
    """Run a WASI program (or one export with --invoke) under monitors.

    The program's stdio is passed through and probes exits with the program's
    exit code. Each monitor prints a summary to stderr (or --report FILE) and
    the whole profile goes to -o OUT.json, also when the program traps.

    Examples:
      probes trace examples/fib.wasm -m icount -m branches -o fib.json
      probes trace examples/loop.wat -m coverage --invoke run 10
      probes trace prog.wasm -m hotness:top=5 --dir data:/data -- input.txt"""
    return _execute(args, args.monitor or ["icount"])


@command("monitors", "list the available monitors and their options")
def _monitors_cmd(args: argparse.Namespace) -> int:
    """List every monitor with its help text and options (NAME:KEY=VALUE,...)."""
    from .monitors import available, options_help

    for name, cls in available().items():
        sys.stdout.write(f"{name:<10} {cls.help}\n")
        for opt, text, default in options_help(cls):
            sys.stdout.write(f"{'':<12}{opt}={default!r}: {text}\n")
    return 0


@command("instrument", "write the instrumented module for any engine with multi-memory",
         PROG,
         arg("--monitor", "-m", action="append", default=[], metavar="NAME[:K=V,...]",
             help="monitor whose probes to weave in (repeatable)"),
         arg("-o", "--output", required=True, metavar="OUT.wasm", help="where to write"),
         arg("--layout", metavar="FILE", help="also write the probe-state layout as JSON"))
def _instrument(args: argparse.Namespace) -> int:
    """Weave the monitors' probes into the program and write the result.

    The woven module exports its probe state as memory `__probes_state`
    (counters and flags at the offsets in --layout) and a funcref table
    `__probes_table` that must be filled with host callbacks before any
    Python-callback probe fires (monitors that only count need nothing)."""
    from .api import prepare
    from .backends.wasm.weaver import weave
    from .probeset import ProbeSet

    monitors = _monitors(args.monitor)
    _check_output(args.output, "-o")
    _check_output(args.layout, "--layout")
    module, _, _ = prepare(args.prog)
    probes = ProbeSet(module)
    for mon in monitors:
        mon.attach(module, probes)
    with _Progress(f"weaving {args.prog}"):
        # Every flag in the state memory, at the offsets --layout documents.
        woven = weave(module, probes, flag_globals=False)
    atomic_write(args.output, woven.wasm)
    if args.layout:
        atomic_write(args.layout, json.dumps(_layout_json(woven), indent=1).encode())
    sys.stderr.write(f"probes: wrote {args.output} ({len(woven.wasm)} bytes, "
                     f"{woven.layout.state_size} bytes of probe state)\n")
    return 0


def _layout_json(woven: Any) -> dict[str, Any]:
    lay = woven.layout
    return {
        "state_memory": "__probes_state", "callback_table": "__probes_table",
        "state_size": lay.state_size,
        "block_counters": [{"func": f, "first_instr": i, "offset": off,
                            "pc": lay.pcs[f][i]} for (f, i), off in
                           sorted(lay.block_counters.items())],
        # A flag is set when its first byte is nonzero (flags are 1 or 4 bytes).
        "coverage_flags": [{"func": f, "first_instr": i, "offset": off,
                            "pc": lay.pcs[f][i]} for (f, i), off in
                           sorted(lay.cov_flags.items())],
        "coverage_implied": [{"func": f, "first_instr": i, "pc": lay.pcs[f][i],
                              "after": [{"func": g, "pc": lay.pcs[g][j]} for g, j in after]}
                             for (f, i), after in sorted(lay.cov_implied.items())],
        "histograms": [{"offset": off, "slots": n} for off, n in lay.histograms.values()],
        "callback_sites": [{"func": s.loc.func, "pc": s.loc.pc, "slot": s.slot}
                           for s in lay.sites],
        "trace_buffer": {"offset": lay.trace_buf, "capacity": lay.trace_capacity,
                         "entry_bytes": 16} if lay.trace_buf else None,
    }


from . import cli_reports  # noqa: E402,F401  (registers report/coverage)


# -- entry point ------------------------------------------------------------------------
def _error(message: str) -> None:
    one_line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    sys.stderr.write(f"probes: error: {one_line or 'unknown error'}\n")


def _os_error(e: OSError) -> str:
    if e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return str(e)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        argv = list(sys.argv[1:] if argv is None else argv)
        # Everything after the first `--` belongs to the program, whatever options
        # come between PROG and it (argparse alone binds positionals too early).
        rest: list[str] | None = None
        if "--" in argv:
            cut = argv.index("--")
            argv, rest = argv[:cut], argv[cut + 1:]
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version (0) and usage errors (2)
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        if rest is not None:
            if not hasattr(args, "program_args"):
                try:
                    _subparser(parser, args.command).error(
                        f"{args.command} takes no program arguments after --")
                except SystemExit:
                    return EXIT_USAGE
            args.program_args = list(args.program_args or []) + rest
        result: int = args._run(args)
        sys.stdout.flush()
        return result
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except _MonitorSpecError as e:
        _error(str(e))
        return e.code
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and keep Python
        # from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (DecodeError, ValidationError, UnsupportedFeature) as e:
        prog = getattr(args, "prog", None)
        _error(f"{prog}: {e}" if prog else str(e))
        return EXIT_BAD_MODULE
    except LinkError as e:
        _error(str(e))
        return EXIT_LINK
    except InputNotFound as e:
        _error(str(e))
        return EXIT_NO_INPUT
    except ProbesError as e:
        _error(str(e))
        return 1
    except OSError as e:
        _error(_os_error(e))
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
