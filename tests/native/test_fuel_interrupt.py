"""Fuel (the ``timeout`` monitor) and Ctrl-C on the native backend.

Both rest on one compiled check at loop headers and before calls
(backends/native/lower.py): fuel is wasmtime's cost of the *original*
instructions, so an instrumented native run burns exactly the fuel the plain
module burns on wasmtime; the interrupt flag is set by the runner's
signal-watching thread and turns into KeyboardInterrupt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from probes.api import prepare
from probes.api import run as api_run
from probes.backends.base import CompileOptions, WasiOptions
from probes.ir import Location, Trap, decode
from probes.ir.loader import wat_to_wasm
from probes.monitors import create
from probes.probeset import ProbeSet

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
C_EXAMPLES = sorted(p for p in EXAMPLES.glob("*.wasm") if p.with_suffix(".c").exists())
FREE = {"nop", "drop", "block", "loop", "end", "else", "return", "unreachable"}
"""What wasmtime's fuel does not charge (tests/backends/test_counts.py)."""

RECURSIVE = """
(module
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2))))))))
"""
"""No loop at all: only the checks before calls can stop it."""

SPIN = '(module (func (export "_start") (loop br 0)))'


def wasmtime_fuel(wasm: bytes, argv: list[str]) -> int:
    """Fuel the plain module burns on wasmtime (no probes)."""
    import wasmtime

    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    engine = wasmtime.Engine(cfg)
    store = wasmtime.Store(engine)
    budget = 10**12
    store.set_fuel(budget)
    wasi = wasmtime.WasiConfig()
    wasi.argv = argv
    wasi.stdout_file = os.devnull
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    inst = linker.instantiate(store, wasmtime.Module(engine, wasm))
    try:
        inst.exports(store)["_start"](store)
    except wasmtime.ExitTrap:
        pass
    return budget - store.get_fuel()


def charged(result: Any) -> int:
    """Fuel the profiled instructions stand for (no memory.copy/fill/grow operands)."""
    m = result.module
    ops = {Location(f.index, i.pc): i.op.name for f in m.functions for i in f.instrs}
    return (sum(n for loc, n in result.profile.counts.items() if ops[loc] not in FREE)
            + sum(result.profile.entries.values()))


def consistent(result: Any) -> None:
    """Counts and coverage agree, and no count went negative."""
    counts, coverage = result.profile.counts, result.profile.coverage
    assert all(n >= 0 for n in counts.values())
    assert all((counts[loc] > 0) == coverage[loc] for loc in counts)


@pytest.mark.parametrize("program", ["fib.wasm", "interp.wasm", "loop.wat"])
def test_llvm_accepts_checked_ir(native: Any, program: str) -> None:
    import llvmlite.binding as llvm

    from probes.backends.native.lower import lower
    from probes.backends.wasm.weaver import weave

    module, _, _ = prepare(EXAMPLES / program)
    probes = ProbeSet(module)
    for name in ("icount", "coverage", "calls"):
        create(name).attach(module, probes)
    woven = weave(module, probes)
    wm = decode(woven.wasm)
    config = native._config(wm, woven, CompileOptions(fuel=1, interruptible=True))
    assert config.fuel and config.interruptible and config.original_ops
    ir = lower(wm, config).llvm_ir
    llvm.parse_assembly(ir).verify()
    assert "load atomic" in ir


# -- fuel --------------------------------------------------------------------------------------

@pytest.mark.parametrize("probed", [False, True], ids=["plain", "icount"])
@pytest.mark.parametrize("program", C_EXAMPLES, ids=lambda p: p.stem)
def test_fuel_spent_equals_wasmtime_fuel(native: Any, native_options: CompileOptions,
                                         program: Path, probed: bool) -> None:
    """Woven instructions are free: native burns what the plain module burns on wasmtime."""
    module, _, _ = prepare(program)
    probes = ProbeSet(module)
    if probed:
        for name in ("icount", "calls", "coverage"):
            create(name).attach(module, probes)
    budget = 10**12
    opts = CompileOptions(cache_dir=native_options.cache_dir, fuel=budget, opt_level=0)
    inst = native.compile(module, probes, opts).instantiate(
        wasi=WasiOptions(argv=[program.name], stdout=os.devnull))
    try:
        assert inst.run_wasi() == 0
        assert budget - inst.fuel == wasmtime_fuel(program.read_bytes(), [program.name])
    finally:
        inst.close()


def test_fuel_at_o2(native: Any, native_options: CompileOptions) -> None:
    """LLVM's optimizations keep the metering exact."""
    program = EXAMPLES / "fib.wasm"
    module, _, _ = prepare(program)
    probes = ProbeSet(module)
    create("icount").attach(module, probes)
    opts = CompileOptions(cache_dir=native_options.cache_dir, fuel=10**12)
    inst = native.compile(module, probes, opts).instantiate(
        wasi=WasiOptions(argv=[program.name], stdout=os.devnull))
    assert inst.run_wasi() == 0
    assert 10**12 - inst.fuel == wasmtime_fuel(program.read_bytes(), [program.name])
    inst.close()


def test_timeout_traps_out_of_fuel(native_run: Any, native_options: CompileOptions) -> None:
    r = native_run(EXAMPLES / "loop.wat", ["timeout:n=1000", "icount", "coverage"],
                   backend="native", invoke="run", args=(10**6,), options=native_options)
    assert r.trap is not None and r.trap.kind == "out of fuel"
    assert r.profile.trap is not None and r.profile.trap["kind"] == "out of fuel"
    m = r.module
    assert r.trap.location is not None and r.trap.location.func == m.resolve_func("run")
    assert [text for name, text in r.reports() if name == "timeout"] == \
        ["timeout: stopped after 1000 instructions"]
    # Stopped at the first loop header after the budget ran out: the profile
    # stands for just over 1000 charged instructions.
    assert 1000 < charged(r) <= 1000 + 20
    consistent(r)
    wasm = api_run(EXAMPLES / "loop.wat", ["timeout:n=1000", "icount"], invoke="run",
                   args=(10**6,))
    assert wasm.trap is not None and wasm.trap.kind == r.trap.kind


def test_timeout_stops_recursion_without_loops(native_run: Any,
                                               native_options: CompileOptions) -> None:
    """The check just before a call stops the guest as the call begins, before the
    callee is entered (wasmtime checks at the callee's entry): counts stay exact."""
    r = native_run(wat_to_wasm(RECURSIVE), ["timeout:n=1000", "icount", "calls", "coverage"],
                   backend="native", invoke="fib", args=(30,), options=native_options)
    assert r.trap is not None and r.trap.kind == "out of fuel"
    m = r.module
    f = m.function(m.resolve_func("fib"))
    op = {i.pc: i.op.name for i in f.instrs}
    assert r.trap.location is not None and op[r.trap.location.pc] == "call"
    assert 1000 < charged(r) <= 1000 + 20
    consistent(r)
    calls = sum(n for loc, n in r.profile.counts.items() if op[loc.pc] == "call")
    # The invocation's entry plus every call's but the trapped one's.
    assert sum(r.profile.entries.values()) == 1 + (calls - 1)


@pytest.mark.parametrize("program", [EXAMPLES / "fib.wasm", EXAMPLES / "interp.wasm"],
                         ids=lambda p: p.stem)
def test_runs_within_budget_are_identical(native_run: Any, native_options: CompileOptions,
                                          program: Path) -> None:
    """With a budget the run fits in, native under timeout = wasm under timeout = no timeout."""
    mons = ["icount", "coverage", "calls", "branches"]
    opts = CompileOptions(cache_dir=native_options.cache_dir, opt_level=0)
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for backend, extra in (("wasm", ["timeout:n=100000000"]),
                               ("native", ["timeout:n=100000000"]), ("native", [])):
            out = os.path.join(tmp, f"{backend}{len(extra)}.out")
            r = native_run(program, mons + extra, backend=backend, stdout=out, options=opts)
            results.append((r, Path(out).read_bytes()))
    (w, w_out), (n, n_out), (plain, plain_out) = results
    for r, out in ((n, n_out), (plain, plain_out)):
        assert r.trap is None and w.trap is None
        assert r.exit_code == w.exit_code == 0
        assert out == w_out
        assert r.profile.counts == w.profile.counts
        assert r.profile.coverage == w.profile.coverage
        assert r.profile.entries == w.profile.entries
        assert r.profile.branches == w.profile.branches


def test_fuel_is_spent_across_calls(native: Any, native_options: CompileOptions) -> None:
    """Like a wasmtime store's, one budget serves every call into the instance."""
    module = decode(wat_to_wasm(RECURSIVE))
    opts = CompileOptions(cache_dir=native_options.cache_dir, fuel=1000)
    inst = native.compile(module, ProbeSet(module), opts).instantiate()
    assert inst.call("fib", 5) == 5
    left = inst.fuel
    assert 0 < left < 1000
    assert inst.call("fib", 5) == 5
    assert 1000 - inst.fuel == 2 * (1000 - left)
    with pytest.raises(Trap) as e:
        inst.call("fib", 20)
    assert e.value.kind == "out of fuel"
    inst.close()


# -- interrupts --------------------------------------------------------------------------------

def test_interrupt_flag_stops_the_guest(native: Any, native_options: CompileOptions) -> None:
    """What the Ctrl-C watcher does, without a signal: set the context's flag."""
    module = decode(wat_to_wasm(SPIN))
    probes = ProbeSet(module)
    create("icount").attach(module, probes)
    opts = CompileOptions(cache_dir=native_options.cache_dir, interruptible=True)
    inst = native.compile(module, probes, opts).instantiate()
    done = threading.Event()

    def poke() -> None:
        while not done.wait(0.05):
            ctx = inst._ctx
            if ctx is not None:
                ctx.interrupt = 1

    threading.Thread(target=poke, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            inst.call("_start")
    finally:
        done.set()
    spins = inst.count_at(Location(0, module.function(0).instrs[1].pc))
    assert spins > 0
    inst.close()


def _installed_matches_source(cwd: Path) -> None:
    # The package the subprocess below imports (from ``cwd``: not this source checkout,
    # which ``python -m pytest`` puts first on this process's path).
    out = subprocess.run([sys.executable, "-c", "import probes; print(probes.__file__)"],
                         cwd=cwd, capture_output=True, text=True, check=True).stdout
    inst = Path(out.strip()).resolve().parent
    for src, dst in (("backends/native/lower.py", "backends/native/lower.py"),
                     ("backends/native/runner.py", "backends/native/runner.py"),
                     ("cext/runtime_api.h", "cext/runtime_api.h")):
        there = inst / dst
        if not there.exists() or there.read_bytes() != (REPO / src).read_bytes():
            pytest.fail("the installed package is stale: run `pip install --no-deps .`")


def test_ctrl_c_stops_a_native_guest_and_keeps_the_profile(tmp_path: Path) -> None:
    """Mirrors tests/probes/test_cli.py's wasm test with ``-b native``."""
    _installed_matches_source(tmp_path)
    (tmp_path / "spin.wat").write_text(SPIN)
    env = dict(os.environ, PROBES_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "probes", "trace", "spin.wat", "-b", "native", "-m", "icount",
         "-o", "p.json"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(3)  # start-up and compiling take well under that; then it spins
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the native guest did not stop on Ctrl-C")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "probes: error: interrupted; profile written to p.json"
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["backend"] == "native"
    assert sum(data["counts"].values()) > 0
