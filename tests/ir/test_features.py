"""features_used: instruction features plus module-level evidence."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from probes.ir import Module, load
from probes.ir.features import FEATURES, features_used

WatModule = Callable[[str], Module]


@pytest.mark.parametrize("body, expected", [
    ("(func)", set()),
    ("(func (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))", set()),
    # multi-value
    ("(func (result i32 i32) (i32.const 1) (i32.const 2))", {"multi-value"}),
    ("(func (result i32) (i32.const 1) (block (param i32) (result i32)))", {"multi-value"}),
    # reference types
    ("(func (param externref))", {"reference-types"}),
    ("(table 1 funcref) (func (drop (table.get 0 (i32.const 0))))", {"reference-types"}),
    ("(table 1 funcref) (table 1 funcref)", {"reference-types"}),
    ("(table 1 externref)", {"reference-types"}),
    ("(func (local funcref))", {"reference-types"}),
    ("(global funcref (ref.null func))", {"reference-types"}),
    ("(func (drop (select (result i32) (i32.const 1) (i32.const 2) (i32.const 3))))",
     {"reference-types"}),
    ("(func $f) (elem declare func $f)", {"reference-types"}),
    # bulk memory
    ("(memory 1) (data \"x\")", {"bulk-memory"}),
    ("(memory 1) (func (memory.fill (i32.const 0) (i32.const 0) (i32.const 0)))",
     {"bulk-memory"}),
    ("(func $f) (table 1 funcref) (elem func $f)", {"bulk-memory"}),
    # mutable globals (only across the module boundary)
    ("(global (export \"g\") (mut i32) (i32.const 0))", {"mutable-globals"}),
    ("(import \"env\" \"g\" (global (mut i32)))", {"mutable-globals"}),
    ("(global (mut i32) (i32.const 0))", set()),
    ("(global (export \"g\") i32 (i32.const 0))", set()),
    # multi-memory
    ("(memory 1) (memory 1)", {"multi-memory"}),
    # simd
    ("(func (local v128))", {"simd"}),
    ("(func (result v128) (i8x16.add (v128.const i64x2 0 0) (v128.const i64x2 0 0)))",
     {"simd"}),
    # post-MVP numeric instructions
    ("(func (result i32) (i32.extend8_s (i32.const 1)))", {"sign-extension"}),
    ("(func (result i32) (i32.trunc_sat_f32_s (f32.const 1)))", {"saturating-float-to-int"}),
])
def test_evidence(wat_module: WatModule, body: str, expected: set[str]) -> None:
    assert features_used(wat_module(f"(module {body})")) == {"mvp"} | expected


def test_data_count_section(wat_module: WatModule) -> None:
    m = wat_module('(module (memory 1) (data "x") (func (data.drop 0)))')
    assert m.data_count == 1
    assert features_used(m) == {"mvp", "bulk-memory"}


@pytest.mark.parametrize("name, expected", [
    ("loop.wat", {"mvp", "mutable-globals"}),
    ("trap.wat", {"mvp"}),
    ("branches.wat", {"mvp", "reference-types"}),
    ("multi.wat", {"mvp", "multi-value", "reference-types", "bulk-memory"}),
])
def test_examples(examples_dir: Path, name: str, expected: set[str]) -> None:
    assert features_used(load(examples_dir / name)) == expected


def test_c_programs_use_only_known_features(example_wasm_paths: list[Path]) -> None:
    for path in example_wasm_paths:
        used = features_used(load(path))
        assert "mvp" in used and used <= set(FEATURES), (path, used)
    # clang's default wasm32-wasi target today enables sign-extension.
    assert "sign-extension" in features_used(load(example_wasm_paths[0]))
