"""The instruction printer: immediates by kind, floats, whole functions."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from probes.ir import Instr, Module, load
from probes.ir.opcodes import OPCODES, lookup
from probes.ir.printer import format_f32, format_f64, format_function, format_instr
from probes.ir.types import EMPTY_BLOCK, EXTERNREF, FUNCREF, I32, I64, BlockType
from probes.testing import run_tool, wasm_tools

WatModule = Callable[[str], Module]


def f32_bits(x: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", x))[0])


def f64_bits(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


# Expected spellings taken from `wasm-tools print`.
@pytest.mark.parametrize("bits, text", [
    (f64_bits(1.5), "0x1.8p+0 (;=1.5;)"),
    (f64_bits(1.0), "0x1p+0 (;=1;)"),
    (f64_bits(-0.0), "-0x0p+0 (;=-0;)"),
    (f64_bits(0.0), "0x0p+0 (;=0;)"),
    (f64_bits(0.1), "0x1.999999999999ap-4 (;=0.1;)"),
    (f64_bits(123456789.125), "0x1.d6f34548p+26 (;=123456789.125;)"),
    (f64_bits(1e21), "0x1.b1ae4d6e2ef5p+69 (;=1000000000000000000000;)"),
    (f64_bits(1e-7), "0x1.ad7f29abcaf48p-24 (;=0.0000001;)"),
    (0x7FF8000000000000, "nan (;=NaN;)"),
    (0xFFF0000000000004 | 0, "-nan:0x4 (;=NaN;)"),
    (0x7FF0000000000001, "nan:0x1 (;=NaN;)"),
    (0x7FF0000000000000, "inf (;=inf;)"),
    (0xFFF0000000000000, "-inf (;=-inf;)"),
    (1, "0x1.p-1074 (;=0." + "0" * 323 + "5;)"),  # smallest subnormal
    (0x000C000000000000, "0x1.8p-1023 (;=0." + "0" * 307 + "1668805393880401;)"),
])
def test_f64(bits: int, text: str) -> None:
    assert format_f64(bits) == text


@pytest.mark.parametrize("bits, text", [
    (f32_bits(3.0), "0x1.8p+1 (;=3;)"),
    (f32_bits(0.1), "0x1.99999ap-4 (;=0.1;)"),
    (f32_bits(0.3), "0x1.333334p-2 (;=0.3;)"),
    (f32_bits(16777216.0), "0x1p+24 (;=16777216;)"),
    (f32_bits(1e10), "0x1.2a05f2p+33 (;=10000000000;)"),
    (0x7F7FFFFF, "0x1.fffffep+127 (;=340282350000000000000000000000000000000;)"),
    (1, "0x1.p-149 (;=0.000000000000000000000000000000000000000000001;)"),
    (0x00300000, "0x1.8p-128 (;=0.000000000000000000000000000000000000004408104;)"),
    (0x7FC00000, "nan (;=NaN;)"),
    (0xFFC00000, "-nan (;=NaN;)"),
    (0x7FA00000, "nan:0x200000 (;=NaN;)"),
    (0x7F800000, "inf (;=inf;)"),
    (0x80000000, "-0x0p+0 (;=-0;)"),
])
def test_f32(bits: int, text: str) -> None:
    assert format_f32(bits) == text


def ins(name: str, imm: Any = None, pc: int = 0) -> Instr:
    return Instr(lookup(name), imm, pc)


@pytest.mark.parametrize("instr, text", [
    (ins("i32.add"), "i32.add"),
    (ins("i32.const", -5), "i32.const -5"),
    (ins("i64.const", -(2 ** 63)), "i64.const -9223372036854775808"),
    (ins("local.get", 3), "local.get 3"),
    (ins("i32.load", (2, 0, 0)), "i32.load"),
    (ins("i32.load", (0, 4, 0)), "i32.load offset=4 align=1"),
    (ins("i64.store", (2, 16, 0)), "i64.store offset=16 align=4"),
    (ins("i32.load8_u", (0, 0, 0)), "i32.load8_u"),
    (ins("i32.load", (2, 8, 1)), "i32.load 1 offset=8"),
    (ins("v128.load8_lane", (0, 3, 0, 1)), "v128.load8_lane offset=3 1"),
    (ins("block", EMPTY_BLOCK), "block"),
    (ins("loop", BlockType(result=I64)), "loop (result i64)"),
    (ins("if", BlockType(type_index=2)), "if (type 2)"),
    (ins("br", 2), "br 2"),
    (ins("br_table", ((0, 1, 2), 3)), "br_table 0 1 2 3"),
    (ins("br_table", ((), 0)), "br_table 0"),
    (ins("call", 7), "call 7"),
    (ins("call_indirect", (1, 0)), "call_indirect (type 1)"),
    (ins("call_indirect", (1, 2)), "call_indirect 2 (type 1)"),
    (ins("memory.size", 0), "memory.size"),
    (ins("memory.grow", 1), "memory.grow 1"),
    (ins("memory.copy", (0, 0)), "memory.copy"),
    (ins("memory.copy", (1, 0)), "memory.copy 1 0"),
    (ins("memory.init", (3, 0)), "memory.init 3"),
    (ins("memory.init", (3, 1)), "memory.init 1 3"),
    (ins("table.init", (2, 0)), "table.init 2"),
    (ins("table.init", (2, 1)), "table.init 1 2"),
    (ins("table.copy", (0, 1)), "table.copy 0 1"),
    (ins("table.get", 0), "table.get 0"),
    (ins("data.drop", 1), "data.drop 1"),
    (ins("ref.null", FUNCREF), "ref.null func"),
    (ins("ref.null", EXTERNREF), "ref.null extern"),
    (Instr(next(o for o in OPCODES if o.imm == "select_t"), (I32,), 0), "select (result i32)"),
    (ins("f32.const", 0x3FC00000), "f32.const 0x1.8p+0 (;=1.5;)"),
    (ins("v128.const", bytes(range(16))),
     "v128.const i32x4 0x03020100 0x07060504 0x0b0a0908 0x0f0e0d0c"),
    (ins("i8x16.shuffle", bytes(range(16))), "i8x16.shuffle " + " ".join(map(str, range(16)))),
    (ins("i32x4.extract_lane", 2), "i32x4.extract_lane 2"),
])
def test_format_instr(instr: Instr, text: str) -> None:
    assert format_instr(instr) == text


def _sample_imm(kind: str) -> Any:
    return {
        "": None, "block": EMPTY_BLOCK, "label": 0, "br_table": ((0,), 0), "func": 0,
        "local": 0, "global": 0, "table": 0, "call_ind": (0, 0), "memarg": (0, 0, 0),
        "mem": 0, "mem2": (0, 0), "data_mem": (0, 0), "data": 0, "elem_table": (0, 0),
        "elem": 0, "table2": (0, 0), "i32": 0, "i64": 0, "f32": 0, "f64": 0,
        "select_t": (I32,), "heap": FUNCREF, "v128": bytes(16), "lanes16": bytes(16),
        "lane": 0, "memarg_lane": (0, 0, 0, 0),
    }[kind]


def test_every_opcode_prints() -> None:
    """Each row of the table prints: a new immediate kind needs a printer."""
    for op in OPCODES:
        text = format_instr(Instr(op, _sample_imm(op.imm), 0))
        assert text.split()[0] == op.name
        if op.imm in ("", "mem", "mem2", "table2", "block"):  # nothing, or defaults elided
            assert text == op.name
        elif op.imm == "memarg":  # align=1 is printed unless natural
            assert (text == op.name) == (op.mem_bytes == 1), text
        else:
            assert len(text) > len(op.name), text


def test_module_context_names_calls_and_types(wat_module: WatModule) -> None:
    m = wat_module("""(module
      (type $pair (func (param i32) (result i32 i32)))
      (table 1 funcref)
      (func $helper (param i32) (result i32 i32) local.get 0 local.get 0)
      (func $main (export "main") (param i32) (result i32)
        local.get 0
        block (type $pair)
          call $helper
          drop
        end
        i32.const 0
        call_indirect (type 1)))""")
    instrs = m.function(1).instrs
    texts = [format_instr(i, m) for i in instrs]
    assert "block (type 0) (param i32) (result i32 i32)" in texts
    assert "call 0 ;; helper" in texts
    assert "call_indirect (type 1) ;; [i32] -> [i32]" in texts
    assert [format_instr(i) for i in instrs][2] == "call 0"


def test_format_function(wat_module: WatModule) -> None:
    m = wat_module("""(module
      (func $f (export "f") (param i32) (result i32) (local i64 i64)
        block
          loop
            local.get 0
            br_if 1
            br 0
          end
        end
        local.get 0
        if (result i32) i32.const 1 else i32.const 2 end))""")
    assert format_function(m, 0).splitlines() == [
        ";; func 0 f (type 0) [i32] -> [i32]",
        ";; locals (2): i64 i64",
        "   3  block ;; label = @1",
        "   5    loop ;; label = @2",
        "   7      local.get 0",
        "   9      br_if 1 (;@1;)",
        "  11      br 0 (;@2;)",
        "  13    end",
        "  14  end",
        "  15  local.get 0",
        "  17  if (result i32) ;; label = @1",
        "  19    i32.const 1",
        "  21  else",
        "  22    i32.const 2",
        "  24  end",
        "  25  end",
    ]


def test_format_function_rejects_imports(wat_module: WatModule) -> None:
    m = wat_module('(module (import "env" "g" (func)))')
    with pytest.raises(KeyError):
        format_function(m, 0)


def _wasm_tools_instrs(path: Path) -> list[str]:
    """Instruction lines of ``wasm-tools print``, per function, annotations removed."""
    exe = wasm_tools()
    assert exe is not None
    done = run_tool([exe, "print", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    lines: list[str] = []
    in_func = False
    for raw in out.splitlines():
        s = raw.strip()
        if s.startswith("(func"):
            if s.count("(") == s.count(")"):
                lines.append("end")  # an empty function on one line
            else:
                in_func = True
            continue
        if not in_func or s.startswith("(local"):
            continue
        if s == ")":
            in_func = False
            s = "end"
        lines.append(re.sub(r" \(;@\d+;\)| ;; label = @\d+", "", s))
    return lines


@pytest.mark.skipif(wasm_tools() is None, reason="wasm-tools is not installed")
def test_matches_wasm_tools_print(tmp_path: Path, wat_to_binary: Callable[[str], bytes],
                                  example_wasm_paths: list[Path]) -> None:
    """Every instruction prints as wasm-tools prints it (for unnamed modules)."""
    wat = """(module
      (type (func (param i32) (result i32)))
      (type (func (result i32 i32)))
      (table 2 funcref) (table 2 funcref)
      (memory 1) (memory 1)
      (data "x") (elem func 0)
      (func (param i32) (result i32)
        (block (result i32) (block (param i32) (result i32)
          (loop (param i32) (result i32) (br_table 0 1 2 (local.get 0)))))
        (call_indirect (type 0) (i32.const 0))
        (call_indirect 1 (type 0) (i32.const 0))
        (drop (select (result i32) (i32.const 1) (i32.const 2) (i32.const 3)))
        (drop (ref.null extern)) (drop (ref.func 0))
        (memory.init 1 0 (i32.const 0) (i32.const 0) (i32.const 0))
        (memory.copy 1 0 (i32.const 0) (i32.const 0) (i32.const 0))
        (memory.fill 1 (i32.const 0) (i32.const 0) (i32.const 0))
        (table.init 1 0 (i32.const 0) (i32.const 0) (i32.const 0))
        (table.copy 0 1 (i32.const 0) (i32.const 0) (i32.const 0))
        (drop (table.size 1)) (drop (memory.size 1)) (drop (memory.grow (i32.const 1)))
        (drop (i32.load 1 offset=8 align=2 (i32.const 0)))
        (drop (i64.load16_s offset=2 align=1 (i32.const 0)))
        (drop (f64.const -0x1.8p-1030)) (drop (f32.const nan:0x123)) (drop (f32.const -inf))
        (drop (f64.const 6.02214076e23)) (drop (f32.const 1.17549435e-38))
        (drop (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 31
          (v128.const i8x16 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16) (v128.const i64x2 0 0)))
        (drop (v128.load32_lane offset=3 align=1 1 (i32.const 0) (v128.const i64x2 0 0)))
        (data.drop 0) (elem.drop 0)
        (if (local.get 0) (then nop) (else nop))
        (block (result i32 i32) (i32.const 1) (i32.const 2)) drop))"""
    paths = [tmp_path / "all.wasm", *example_wasm_paths[:2]]
    paths[0].write_bytes(wat_to_binary(wat))
    for path in paths:
        m = load(path)
        ours = [format_instr(i) for f in m.functions for i in f.instrs]
        theirs = _wasm_tools_instrs(path)
        if path == paths[0]:  # wasm-tools spells out a block's type index signature
            theirs = [re.sub(r"(\(type \d+\)) \(.*", r"\1", t) if t.startswith(
                ("block", "loop", "if")) else t for t in theirs]
        assert len(ours) == len(theirs)
        mismatches = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != b]
        assert not mismatches, mismatches[:10]
