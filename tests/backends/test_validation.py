"""Backends refuse invalid programs, even ones the woven module would hide."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from probes.backends.base import CompileOptions
from probes.ir import ValidationError, decode
from probes.monitors import create
from probes.probeset import ProbeSet

from ..conftest import assemble

# Each names the index the weaver appends (its state memory, callback table and
# fuel global), so the woven module alone would validate and run.
INVALID = {
    "memory": '(module (func (export "f") (result i32) (i32.load (i32.const 0))))',
    "table": '(module (type $t (func)) '
             '(func (export "f") (call_indirect (type $t) (i32.const 0))))',
    "global": '(module (func (export "f") (result i64) (global.get 0)))',
}


@pytest.mark.parametrize("what", sorted(INVALID))
@pytest.mark.parametrize("fuel", [0, 1000])
def test_an_index_past_the_program_is_refused(backend: Any, what: str, fuel: int,
                                              compile_options: CompileOptions) -> None:
    # The text assembler resolves raw indices without checking them.
    m = decode(assemble(INVALID[what]))
    ps = ProbeSet(m)
    create("coverage").attach(m, ps)
    with pytest.raises(ValidationError, match=f"unknown {what} 0"):
        backend.compile(m, ps, replace(compile_options, fuel=fuel))


def test_a_body_set_in_python_must_be_encoded_first(backend: Any,
                                                    compile_options: CompileOptions) -> None:
    """Instructions built in Python have no code offset, so no location can name
    them: one clear error, and the round trip it suggests works."""
    from probes.ir import ProbesError, encode
    from probes.ir.module import Instr
    from probes.ir.opcodes import BY_NAME

    m = decode(assemble('(module (func (export "f") (result i32) (i32.const 1)))'))
    f = m.functions[0]
    f.replace_body([Instr(BY_NAME["i32.const"], 7), Instr(BY_NAME["end"])])
    with pytest.raises(ProbesError, match="decode\\(encode\\(module\\)\\)"):
        backend.compile(m, ProbeSet(m), compile_options)
    fixed = decode(encode(m))
    ps = ProbeSet(fixed)
    create("icount").attach(fixed, ps)
    assert backend.compile(fixed, ps, compile_options).instantiate().call("f") == 7


def test_proc_exit_in_the_start_function_is_system_exit(backend: Any,
                                                        compile_options: CompileOptions) -> None:
    """instantiate() runs the start function: its proc_exit surfaces as SystemExit,
    as in call() (it was the backends' private exception)."""
    from probes.backends.base import WasiOptions

    m = decode(assemble('''(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
      (memory (export "memory") 1)
      (func $s (call $e (i32.const 3))) (start $s) (func (export "_start")))'''))
    exe = backend.compile(m, ProbeSet(m), compile_options)
    with pytest.raises(SystemExit) as info:
        exe.instantiate(wasi=WasiOptions())
    assert info.value.code == 3


# -- probes in dead code ------------------------------------------------------------------
DEAD = {
    # Under the dead store, the enclosing function's f64 is not its operand.
    "store": '(module (memory 1) (func (export "f") (param f64) (result f64) '
             '(local.get 0) (block (br 0) (i64.store32)) ))',
    "load": '(module (memory 1) (func (export "f") (param f32) (result f32) '
            '(local.get 0) (block (br 0) (i32.load) (drop)) ))',
}


@pytest.mark.parametrize("what", sorted(DEAD))
def test_probes_in_unreachable_code_weave_validly(backend: Any, what: str,
                                                  compile_options: CompileOptions) -> None:
    """Probes reading operands where the code cannot run: the weaver once took the
    enclosing block's value for the operand and wasmtime rejected the woven module
    (found by differential fuzzing with wasm-tools smith)."""
    from probes.ir import Location
    from probes.probe import CallbackProbe, FrameReads

    m = decode(assemble(DEAD[what]))
    f = m.functions[0]
    access = next(i for i in f.instrs if i.op.name in ("i64.store32", "i32.load"))
    ps = ProbeSet(m)
    for name in ("memory:trace=8", "icount", "coverage"):
        create(name).attach(m, ps)
    ps.insert(Location(f.index, access.pc), CallbackProbe(lambda loc: None,
                                                         reads=FrameReads(operands=1)))
    inst = backend.compile(m, ps, compile_options).instantiate()
    assert inst.call("f", 1.5) == 1.5
