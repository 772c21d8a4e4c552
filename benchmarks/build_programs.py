#!/usr/bin/env python3
"""Build the benchmark programs in ``benchmarks/programs/``.

Every ``benchmarks/programs/*.c`` is compiled to a ``.wasm`` next to it with
the clang bundled in the ``ziglang`` wheel::

    python -m ziglang cc --target=wasm32-wasi -O2 -s <name>.c -o <name>.wasm

``large.c`` is generated first by ``gen_large.py`` (deterministic, seeded) when
it is missing, older than the generator, or when ``--regen`` is given.

``--run`` afterwards runs each program's ``_start`` on wasmtime through its
Python API and prints the module compile time, the run time (best of
``--repeat``), the exit code and the program's output.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROGRAMS = Path(__file__).resolve().parent / "programs"
FLAGS = ["--target=wasm32-wasi", "-O2", "-s"]


def have_ziglang() -> bool:
    return importlib.util.find_spec("ziglang") is not None


def regenerate_large(force: bool) -> None:
    gen = PROGRAMS / "gen_large.py"
    out = PROGRAMS / "large.c"
    if not gen.exists():
        return
    if force or not out.exists() or out.stat().st_mtime < gen.stat().st_mtime:
        print("generating large.c with gen_large.py", flush=True)
        subprocess.run([sys.executable, str(gen), "-o", str(out)], check=True)


def compile_c(src: Path, verbose: bool) -> tuple[Path, str | None]:
    out = src.with_suffix(".wasm")
    cmd = [sys.executable, "-m", "ziglang", "cc", *FLAGS, str(src), "-o", str(out)]
    if verbose:
        print("  " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return src, proc.stdout + proc.stderr
    print(f"  built {out.name} ({out.stat().st_size} bytes, {time.perf_counter() - t0:.1f} s)",
          flush=True)
    return src, None


def run_wasm(path: Path, repeat: int) -> tuple[float, float, int, str]:
    """Return (compile seconds, best run seconds, exit code, stdout)."""
    import wasmtime

    engine = wasmtime.Engine()
    t0 = time.perf_counter()
    module = wasmtime.Module.from_file(engine, str(path))
    compile_s = time.perf_counter() - t0
    best, code, text = float("inf"), 0, ""
    for _ in range(repeat):
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        store = wasmtime.Store(engine)
        with tempfile.TemporaryDirectory() as tmp:
            out_path = os.path.join(tmp, "stdout")
            wasi = wasmtime.WasiConfig()
            wasi.argv = [path.stem]
            wasi.stdout_file = out_path
            wasi.inherit_stderr()
            store.set_wasi(wasi)
            instance = linker.instantiate(store, module)
            start = instance.exports(store)["_start"]
            code = 0
            t0 = time.perf_counter()
            try:
                start(store)
            except wasmtime.ExitTrap as exc:
                code = exc.code
            best = min(best, time.perf_counter() - t0)
            with open(out_path, encoding="utf-8") as f:
                text = f.read()
    return compile_s, best, code, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compile benchmarks/programs/*.c to .wasm (wasm32-wasi, -O2, stripped), "
        "generating large.c with gen_large.py first if needed.")
    parser.add_argument("names", nargs="*",
                        help="only these programs (stems, e.g. 'nbody sha'); default: all")
    parser.add_argument("--regen", action="store_true", help="always regenerate large.c")
    parser.add_argument("--no-build", action="store_true", help="skip compilation")
    parser.add_argument("--run", action="store_true",
                        help="run each program on wasmtime (Python API) and report timings")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per program for --run; the best time is shown (default: 3)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                        help="parallel compiler processes (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print full compiler commands")
    opts = parser.parse_args(argv)

    if not opts.no_build:
        if not have_ziglang():
            sys.stderr.write(
                "error: the 'ziglang' Python package is not installed; it provides the clang "
                "used to compile C to wasm32-wasi.\n       install it with: "
                f"{sys.executable} -m pip install ziglang\n")
            return 2
        if not opts.names or "large" in opts.names:
            regenerate_large(opts.regen)

    sources = sorted(PROGRAMS.glob("*.c"))
    if opts.names:
        known = {s.stem for s in sources} | {"large"}
        unknown = set(opts.names) - known
        if unknown:
            parser.error(f"no such program(s): {', '.join(sorted(unknown))}")
        sources = [s for s in sources if s.stem in opts.names]

    if not opts.no_build:
        print(f"building {len(sources)} program(s) in {PROGRAMS} with {' '.join(FLAGS)}", flush=True)
        # biggest first so the slow large.c compile overlaps the small ones
        order = sorted(sources, key=lambda p: -p.stat().st_size)
        with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            results = list(pool.map(lambda s: compile_c(s, opts.verbose), order))
        failed = [(src, log) for src, log in results if log is not None]
        for src, log in failed:
            sys.stderr.write(f"--- {src.name} ---\n{log}\n")
        if failed:
            sys.stderr.write(f"error: {len(failed)} program(s) failed to compile: "
                             f"{', '.join(s.name for s, _ in failed)}\n")
            return 1

    if opts.run:
        try:
            import wasmtime  # noqa: F401
        except ImportError:
            sys.stderr.write("error: the 'wasmtime' Python package is needed for --run\n")
            return 2
        status = 0
        for src in sources:
            wasm = src.with_suffix(".wasm")
            if not wasm.exists():
                print(f"{wasm.name}: missing")
                status = 1
                continue
            compile_s, run_s, code, text = run_wasm(wasm, max(1, opts.repeat))
            print(f"== {wasm.name}: {wasm.stat().st_size} bytes, compile {compile_s:.3f} s, "
                  f"run {run_s:.3f} s, exit {code}")
            sys.stdout.write(text)
            if code != 0:
                status = 1
        return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
