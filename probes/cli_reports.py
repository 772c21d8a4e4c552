"""Report commands: ``probes report`` and ``probes coverage``.

Registered with `probes.cli.command` when `probes.cli` imports this module.
Also provides `annotated_cfg` for ``probes cfg --profile``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import cli as _cli
from .atomic import atomic_write
from .cli import (
    EXIT_INTERRUPTED,
    EXIT_TRAP,
    RUN_ARGS,
    _check_output,
    _check_stdin,
    _dirs,
    _env,
    _Progress,
    _resolve_defined_func,
    _write_output,
    arg,
    command,
)
from .ir import Module, ProbesError
from .ir.decoder import decode
from .ir.loader import InputNotFound, ProgramNotFound, load_bytes
from .profile import ProfileData

__all__ = ["FORMATS", "load_profile", "module_for", "annotated_cfg"]

FORMATS = ("text", "json", "lcov", "speedscope", "collapsed", "chrome", "dot")
"""What ``probes report --format`` writes."""

_NEEDS_MODULE = frozenset(["lcov", "dot"])
"""Formats that cannot do without the program (the others fall back to
function numbers for names)."""


def load_profile(path: str) -> ProfileData:
    """A saved profile, or a one-line ProbesError."""
    try:
        return ProfileData.load(path)
    except FileNotFoundError:
        raise InputNotFound(f"{path}: no such profile (write one with "
                            "`probes trace PROG -m ... -o PROFILE.json`)") from None
    except IsADirectoryError:
        raise InputNotFound(f"{path}: is a directory, not a profile") from None
    except PermissionError:
        raise InputNotFound(f"{path}: permission denied") from None


def _check_hash(profile: ProfileData, path: str, data: bytes) -> None:
    want = profile.module_sha256
    got = hashlib.sha256(data).hexdigest()
    if want and got != want:
        raise ProbesError(f"{path} is not the program this profile was collected from "
                          f"(sha256 {got[:12]}... != {want[:12]}...); pass the right one "
                          "with --program")


def module_for(profile: ProfileData, program: str | None, profile_path: str | None,
               required: bool) -> tuple[Module | None, str | None]:
    """(module, its path) for a profile: ``program`` when given, else the path the
    profile recorded (as is, then beside the profile file). Refuses a module
    whose hash differs from the profile's. None when not found and not
    ``required``."""
    candidates: list[str] = []
    if program:
        candidates.append(program)
    elif profile.program and not profile.program.startswith("<"):
        candidates.append(profile.program)
        if profile_path:
            beside = os.path.join(os.path.dirname(os.path.abspath(profile_path)),
                                  profile.program)
            candidates.append(beside)
            candidates.append(os.path.join(os.path.dirname(os.path.abspath(profile_path)),
                                           os.path.basename(profile.program)))
    for path in candidates:
        if os.path.isfile(path):
            data = load_bytes(path)
            _check_hash(profile, path, data)
            return decode(data), path
    if program:
        raise ProgramNotFound(f"{program}: no such file")
    if required:
        where = f" ({profile.program} not found)" if profile.program else ""
        raise ProbesError(f"this format needs the program{where}: pass --program PROG")
    return None, None


def _source_opts(args: argparse.Namespace, prog_path: str | None) -> dict[str, Any]:
    from .analyses.sourcemap import TOOLCHAIN_PATTERNS

    omit: tuple[str, ...] = () if args.all_sources else TOOLCHAIN_PATTERNS
    omit += tuple(args.omit or ())
    search = [*args.source_dir]
    if prog_path:
        search.append(os.path.dirname(os.path.abspath(prog_path)))
    search.append(os.getcwd())
    return {"include": tuple(args.include or ()), "omit": omit, "search": search}


def _count(text: str) -> int:
    """argparse type: a non-negative integer."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {n}")
    return n


SOURCE_ARGS = (
    arg("--include", action="append", default=[], metavar="GLOB",
        help="only report source files matching GLOB (repeatable)"),
    arg("--omit", action="append", default=[], metavar="GLOB",
        help="leave out source files matching GLOB (repeatable)"),
    arg("--all-sources", action="store_true",
        help="also report C library and runtime sources (left out by default)"),
    arg("--source-dir", action="append", default=[], metavar="DIR",
        help="look for sources here when the paths in the debug info do not exist "
             "(repeatable)"),
)


def _write_listing(listing: tuple[str, str] | None) -> None:
    if listing is not None:
        atomic_write(listing[0], listing[1].encode())
        sys.stderr.write(f"probes: no DWARF line table: coverage is shown on a disassembly "
                         f"listing, {listing[0]}\n")


def _warn_skipped(skipped: Sequence[str]) -> None:
    if skipped:
        shown = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more"
                                          if len(skipped) > 3 else "")
        sys.stderr.write(f"probes: warning: sources not found, left out: {shown} "
                         "(see --source-dir)\n")


def _listing_path(output: str | None, profile: ProfileData) -> str:
    stem = Path(profile.program or "module").stem or "module"
    base = Path(output).parent if output and output != "-" else Path(".")
    return str(base / f"{stem}.listing")


# -- report ---------------------------------------------------------------------------------
@command("report", "render a saved profile as text, JSON, lcov, speedscope, collapsed "
                   "stacks, Chrome trace or DOT",
         arg("profile", metavar="PROFILE.json", help="a profile from `probes trace -o`"),
         arg("--format", "-F", choices=FORMATS, default="text",
             help="output format (default: text)"),
         arg("--func", "-f", metavar="NAME_OR_INDEX",
             help="one function: dot draws its CFG (else the call graph), text and json "
                  "add its CFG with counts (json: also dominators, loops, hot paths)"),
         arg("--program", "-p", metavar="PROG",
             help="the program the profile is of (default: the path it recorded)"),
         arg("-o", "--output", metavar="FILE", help="write to FILE instead of stdout"),
         arg("--top", type=_count, default=15, metavar="N", help="rows per text table"),
         *SOURCE_ARGS)
def _report(args: argparse.Namespace) -> int:
    """Render a profile saved by `probes trace -o PROFILE.json`.

    Formats:
      text        top functions, top source lines, coverage summary (with
                  --func: its CFG with block and edge counts)
      json        everything the analyses compute (with --func: its CFG,
                  dominators, loops and hot paths)
      lcov        lcov tracefile for genhtml (lines, functions, branches)
      speedscope  speedscope JSON from the calling-context tree (-m profile)
      collapsed   "a;b;c N" stacks for flamegraph.pl (-m profile)
      chrome      Chrome trace event JSON for Perfetto (-m trace)
      dot         Graphviz: the call graph, or with --func the CFG, with counts

    Formats that need the program load it from --program or from the path the
    profile recorded, and refuse a program whose sha256 differs."""
    _check_output(args.output, "-o", args.profile, "profile")
    _check_output(args.output, "-o", args.program)
    profile = load_profile(args.profile)
    fmt = args.format
    module, prog_path = module_for(profile, args.program, args.profile,
                                   fmt in _NEEDS_MODULE or args.func is not None)
    if module is None and profile.program:
        sys.stderr.write(f"probes: note: {profile.program} not found: functions are shown by "
                         "number (pass --program PROG for names and source lines)\n")
    func = _resolve_defined_func(module, args.func) if module is not None and args.func \
        else None
    opts = _source_opts(args, prog_path)
    text = render(fmt, profile, module, func=func, top=args.top, output=args.output, **opts)
    _write_output(text, args.output)
    return 0


def render(fmt: str, profile: ProfileData, module: Module | None, *, func: int | None = None,
           top: int = 15, output: str | None = None, include: Sequence[str] = (),
           omit: Sequence[str] | None = None, search: Sequence[str] = ()) -> str:
    """One report as text (what ``probes report`` writes)."""
    from . import analyses
    from .analyses.chrometrace import chrome_trace
    from .analyses.collapsed import collapsed_report
    from .analyses.dotreport import callgraph_dot, cfg_dot
    from .analyses.jsonreport import json_report
    from .analyses.lcovreport import lcov_report
    from .analyses.speedscope import speedscope_report
    from .analyses.textreport import cfg_text, text_report

    try:
        if fmt == "text":
            text = text_report(profile, module, top=top, include=include, omit=omit,
                               search=search)
            if func is not None and module is not None:
                text += "\n" + cfg_text(analyses.cfg(module, func, profile), module)
            return text
        if fmt == "json":
            return json.dumps(json_report(profile, module, func=func, include=include,
                                          omit=omit), indent=1) + "\n"
        if fmt == "lcov":
            assert module is not None
            res = lcov_report(module, profile, search=search, include=include, omit=omit,
                              listing_path=_listing_path(output, profile))
            _write_listing(res.listing)
            _warn_skipped(res.skipped)
            return res.text
        if fmt == "speedscope":
            sm = analyses.source_map(module) if module is not None else None
            return json.dumps(speedscope_report(profile, module, sm)) + "\n"
        if fmt == "collapsed":
            return collapsed_report(profile, module)
        if fmt == "chrome":
            return json.dumps(chrome_trace(profile, module)) + "\n"
        if fmt == "dot":
            assert module is not None
            if func is not None:
                return cfg_dot(analyses.cfg(module, func, profile), module)
            if profile.calls:
                g = analyses.callgraph(module, profile, dynamic=True)
                return callgraph_dot(g, title=f"dynamic call graph of {profile.program}")
            g = analyses.callgraph(module, profile)
            return callgraph_dot(g, title=f"call graph of {profile.program}",
                                 only_called=True)
    except ValueError as e:
        raise ProbesError(str(e)) from None
    raise ProbesError(f"unknown format {fmt!r}")


# -- coverage ----------------------------------------------------------------------------
@command("coverage", "run a program and write its source coverage: lcov .info, summary, "
                     "HTML via genhtml",
         *RUN_ARGS,
         arg("-o", "--output", default="coverage.info", metavar="FILE.info",
             help="where to write the lcov tracefile (default: coverage.info)"),
         arg("--html", metavar="DIR", help="also render HTML into DIR with genhtml (lcov)"),
         arg("--save", metavar="PROFILE.json", help="also save the whole profile"),
         *SOURCE_ARGS)
def _coverage(args: argparse.Namespace) -> int:
    """Run a program with instruction coverage, instruction counts and branch
    profiles, then write an lcov tracefile of its sources (from DWARF: build
    C with -g) and print a summary per file to stderr. Like `coverage run` +
    `coverage lcov/html` in one step.

    Examples:
      probes coverage --html cov-html prog-g.wasm -- arg1 arg2
      genhtml coverage.info -o cov-html     (the same, by hand)

    A module without DWARF is covered on a disassembly listing written next
    to the tracefile. The program's stdio is passed through; probes exits
    with the program's exit code (134 if it trapped)."""
    from .analyses.lcovreport import lcov_report
    from .analyses.sourcemap import source_coverage, source_map
    from .api import run
    from .monitors import create

    monitors = [create("coverage:level=instruction"), create("branches"), create("icount")]
    _check_output(args.output, "-o", args.prog)
    _check_output(args.save, "--save", args.prog)
    _check_stdin(args.stdin)
    invoke = args.invoke[0] if args.invoke else None
    invoke_args = tuple(args.invoke[1:]) if args.invoke else ()
    result = run(args.prog, monitors, backend=args.backend, argv=args.program_args,
                 env=_env(args.env), dirs=_dirs(args.dir), invoke=invoke, args=invoke_args,
                 stdin=args.stdin, progress=_Progress, interruptible=True)
    profile, module = result.profile, result.module
    sys.stdout.flush()
    if args.save:
        profile.save(args.save)
    opts = _source_opts(args, args.prog)
    sm = source_map(module)
    res = lcov_report(module, profile, sm=sm, search=opts["search"], include=opts["include"],
                      omit=opts["omit"], listing_path=_listing_path(args.output, profile))
    _write_listing(res.listing)
    _warn_skipped(res.skipped)
    atomic_write(args.output, res.text.encode())
    files = [] if res.listing is not None else source_coverage(
        module, profile, sm, include=opts["include"], omit=opts["omit"])
    sys.stderr.write(coverage_table(files, profile, module) +
                     f"probes: wrote {args.output}\n")
    code = 0
    if args.html:
        code = run_genhtml(args.output, args.html)
    if result.interrupted:
        _cli._error("interrupted")
        return EXIT_INTERRUPTED
    if result.trap is not None:
        _cli._error(f"trap: {result.trap.kind} (coverage up to the trap was written)")
        return EXIT_TRAP
    if code:
        return code
    return _cli.exit_status(result.exit_code)


def coverage_table(files: Sequence[Any], profile: ProfileData, module: Module) -> str:
    """coverage.py-style per-file table plus totals (lines, functions, branches)."""
    from .analyses.summary import coverage_summary
    from .analyses.textreport import table

    def pct(a: int, b: int) -> str:
        return f"{100.0 * a / b:.1f}%" if b else "-"

    rows = []
    for fc in files:
        rows.append((fc.path if len(files) > 1 else os.path.basename(fc.path),
                     len(fc.lines), len(fc.lines) - fc.lines_hit,
                     pct(fc.lines_hit, len(fc.lines)),
                     f"{fc.functions_hit}/{len(fc.functions)}",
                     f"{fc.branches_hit}/{len(fc.branches)}" if fc.branches else "-"))
    s = coverage_summary(module, profile, list(files) or None)
    out = []
    if rows:
        lh, lt = s["lines"]["hit"], s["lines"]["total"]
        fh = sum(fc.functions_hit for fc in files)
        ft = sum(len(fc.functions) for fc in files)
        br = s.get("branches")
        rows.append(("TOTAL", lt, lt - lh, pct(lh, lt), f"{fh}/{ft}",
                     f"{br['hit']}/{br['total']}" if br else "-"))
        out.append(table(rows, ("file", "lines", "miss", "cover", "functions", "branches")))
    for key in ("functions", "instructions"):
        if key in s:
            v = s[key]
            label = "functions entered" if key == "functions" else "instructions run"
            out.append(f"{label}: {v['hit']}/{v['total']} ({pct(v['hit'], v['total'])})")
    return "\n".join(out) + "\n"


def run_genhtml(info: str, html_dir: str) -> int:
    """Render ``info`` into ``html_dir`` with lcov's genhtml; 0 or a one-line error."""
    genhtml = shutil.which("genhtml")
    if genhtml is None:
        _cli._error("genhtml not found: install lcov (e.g. `apt-get install lcov`) for --html; "
               f"the tracefile {info} was written")
        return 1
    proc = subprocess.run([genhtml, "--quiet", "--branch-coverage", "--output-directory",
                           html_dir, info], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        _cli._error(f"genhtml failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
        return 1
    sys.stderr.write(f"probes: HTML report in {os.path.join(html_dir, 'index.html')}\n")
    return 0


# -- cfg --profile -----------------------------------------------------------------------
def annotated_cfg(profile_path: str, prog: str, data: bytes, module: Module
                  ) -> Callable[[int, str], str]:
    """For ``probes cfg --profile``: a function rendering one function's CFG
    (``text`` or ``dot``) with the block and edge counts of the profile."""
    from .analyses import cfg
    from .analyses.dotreport import cfg_dot
    from .analyses.textreport import cfg_text

    profile = load_profile(profile_path)
    _check_hash(profile, prog, data)

    def render_one(func: int, fmt: str) -> str:
        g = cfg(module, func, profile)
        return cfg_dot(g, module, max_instrs=None) if fmt == "dot" else cfg_text(g, module)

    return render_one
