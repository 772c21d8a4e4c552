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
from pathlib import Path
from typing import Any

from .ir import ProbesError
from .ir.decoder import decode
from .ir.errors import DecodeError
from .ir.features import FEATURES, features_used
from .ir.leb import read_u32
from .ir.loader import load_bytes
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
    if out is None or out == "-":
        sys.stdout.write(text)
        return
    Path(out).write_text(text, encoding="utf-8")


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
         arg("-o", "--output", metavar="FILE", help="write to FILE instead of stdout"))
def _cfg(args: argparse.Namespace) -> int:
    """Print the basic blocks and edges of a function's control-flow graph.

    Blocks list their pc range (byte offsets from the start of the function
    body) and instructions; edges are fallthrough, branch, br_table (with the
    table position), loop (back edges) or return (to the virtual exit).
    With --format dot, render with e.g. `dot -Tsvg`."""
    from .ir.cfg import build_cfg

    _, m = _load(args.prog)
    if args.func is not None:
        funcs = [_resolve_defined_func(m, args.func)]
    else:
        funcs = [f.index for f in m.functions]
    parts = []
    for func in funcs:
        cfg = build_cfg(m, func)
        parts.append(cfg.to_dot(m) if args.format == "dot" else cfg.to_text(m))
    _write_output(("\n" if args.format == "text" else "").join(parts), args.output)
    return 0


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
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version (0) and usage errors (2)
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        result: int = args._run(args)
        sys.stdout.flush()
        return result
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and keep Python
        # from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except DecodeError as e:
        prog = getattr(args, "prog", None)
        _error(f"{prog}: {e}" if prog else str(e))
        return 1
    except ProbesError as e:
        _error(str(e))
        return 1
    except OSError as e:
        _error(_os_error(e))
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
