"""Shared fixtures: where the examples are, and WAT assembly helpers.

    def test_something(wat_module, example_paths):
        m = wat_module("(module (func))")
        for path in example_paths: ...
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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


# -- the native spec suite's per-file counts ---------------------------------------------
SPEC_PROPERTY = "native_spec_counts"
"""The user property test_spec.py attaches its per-file counts under."""

SPEC_RESULTS: dict[str, dict[str, Any]] = {}
"""wast stem -> native pass counts (the property's value), printed in the terminal
summary; collected from test reports, which pytest-xdist sends back from workers."""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == SPEC_PROPERTY:
            SPEC_RESULTS[value["wast"]] = value


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not SPEC_RESULTS:
        return
    tr = terminalreporter
    kinds = list(next(iter(SPEC_RESULTS.values()))["passed"])  # spec_exec.COUNTED
    tr.write_sep("=", "spec suite on the native backend (passed/total, skipped)")
    width = max(len(n) for n in SPEC_RESULTS) + 2
    tr.write_line(f"{'file':<{width}}" + "".join(f"{k:>24}" for k in kinds) + f"{'fails':>7}")
    totals = {k: [0, 0, 0] for k in kinds}
    for name in sorted(SPEC_RESULTS):
        r = SPEC_RESULTS[name]
        cells = []
        for k in kinds:
            totals[k][0] += r["passed"][k]
            totals[k][1] += r["total"][k]
            totals[k][2] += r["skipped"][k]
            skip = f" ({r['skipped'][k]} sk)" if r["skipped"][k] else ""
            cells.append(f"{r['passed'][k]}/{r['total'][k]}{skip}")
        tr.write_line(f"{name:<{width}}" + "".join(f"{c:>24}" for c in cells)
                      + f"{r['failures']:>7}")
    cells = [f"{p}/{t}" + (f" ({s} sk)" if s else "") for p, t, s in totals.values()]
    tr.write_line(f"{'total':<{width}}" + "".join(f"{c:>24}" for c in cells))
