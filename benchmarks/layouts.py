"""Code-layout sampling: the same program with its machine code shifted.

Where a compiler happens to place a hot loop relative to cache-line and
decoder boundaries moves its speed by several percent (Mytkowicz et al.,
"Producing Wrong Data Without Doing Anything Obviously Wrong!", ASPLOS 2009).
Here, growing the first function of a benchmark program by a few never-run
instructions moves wasmtime's plain run time by up to 9% on bytecode, 10% on
recursive and 5% on sieve (benchmarks/README.md). Any woven variant also
moves every function after the first one it changes, so a ratio measured on
one layout partly measures where the code landed.

`shifted(wasm, k)` returns layout ``k``: the first defined function starts
with ``if (global.get $pad) ... end`` holding ``2k`` stores to ``$pad``, a new
mutable global that stays 0, so the arm never runs but no compiler can drop
it. Functions are compiled in index order (Cranelift and LLVM alike), so every
later function moves by the arm's size (about 16 bytes per layout step on x86-64, the functions'
alignment). Layout 0 is the program unchanged.
In the benchmark programs the first function is ``__wasm_call_ctors``, run
once, so the added test costs nothing measurable.

Benchmarks take a ratio per layout (variant and plain built from the same
shifted program) and report the geometric mean over layouts.
"""

from __future__ import annotations

from pathlib import Path

from probes.ir import decode, encode
from probes.ir.module import Global, Instr
from probes.ir.opcodes import BY_NAME
from probes.ir.types import EMPTY_BLOCK, I32, GlobalType

__all__ = ["PROGRAMS_DIR", "program_bytes", "shifted"]

PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"


def _ins(name: str, imm: object = None) -> Instr:
    return Instr(BY_NAME[name], imm)


def shifted(wasm: bytes, k: int) -> bytes:
    """The program in layout ``k`` (module docstring); ``k == 0``: unchanged."""
    if k == 0:
        return wasm
    m = decode(wasm)
    if not m.functions:
        return wasm
    pad = len(m.all_globals())
    m.globals.append(Global(GlobalType(I32, True), (_ins("i32.const", 0), _ins("end"))))
    arm = [_ins("global.get", pad), _ins("if", EMPTY_BLOCK)]
    for j in range(2 * k):
        arm += [_ins("i32.const", j + 1), _ins("global.set", pad)]
    arm.append(_ins("end"))
    first = m.functions[0]
    first.replace_body(arm + list(first.instrs))
    return encode(m)


def program_bytes(name: str, layout: int = 0) -> bytes:
    """The benchmark program ``name`` (``programs/NAME.wasm``) in layout ``layout``."""
    return shifted((PROGRAMS_DIR / f"{name}.wasm").read_bytes(), layout)
