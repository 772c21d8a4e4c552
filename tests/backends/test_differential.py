"""Instrumented ≡ original: the same stdout, exit code, results and traps.

Every example runs plain on wasmtime (no probes code involved) and under each
monitor alone and all monitors at once; the observable behaviour must match.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from probes.api import run
from probes.ir import load_bytes
from probes.monitors import available

from .conftest import c_examples
from .plain import call_export, run_wasi

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MONITORS = [name for name in available() if name != "timeout"]
VARIANTS = [[m] for m in MONITORS] + [MONITORS]


@pytest.mark.parametrize("program", c_examples(EXAMPLES), ids=lambda p: p.stem)
def test_c_programs_behave_the_same(program: Path, backend, compile_options,  # type: ignore[no-untyped-def]
                                    tmp_path: Path) -> None:
    wasm = program.read_bytes()
    expected = run_wasi(wasm, [program.name])
    assert expected.exit_code == 0 and expected.stdout
    # Other backends compile slowly; tests/native/test_differential.py checks them
    # monitor by monitor against the wasm backend, so here: none and all at once.
    variants = VARIANTS if backend.name == "wasm" else [[], MONITORS]
    for monitors in variants:
        out = tmp_path / "stdout"
        result = run(program, monitors, backend=backend.name, stdout=str(out),
                     options=compile_options)
        label = "+".join(monitors) or "plain"
        assert result.trap is None, f"{label}: {result.trap}"
        assert result.exit_code == expected.exit_code, label
        assert out.read_bytes() == expected.stdout, label


def test_exit_code_is_preserved(backend, compile_options, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    program = EXAMPLES / "interp.wasm"
    expected = run_wasi(program.read_bytes(), [program.name, "7"])
    assert expected.exit_code == 7
    result = run(program, ["icount", "calls"], backend=backend.name, argv=["7"],
                 stdout=os.devnull, options=compile_options)
    assert result.exit_code == 7
    assert result.profile.total_instructions > 0


WAT_CALLS = [
    ("loop.wat", "run", [(0,), (1,), (10,), (100,), (-5,)]),
    ("loop.wat", "nested", [(0,), (3,), (7,)]),
    ("branches.wat", "classify", [(x,) for x in (-100, -1, 0, 1, 2, 3, 4, 5, 9, 10, 50, 99,
                                                 100, 1000, 2**31 - 1, -2**31)]),
    ("trap.wat", "div", [(7, 2), (1, 0), (-2**31, -1), (-7, 2)]),
    ("trap.wat", "oob", [(0,), (65532,), (65533,), (65536,), (-1,)]),
    ("trap.wat", "deep", [(0,), (5,)]),
    ("multi.wat", "swap_sum", [(1, 2), (-3, 40)]),
    ("multi.wat", "divmod_packed", [(47, 5), (9, 3)]),
    ("multi.wat", "bulk", [()]),
]


@pytest.mark.parametrize("file,export,calls", WAT_CALLS, ids=lambda v: str(v)[:20])
def test_wat_exports_behave_the_same(file: str, export: str, calls, backend,  # type: ignore[no-untyped-def]
                                     compile_options) -> None:
    wasm = load_bytes(EXAMPLES / file)
    for monitors in VARIANTS:
        for args in calls:
            kind, value = call_export(wasm, export, args)
            result = run(wasm, monitors, backend=backend.name, invoke=export, args=args,
                         options=compile_options)
            label = f"{'+'.join(monitors)} {export}{args}"
            if kind == "ok":
                assert result.trap is None, f"{label}: {result.trap}"
                assert result.value == value, label
            else:
                assert result.trap is not None, f"{label}: expected a trap ({value})"
                assert result.trap.location is not None, label
