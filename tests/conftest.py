"""Shared fixtures: where the examples are, and WAT assembly helpers.

    def test_something(wat_module, example_paths):
        m = wat_module("(module (func))")
        for path in example_paths: ...
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from probes.ir import Module, decode
from probes.ir.loader import wat_to_wasm

REPO = Path(__file__).resolve().parent.parent
"""The repository root."""
EXAMPLES = REPO / "examples"
"""The example programs."""


def assemble(text: str) -> bytes:
    """WAT text to a binary module (raises `DecodeError` for bad text)."""
    return wat_to_wasm(text)


def module_from_wat(text: str) -> Module:
    """WAT text to a decoded `Module`."""
    return decode(assemble(text))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """``examples/``."""
    return EXAMPLES


@pytest.fixture(scope="session")
def example_wasm_paths() -> list[Path]:
    """Every ``examples/*.wasm`` (the compiled C programs)."""
    paths = sorted(EXAMPLES.glob("*.wasm"))
    assert paths, f"no .wasm files in {EXAMPLES}"
    return paths


@pytest.fixture(scope="session")
def example_paths(example_wasm_paths: list[Path]) -> list[Path]:
    """Every example program that loads without a compiler: ``*.wasm`` and ``*.wat``."""
    return sorted([*example_wasm_paths, *EXAMPLES.glob("*.wat")])


@pytest.fixture(scope="session")
def wat_to_binary() -> Callable[[str], bytes]:
    """``wat_to_binary(text) -> bytes`` (via `probes.ir.loader.wat_to_wasm`)."""
    return assemble


@pytest.fixture(scope="session")
def wat_module() -> Callable[[str], Module]:
    """``wat_module(text) -> Module``: assemble WAT text and decode it."""
    return module_from_wat
