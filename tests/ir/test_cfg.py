"""CFG construction: exact shapes of small functions, invariants on every example."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from probes.ir import Instr, Module, ValidationError, load
from probes.ir.blocks import counting_blocks
from probes.ir.cfg import CFG, Edge, EdgeKind, build_cfg, cfg_from_instrs
from probes.ir.opcodes import lookup

WatModule = Callable[[str], Module]

_ENDERS = {"br", "br_if", "br_table", "if", "else", "return", "unreachable", "call",
           "call_indirect"}


def shape(cfg: CFG) -> list[list[str]]:
    """Each block as the list of its mnemonics."""
    return [[ins.op.name for ins in b.instrs] for b in cfg.blocks]


def edges(cfg: CFG) -> set[tuple[int | str, int | str, str, int | None]]:
    """Edges as (src, dst, kind, index) with the exit spelled "exit"."""
    def name(i: int) -> int | str:
        return "exit" if i == cfg.exit.id else i
    return {(name(e.src), name(e.dst), str(e.kind), e.index) for e in cfg.edges}


def one_func(wat_module: WatModule, body: str, sig: str = "", extra: str = "") -> CFG:
    m = wat_module(f"(module {extra} (func $f {sig} {body}))")
    return build_cfg(m, m.num_funcs - 1)


def check_invariants(cfg: CFG, instrs: list[Instr]) -> None:
    """What every CFG must satisfy, whatever the function."""
    # Every instruction in exactly one block; blocks contiguous, in pc order.
    flat = [ins for b in cfg.blocks for ins in b.instrs]
    assert len(flat) == len(instrs)
    assert all(a is b for a, b in zip(flat, instrs, strict=True))
    for i, b in enumerate(cfg.blocks):
        assert b.id == i and b.instrs
        assert (b.start_pc, b.end_pc) == (b.instrs[0].pc, b.instrs[-1].pc)
        for ins in b.instrs:
            assert cfg.block_of(ins.pc) is b
    assert cfg.entry is cfg.blocks[0]
    assert cfg.exit.id == len(cfg.blocks) and not cfg.exit.instrs and not cfg.exit.succs
    # preds mirror succs exactly.
    all_edges = [e for b in cfg.blocks for e in b.succs]
    assert sorted(all_edges, key=repr) == sorted(
        [e for b in cfg.nodes for e in b.preds], key=repr)
    for b in cfg.nodes:
        assert all(e.src == b.id for e in b.succs)
        assert all(e.dst == b.id for e in b.preds)
    # Only the last instruction of a block may transfer control or call.
    for b in cfg.blocks:
        for ins in b.instrs[:-1]:
            assert ins.op.name not in _ENDERS | {"loop"}, (b, ins)
    # The partition is the counting blocks' one, block for block.
    index = {id(ins): i for i, ins in enumerate(instrs)}
    assert [(index[id(b.instrs[0])], index[id(b.instrs[-1])]) for b in cfg.blocks] == [
        (cb.first, cb.last) for cb in counting_blocks(instrs)]
    # A block starts only where control can arrive other than by straight-line
    # flow: after a control instruction or the end of a construct.
    for prev, b in zip(cfg.blocks, cfg.blocks[1:], strict=False):
        assert prev.last.op.name in _ENDERS | {"loop", "end"}, (prev, b)
    # Successor counts follow the last instruction.
    for b in cfg.blocks:
        last = b.last
        n = len(b.succs)
        name = last.op.name
        if name == "br_table":
            assert n == len(last.imm[0]) + 1
            assert [e.index for e in b.succs] == list(range(n))
        elif name in ("br_if", "if"):
            assert n == 2
        elif name == "unreachable":
            assert n == 0
        else:
            assert n == 1
        kinds = {e.kind for e in b.succs}
        if name == "return" or last is instrs[-1]:
            assert kinds == {EdgeKind.RETURN}
        elif EdgeKind.RETURN in kinds:  # only a branch to the function's label
            assert name in ("br", "br_if", "br_table"), b
    for e in all_edges:
        if e.kind == EdgeKind.LOOP:  # lands right after a loop marker
            dst = cfg.block(e.dst)
            prev_instr = instrs[instrs.index(dst.instrs[0]) - 1]
            assert prev_instr.op.name == "loop"


# -- exact shapes -------------------------------------------------------------------
def test_if_else_diamond(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        local.get 0
        if (result i32)
          i32.const 1
        else
          i32.const 2
        end
        i32.const 3
        i32.add""", "(param i32) (result i32)")
    assert shape(cfg) == [["local.get", "if"], ["i32.const", "else"], ["i32.const", "end"],
                          ["i32.const", "i32.add", "end"]]
    assert edges(cfg) == {(0, 1, "branch", None), (0, 2, "fallthrough", None),
                          (1, 3, "branch", None), (2, 3, "fallthrough", None),
                          (3, "exit", "return", None)}
    # Condition nonzero -> branch edge first, like br_if's taken edge.
    assert [e.kind for e in cfg.entry.succs] == [EdgeKind.BRANCH, EdgeKind.FALLTHROUGH]
    assert [e.src for e in cfg.blocks[3].preds] == [1, 2]


def test_block_boundaries_are_pcs(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        local.get 0
        if (result i32)
          i32.const 1
        else
          i32.const 2
        end""", "(param i32) (result i32)")
    # Body: 00 locals | 20 00 | 04 7f | 41 01 | 05 | 41 02 | 0b | 0b
    assert [(b.start_pc, b.end_pc) for b in cfg.blocks] == [(1, 3), (5, 7), (8, 10), (11, 11)]
    assert cfg.block_of(3) is cfg.blocks[0]
    assert cfg.block_of(8) is cfg.block_of(10) is cfg.blocks[2]
    # The if's block type byte and the constant's immediate are not instructions.
    with pytest.raises(KeyError, match="no instruction at pc 4 .*inside B0"):
        cfg.block_of(4)
    with pytest.raises(KeyError, match="pc 6"):
        cfg.block_of(6)
    with pytest.raises(KeyError):
        cfg.block_of(12)


def test_if_without_else(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        local.get 0
        if
          nop
        end
        nop""", "(param i32)")
    # The false edge goes past the end; the end runs only after the then arm.
    assert shape(cfg) == [["local.get", "if"], ["nop", "end"], ["nop", "end"]]
    assert edges(cfg) == {(0, 1, "branch", None), (0, 2, "fallthrough", None),
                          (1, 2, "fallthrough", None), (2, "exit", "return", None)}


def test_empty_then_arm(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, "local.get 0 if end", "(param i32)")
    assert shape(cfg) == [["local.get", "if"], ["end"], ["end"]]
    assert [(e.dst, e.kind) for e in cfg.entry.succs] == [
        (1, EdgeKind.BRANCH), (2, EdgeKind.FALLTHROUGH)]


def test_then_arm_returning_leaves_else_marker_unreachable(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        local.get 0
        if
          return
        else
        end""", "(param i32)")
    assert shape(cfg) == [["local.get", "if"], ["return"], ["else"], ["end"], ["end"]]
    assert edges(cfg) == {(0, 1, "branch", None), (0, 3, "fallthrough", None),
                          (1, "exit", "return", None), (2, 4, "branch", None),
                          (3, 4, "fallthrough", None), (4, "exit", "return", None)}
    assert cfg.blocks[2].preds == []
    assert cfg.reachable() == {0, 1, 3, 4, cfg.exit.id}


def test_loop_with_br_if_back_edge(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        i32.const 0
        local.set 1
        loop
          local.get 1
          i32.const 1
          i32.add
          local.tee 1
          local.get 0
          i32.lt_s
          br_if 0
        end""", "(param i32) (local i32)")
    assert shape(cfg) == [
        ["i32.const", "local.set", "loop"],
        ["local.get", "i32.const", "i32.add", "local.tee", "local.get", "i32.lt_s", "br_if"],
        ["end", "end"],
    ]
    assert edges(cfg) == {(0, 1, "fallthrough", None), (1, 1, "loop", None),
                          (1, 2, "fallthrough", None), (2, "exit", "return", None)}
    header = cfg.blocks[1]
    assert sorted(str(e.kind) for e in header.preds) == ["fallthrough", "loop"]


def test_loop_marker_always_ends_its_block(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, "nop loop nop end nop")
    # The loop's end is never a branch target: it stays in the straight line.
    assert shape(cfg) == [["nop", "loop"], ["nop", "end", "nop", "end"]]
    assert edges(cfg) == {(0, 1, "fallthrough", None), (1, "exit", "return", None)}


def test_nested_loops(wat_module: WatModule) -> None:
    m = load(Path(__file__).resolve().parents[2] / "examples" / "loop.wat")
    cfg = build_cfg(m, m.resolve_func("nested"))
    assert shape(cfg) == [
        ["block", "local.get", "i32.const", "i32.le_s", "br_if"],
        ["loop"],
        ["i32.const", "local.set", "loop"],
        ["local.get", "i32.const", "i32.add", "local.set", "local.get", "i32.const",
         "i32.add", "local.set", "local.get", "local.get", "i32.lt_s", "br_if"],
        ["end", "local.get", "i32.const", "i32.add", "local.set", "local.get", "local.get",
         "i32.lt_s", "br_if"],
        ["end", "end"],
        ["local.get", "end"],
    ]
    assert edges(cfg) == {
        (0, 6, "branch", None), (0, 1, "fallthrough", None),
        (1, 2, "fallthrough", None), (2, 3, "fallthrough", None),
        (3, 3, "loop", None), (3, 4, "fallthrough", None),
        (4, 2, "loop", None), (4, 5, "fallthrough", None),
        (5, 6, "fallthrough", None), (6, "exit", "return", None),
    }


def test_br_table_three_targets(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        block
          block
            block
              local.get 0
              br_table 0 1 2
            end
            i32.const 10
            return
          end
          i32.const 11
          return
        end
        i32.const 12""", "(param i32) (result i32)")
    # Branches land after the ends, which only straight-line flow reaches.
    assert shape(cfg) == [["block", "block", "block", "local.get", "br_table"],
                          ["end"], ["i32.const", "return"],
                          ["end"], ["i32.const", "return"],
                          ["end"], ["i32.const", "end"]]
    assert edges(cfg) == {(0, 2, "br_table", 0), (0, 4, "br_table", 1), (0, 6, "br_table", 2),
                          (1, 2, "fallthrough", None), (2, "exit", "return", None),
                          (3, 4, "fallthrough", None), (4, "exit", "return", None),
                          (5, 6, "fallthrough", None), (6, "exit", "return", None)}
    # The default label is the last position.
    assert cfg.entry.succs[-1] == Edge(0, 6, EdgeKind.BR_TABLE, 2)
    assert [b.id for b in cfg.blocks if not b.preds] == [0, 1, 3, 5]


def test_br_table_to_loop_and_duplicate_labels(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        block
          loop
            local.get 0
            br_table 0 1 0
          end
        end""", "(param i32)")
    assert shape(cfg) == [["block", "loop"], ["local.get", "br_table"], ["end", "end"], ["end"]]
    assert [(e.dst, str(e.kind), e.index) for e in cfg.blocks[1].succs] == [
        (1, "loop", 0), (3, "br_table", 1), (1, "loop", 2)]
    assert cfg.blocks[2].preds == []  # the loop's end is unreachable
    assert edges(cfg) >= {(2, 3, "fallthrough", None), (3, "exit", "return", None)}


def test_nested_blocks_br_if_1(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        block
          block
            local.get 0
            br_if 1
            nop
          end
          nop
        end
        i32.const 1""", "(param i32) (result i32)")
    # br_if 1 skips both ends; the end of a block always ends a counting block.
    assert shape(cfg) == [["block", "block", "local.get", "br_if"],
                          ["nop", "end"], ["nop", "end"],
                          ["i32.const", "end"]]
    assert edges(cfg) == {(0, 3, "branch", None), (0, 1, "fallthrough", None),
                          (1, 2, "fallthrough", None), (2, 3, "fallthrough", None),
                          (3, "exit", "return", None)}


def test_nested_blocks_br_1_makes_unreachable_code(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        block
          block
            br 1
          end
          unreachable
        end""")
    assert shape(cfg) == [["block", "block", "br"], ["end"], ["unreachable"], ["end"], ["end"]]
    assert edges(cfg) == {(0, 4, "branch", None), (1, 2, "fallthrough", None),
                          (3, 4, "fallthrough", None), (4, "exit", "return", None)}
    assert cfg.blocks[1].preds == [] and cfg.blocks[2].succs == []
    assert cfg.reachable() == {0, 4, cfg.exit.id}


def test_branch_out_of_an_if_arm(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        block
          local.get 0
          if
            br 1
          else
            br 0
          end
          nop
        end""", "(param i32)")
    assert shape(cfg) == [["block", "local.get", "if"], ["br"], ["else"], ["br"], ["end"],
                          ["nop", "end"], ["end"]]
    assert edges(cfg) == {(0, 1, "branch", None), (0, 3, "fallthrough", None),
                          (1, 6, "branch", None), (2, 5, "branch", None),
                          (3, 5, "branch", None), (4, 5, "fallthrough", None),
                          (5, 6, "fallthrough", None), (6, "exit", "return", None)}


def test_unreachable_code_after_return(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        i32.const 1
        return
        i32.const 2
        drop
        i32.const 3""", "(result i32)")
    assert shape(cfg) == [["i32.const", "return"], ["i32.const", "drop", "i32.const", "end"]]
    assert edges(cfg) == {(0, "exit", "return", None), (1, "exit", "return", None)}
    assert cfg.blocks[1].preds == []
    assert cfg.reachable() == {0, cfg.exit.id}


def test_unreachable_instruction_has_no_successors(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, "unreachable")
    assert shape(cfg) == [["unreachable"], ["end"]]
    assert cfg.entry.succs == []
    assert cfg.exit.preds == [Edge(1, cfg.exit.id, EdgeKind.RETURN)]


def test_calls_split_blocks(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, """
        local.get 0
        call $g
        i32.const 0
        call_indirect (type $t)
        i32.const 1
        i32.add
        call $g""", "(param i32) (result i32)", """
        (type $t (func (param i32) (result i32)))
        (table 1 funcref)
        (func $g (param i32) (result i32) local.get 0)""")
    assert shape(cfg) == [["local.get", "call"], ["i32.const", "call_indirect"],
                          ["i32.const", "i32.add", "call"], ["end"]]
    assert edges(cfg) == {(0, 1, "fallthrough", None), (1, 2, "fallthrough", None),
                          (2, 3, "fallthrough", None), (3, "exit", "return", None)}


def test_branch_to_function_label_returns(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, "local.get 0 br_if 0 nop", "(param i32)")
    assert shape(cfg) == [["local.get", "br_if"], ["nop", "end"]]
    assert [(e.dst, str(e.kind)) for e in cfg.entry.succs] == [
        (cfg.exit.id, "return"), (1, "fallthrough")]
    assert edges(cfg) == {(0, "exit", "return", None), (0, 1, "fallthrough", None),
                          (1, "exit", "return", None)}
    cfg = one_func(wat_module, "block local.get 0 br_table 0 1 end", "(param i32)")
    assert [(e.dst, str(e.kind), e.index) for e in cfg.entry.succs] == [
        (2, "br_table", 0), (cfg.exit.id, "return", 1)]


def test_single_end(wat_module: WatModule) -> None:
    cfg = one_func(wat_module, "")
    assert shape(cfg) == [["end"]]
    assert edges(cfg) == {(0, "exit", "return", None)}


def test_imported_function_has_no_cfg(wat_module: WatModule) -> None:
    m = wat_module('(module (import "env" "f" (func)) (func))')
    with pytest.raises(KeyError):
        build_cfg(m, 0)
    assert shape(build_cfg(m, 1)) == [["end"]]


def _instrs(*ops: tuple[str, object]) -> list[Instr]:
    return [Instr(lookup(name), imm, pc) for pc, (name, imm) in enumerate(ops)]


def test_broken_structure_raises_validation_error() -> None:
    with pytest.raises(ValidationError, match="branch depth 3"):
        cfg_from_instrs(_instrs(("br", 3), ("end", None)), 7)
    with pytest.raises(ValidationError, match="else without a matching if"):
        cfg_from_instrs(_instrs(("else", None), ("end", None)))
    with pytest.raises(ValidationError, match="end"):
        cfg_from_instrs(_instrs(("nop", None), ("end", None), ("nop", None)))


# -- every example --------------------------------------------------------------------
def test_every_example_function(example_paths: list[Path]) -> None:
    total = 0
    kinds: set[str] = set()
    for path in example_paths:
        m = load(path)
        for f in m.functions:
            cfg = build_cfg(m, f.index)
            check_invariants(cfg, f.instrs)
            total += len(cfg.blocks)
            kinds.update(str(e.kind) for e in cfg.edges)
    assert total > 1000
    assert kinds == {k.value for k in EdgeKind}


def test_reachable_blocks_of_c_program_have_preds(example_wasm_paths: list[Path]) -> None:
    m = load(example_wasm_paths[0])
    for f in m.functions:
        cfg = build_cfg(m, f.index)
        for b in cfg.blocks:
            if b is not cfg.entry and b.id in cfg.reachable():
                assert b.preds


# -- text and DOT -----------------------------------------------------------------------
_DOT_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(->)|([A-Za-z_][A-Za-z_0-9.]*|-?\d+(?:\.\d+)?)'
                        r'|([{}\[\];,=]))', re.DOTALL)


def parse_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict[str, str]]]]:
    """A small parser for the DOT subset we emit: nodes with attributes, edges."""
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _DOT_TOKEN.match(text, pos)
        assert m and m.end() > pos, f"bad DOT token at {text[pos:pos + 30]!r}"
        tokens.append(m.group(0).strip())
        pos = m.end()
    assert tokens[0] == "digraph" and tokens[2] == "{" and tokens[-1] == "}"
    body = tokens[3:-1]
    nodes: dict[str, dict[str, str]] = {}
    edge_list: list[tuple[str, str, dict[str, str]]] = []
    i = 0

    def attrs(j: int) -> tuple[dict[str, str], int]:
        out: dict[str, str] = {}
        if j < len(body) and body[j] == "[":
            j += 1
            while body[j] != "]":
                key, eq, val = body[j], body[j + 1], body[j + 2]
                assert eq == "=", body[j:j + 3]
                out[key] = val
                j += 3
                if body[j] == ",":
                    j += 1
            j += 1
        return out, j

    while i < len(body):
        ident = body[i]
        if i + 1 < len(body) and body[i + 1] == "->":
            a, j = attrs(i + 3)
            edge_list.append((ident, body[i + 2], a))
        else:
            a, j = attrs(i + 1)
            if ident not in ("graph", "node", "edge"):
                nodes[ident] = a
        assert body[j] == ";", f"statement not terminated at {body[i:j + 1]}"
        i = j + 1
    return nodes, edge_list


def test_dot_output(wat_module: WatModule) -> None:
    m = wat_module("""(module
      (func $callee)
      (func $f (param i32) (result i32)
        block
          loop
            local.get 0
            br_table 0 1 0
          end
        end
        call $callee
        local.get 0
        if (result i32) i32.const 1 else f64.const 0.5 drop i32.const 2 end))""")
    cfg = build_cfg(m, 1)
    dot = cfg.to_dot(m, counts={0: 1, 1: 5})
    nodes, dot_edges = parse_dot(dot)
    assert set(nodes) == {f"b{b.id}" for b in cfg.nodes}
    assert sorted((s, d) for s, d, _ in dot_edges) == sorted(
        (f"b{e.src}", f"b{e.dst}") for e in cfg.edges)
    assert 'label="1"' in dot  # br_table positions label their edges
    labels = {k: v["label"] for k, v in nodes.items()}
    assert "count=5" in labels["b1"] and "count=0" in labels["b2"]
    assert shape(cfg)[2:4] == [["end", "end"], ["call"]]
    assert "call 0 ;; callee" in labels["b3"]
    assert "f64.const 0x1p-1 (;=0.5;)" in dot
    assert nodes["b2"].get("style") == "filled"  # never executed
    styles = {(s, d): a for s, d, a in dot_edges}
    assert "bold" in styles[("b1", "b1")]["style"]  # the back edge
    # Without counts, the statically unreachable loop end is dashed.
    nodes, _ = parse_dot(cfg.to_dot())
    assert nodes["b2"].get("style") == "dashed"
    assert "count=" not in cfg.to_dot()


def test_dot_escapes_quotes_in_names(wat_module: WatModule) -> None:
    m = wat_module('(module (func $callee) (func (export "a\\"b\\\\c") call $callee))')
    dot = build_cfg(m, 1).to_dot(m)
    nodes, _ = parse_dot(dot)
    assert 'digraph "func 1 a\\"b\\\\c"' in dot
    assert len(nodes) == 3


def test_dot_max_instrs(example_wasm_paths: list[Path]) -> None:
    m = load(example_wasm_paths[0])
    f = max(m.functions, key=lambda f: len(f.instrs))
    dot = build_cfg(m, f.index).to_dot(m, max_instrs=3)
    parse_dot(dot)
    assert " more\\l" in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` is not installed")
def test_dot_renders_with_graphviz(example_paths: list[Path], tmp_path: Path) -> None:
    m = load(example_paths[0])
    for f in m.functions[:20]:
        proc = subprocess.run(["dot", "-Tsvg"], input=build_cfg(m, f.index).to_dot(m),
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


def test_to_text(wat_module: WatModule) -> None:
    m = wat_module("""(module (func $callee)
      (func $run (param i32) (result i32)
        loop
          local.get 0
          br_if 0
        end
        call $callee
        i32.const 7))""")
    text = build_cfg(m, 1).to_text(m)
    assert text.splitlines() == [
        "func 1 run: 4 blocks, 5 edges",
        "B0  pc 1..1  preds: -  succs: B1 (fallthrough)",
        "     1  loop",
        "B1  pc 3..5  preds: B0 (fallthrough), B1 (loop)  succs: B1 (loop), B2 (fallthrough)",
        "     3  local.get 0",
        "     5  br_if 0",
        "B2  pc 7..8  preds: B1 (fallthrough)  succs: B3 (fallthrough)",
        "     7  end",
        "     8  call 0 ;; callee",
        "B3  pc 10..12  preds: B2 (fallthrough)  succs: exit (return)",
        "    10  i32.const 7",
        "    12  end",
        "exit  preds: B3 (return)",
    ]


def test_to_networkx(wat_module: WatModule) -> None:
    nx = pytest.importorskip("networkx")
    cfg = one_func(wat_module, "local.get 0 if nop end", "(param i32)")
    g = cfg.to_networkx()
    assert set(g.nodes) == {0, 1, 2, cfg.exit.id}
    assert g.number_of_edges() == len(cfg.edges) == 4
    assert nx.has_path(g, 0, cfg.exit.id)
    kinds = sorted(d["kind"] for _, _, d in g.edges(data=True))
    assert kinds == ["branch", "fallthrough", "fallthrough", "return"]
