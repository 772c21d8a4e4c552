"""Fixtures of the native backend tests.

The native backend needs llvmlite, cffi and the compiled C runtime; without
them every test here is skipped with the reason. `native_run` is
`probes.api.run` with ``backend="native"`` available even while
`get_backend("native")` is not yet switched on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from probes.backends.base import CompileOptions
from probes.ir import ProbesError

COUNTED = ("assert_return", "assert_trap", "assert_exhaustion")

SPEC_PROPERTY = "native_spec_counts"
"""The user property test_spec.py attaches its per-file counts under."""

SPEC_RESULTS: dict[str, dict[str, Any]] = {}
"""wast stem -> native pass counts (the property's value), printed in the terminal
summary; collected from test reports, which pytest-xdist sends back from workers."""


def _backend() -> Any:
    try:
        from probes.backends.native import NativeBackend
        return NativeBackend()
    except (ImportError, ProbesError) as e:
        pytest.skip(f"native backend unavailable: {e}")


@pytest.fixture(scope="session")
def native() -> Any:
    """A NativeBackend (skips when llvmlite/cffi/the C runtime are missing)."""
    return _backend()


@pytest.fixture(scope="session")
def native_options(tmp_path_factory: pytest.TempPathFactory) -> CompileOptions:
    """O2 with a per-session compile cache."""
    return CompileOptions(cache_dir=str(tmp_path_factory.mktemp("native-cache")))


@pytest.fixture
def native_run(native: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """``probes.api.run`` able to use ``backend="native"``."""
    import probes.api as api

    original = api.get_backend

    def get_backend(name: str = "wasm") -> Any:
        return native if name == "native" else original(name)

    monkeypatch.setattr(api, "get_backend", get_backend)
    yield api.run


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == SPEC_PROPERTY:
            SPEC_RESULTS[value["wast"]] = value


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not SPEC_RESULTS:
        return
    tr = terminalreporter
    tr.write_sep("=", "spec suite on the native backend (passed/total, skipped)")
    width = max(len(n) for n in SPEC_RESULTS) + 2
    tr.write_line(f"{'file':<{width}}" + "".join(f"{k:>24}" for k in COUNTED) + f"{'fails':>7}")
    totals = {k: [0, 0, 0] for k in COUNTED}
    for name in sorted(SPEC_RESULTS):
        r = SPEC_RESULTS[name]
        cells = []
        for k in COUNTED:
            totals[k][0] += r["passed"][k]
            totals[k][1] += r["total"][k]
            totals[k][2] += r["skipped"][k]
            skip = f" ({r['skipped'][k]} sk)" if r["skipped"][k] else ""
            cells.append(f"{r['passed'][k]}/{r['total'][k]}{skip}")
        tr.write_line(f"{name:<{width}}" + "".join(f"{c:>24}" for c in cells)
                      + f"{r['failures']:>7}")
    cells = [f"{p}/{t}" + (f" ({s} sk)" if s else "") for p, t, s in totals.values()]
    tr.write_line(f"{'total':<{width}}" + "".join(f"{c:>24}" for c in cells))
