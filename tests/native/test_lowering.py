"""The lowering's dispatch and output: every opcode is lowered or explicitly unsupported,
LLVM accepts every emitted module, and unsupported features are rejected cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from probes.ir import UnsupportedFeature, decode, load
from probes.ir.opcodes import OPCODES
from probes.probeset import ProbeSet

from ..conftest import assemble

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_every_opcode_is_lowered_or_marked_unsupported(native: Any) -> None:
    from probes.backends.native.lower import LOWERINGS, UNSUPPORTED, check_coverage

    assert check_coverage() == []
    assert not set(LOWERINGS) & set(UNSUPPORTED)
    assert {op.name for op in OPCODES if op.feature != "simd"} <= set(LOWERINGS)


@pytest.mark.parametrize("program", ["fib.wasm", "multi.wat", "branches.wat"])
@pytest.mark.parametrize("monitors", [[], ["icount", "branches", "memory", "trace"]])
def test_llvm_accepts_emitted_ir(native: Any, program: str, monitors: list[str]) -> None:
    import llvmlite.binding as llvm

    from probes.backends.native.lower import lower
    from probes.backends.wasm.weaver import weave
    from probes.monitors import create

    m = load(EXAMPLES / program)
    ps = ProbeSet(m)
    for name in monitors:
        create(name).attach(m, ps)
    wm = decode(weave(m, ps).wasm)
    lowered = lower(wm, native._config(wm))
    mod = llvm.parse_assembly(lowered.llvm_ir)
    mod.verify()
    assert mod.get_function("__probes_funcs") is not None


def test_simd_is_rejected_as_unsupported(native: Any) -> None:
    m = decode(assemble('(module (func (export "f") (result i32) '
                        '(i32x4.extract_lane 0 (v128.const i32x4 1 2 3 4))))'))
    with pytest.raises(UnsupportedFeature) as info:
        native.compile(m)
    assert info.value.feature == "simd"


def test_compiled_objects_are_cached(native: Any, tmp_path: Path) -> None:
    from probes.backends.base import CompileOptions

    m = load(EXAMPLES / "loop.wat")
    opts = CompileOptions(cache_dir=str(tmp_path))
    first = native.compile(m, None, opts)
    second = native.compile(m, None, opts)
    assert not first.stats.cached and second.stats.cached
    assert second.instantiate().call("run", 10) == first.instantiate().call("run", 10) == 145
    other = native.compile(m, None, CompileOptions(cache_dir=str(tmp_path), opt_level=0))
    assert not other.stats.cached
