"""Ctrl-C (``CompileOptions(interruptible=True)``) stops the running guest call only:
the instance, and the other instances of the program, keep working afterwards.
Run in a subprocess, which sends itself a real SIGINT."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r'''
import os, signal, sys, threading
from probes.backends.base import CompileOptions, get_backend
from probes.ir import decode
from probes.ir.loader import wat_to_wasm
from probes.probeset import ProbeSet

m = decode(wat_to_wasm("""(module
  (func (export "spin") (param $n i64) (result i64) (local $i i64)
    (loop $l
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  (func (export "one") (result i32) (call $two) (i32.const 1) (i32.sub))
  (func $two (result i32) (i32.const 2)))"""))
exe = get_backend(sys.argv[1]).compile(m, ProbeSet(m), CompileOptions(cache=False,
                                                                      interruptible=True))
a, b = exe.instantiate(), exe.instantiate()
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    a.call("spin", 10**14)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted")
print(a.call("one"), a.call("spin", 1000), b.call("one"), exe.instantiate().call("one"))
'''


@pytest.mark.parametrize("backend_name", ["wasm", "native"])
def test_after_ctrl_c_the_instances_keep_working(backend_name: str, tmp_path: Path) -> None:
    from probes.backends.base import get_backend
    from probes.ir import ProbesError
    try:
        get_backend(backend_name)
    except ProbesError as e:  # pragma: no cover - native not built
        pytest.skip(str(e))
    # From tmp_path: the installed package, not this checkout.
    out = subprocess.run([sys.executable, "-c", SCRIPT, backend_name], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["interrupted", "1 1000 1 1"]
