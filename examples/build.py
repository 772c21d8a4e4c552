#!/usr/bin/env python3
"""Build the example programs in this directory.

Every ``examples/*.c`` is compiled to ``examples/<name>.wasm`` with the clang
bundled in the ``ziglang`` wheel::

    python -m ziglang cc --target=wasm32-wasi -O2 -s <name>.c -o <name>.wasm

One debug variant is also built, ``sort-g.wasm`` (``-g -O1``, DWARF kept), for
source-line tests.

Optional steps:

``--check``   run every built program (default arguments) on wasmtime through
              its Python API and compare stdout and exit code with
              ``expected/<name>.stdout`` (exit code 0 expected).
``--record``  run every program and (re)write ``expected/<name>.stdout``.

The ``.wat`` files are not compiled here; they are loaded as text.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected"

RELEASE_FLAGS = ["--target=wasm32-wasi", "-O2", "-s"]
# (output stem, source stem, flags) for the extra debug build
DEBUG_VARIANTS = [("sort-g", "sort", ["--target=wasm32-wasi", "-O1", "-g"])]


def have_ziglang() -> bool:
    return importlib.util.find_spec("ziglang") is not None


def compile_c(src: Path, out: Path, flags: list[str], verbose: bool) -> None:
    cmd = [sys.executable, "-m", "ziglang", "cc", *flags, str(src), "-o", str(out)]
    print(f"  cc {' '.join(flags)} {src.name} -> {out.name}", flush=True)
    if verbose:
        print("    " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"error: compiling {src.name} failed (exit {proc.returncode})")
    # zig's linker leaves a stray object/cache next to nothing, but be safe:
    stray = out.with_suffix(".wasm.o")
    if stray.exists():
        stray.unlink()


def run_wasm(path: Path, args: list[str] | None = None) -> tuple[str, int]:
    """Run a WASI command module's ``_start``; return (stdout, exit code)."""
    import wasmtime

    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(path))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "stdout")
        wasi = wasmtime.WasiConfig()
        wasi.argv = [path.stem, *(args or [])]
        wasi.stdout_file = out_path
        wasi.inherit_stderr()
        store.set_wasi(wasi)
        instance = linker.instantiate(store, module)
        code = 0
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as exc:
            code = exc.code
        with open(out_path, encoding="utf-8") as f:
            return f.read(), code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compile examples/*.c to examples/*.wasm (wasm32-wasi, -O2, stripped) "
        "plus the debug variant sort-g.wasm (-g -O1).")
    parser.add_argument("names", nargs="*",
                        help="only build these programs (stems, e.g. 'sort fib'); default: all")
    parser.add_argument("--check", action="store_true",
                        help="after building, run each program and compare with expected/*.stdout")
    parser.add_argument("--record", action="store_true",
                        help="after building, run each program and write expected/*.stdout")
    parser.add_argument("--no-build", action="store_true",
                        help="skip compilation (only --check / --record the existing .wasm files)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print full compiler commands")
    opts = parser.parse_args(argv)

    sources = sorted(HERE.glob("*.c"))
    if opts.names:
        wanted = set(opts.names)
        unknown = wanted - {s.stem for s in sources}
        if unknown:
            parser.error(f"no such example(s): {', '.join(sorted(unknown))}")
        sources = [s for s in sources if s.stem in wanted]

    if not opts.no_build:
        if not have_ziglang():
            sys.stderr.write(
                "error: the 'ziglang' Python package is not installed; it provides the clang "
                "used to compile C to wasm32-wasi.\n       install it with: "
                f"{sys.executable} -m pip install ziglang\n")
            return 2
        print(f"building {len(sources)} example(s) in {HERE}")
        for src in sources:
            compile_c(src, src.with_suffix(".wasm"), RELEASE_FLAGS, opts.verbose)
        for out_stem, src_stem, flags in DEBUG_VARIANTS:
            if any(s.stem == src_stem for s in sources):
                compile_c(HERE / f"{src_stem}.c", HERE / f"{out_stem}.wasm", flags, opts.verbose)

    failures = 0
    if opts.check or opts.record:
        try:
            import wasmtime  # noqa: F401
        except ImportError:
            sys.stderr.write("error: the 'wasmtime' Python package is needed for --check/--record\n")
            return 2
        EXPECTED.mkdir(exist_ok=True)
        for src in sources:
            wasm = src.with_suffix(".wasm")
            if not wasm.exists():
                print(f"  {wasm.name}: missing (build it first)")
                failures += 1
                continue
            out, code = run_wasm(wasm)
            exp_file = EXPECTED / f"{src.stem}.stdout"
            if opts.record:
                exp_file.write_text(out, encoding="utf-8")
                print(f"  recorded {exp_file.relative_to(HERE)} ({len(out.splitlines())} lines, exit {code})")
            if opts.check:
                if not exp_file.exists():
                    print(f"  {wasm.name}: FAIL (no {exp_file.relative_to(HERE)})")
                    failures += 1
                elif out != exp_file.read_text(encoding="utf-8") or code != 0:
                    print(f"  {wasm.name}: FAIL (exit {code}, stdout differs: {out!r})")
                    failures += 1
                else:
                    print(f"  {wasm.name}: ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
