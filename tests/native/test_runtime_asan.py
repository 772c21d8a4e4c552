"""The C runtime under AddressSanitizer and UBSan.

tests/native/programs/runtime_check.c drives cext/runtime.c and cext/wasi.c
directly (no Python, no JIT): memories and tables at their bounds, segments,
traps unwinding through nested rt_invoke, proc_exit, and WASI calls on a
temporary directory including escapes and out-of-memory guest pointers.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CEXT = ROOT / "cext"
DRIVER = Path(__file__).resolve().parent / "programs" / "runtime_check.c"


def test_runtime_is_clean_under_asan(tmp_path: Path) -> None:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "runtime_check"
    cmd = [cc, "-std=gnu11", "-g", "-O1", "-fsanitize=address,undefined",
           "-fno-omit-frame-pointer", "-fno-sanitize-recover=all", "-I", str(CEXT),
           str(DRIVER), str(CEXT / "runtime.c"), str(CEXT / "wasi.c"), "-o", str(exe)]
    build = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if build.returncode != 0 and "asan" in build.stderr.lower():
        pytest.skip(f"AddressSanitizer unavailable: {build.stderr.strip()[:200]}")
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, check=False,
                         env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                              "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().startswith("ok"), run.stdout
