"""Fixtures of the native backend tests.

The native backend needs llvmlite, cffi and the compiled C runtime; without
them every test here is skipped with the reason. `native_run` is
`probes.api.run` with ``backend="native"`` available even while
`get_backend("native")` is not yet switched on. The spec suite's summary is
printed by the root conftest (the one pytest-xdist's controller loads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from probes.backends.base import CompileOptions
from probes.ir import ProbesError


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
