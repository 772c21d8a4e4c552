"""Backend fixtures: the suite runs once per backend (a fixture parameter)."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.backends.base import BACKENDS, CompileOptions, get_backend
from probes.ir import ProbesError

AVAILABLE = []
for _name in BACKENDS:
    try:
        get_backend(_name)
        AVAILABLE.append(_name)
    except ProbesError:
        pass


@pytest.fixture(params=AVAILABLE)
def backend(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Each available backend in turn."""
    return get_backend(request.param)


@pytest.fixture(scope="session")
def compile_options(tmp_path_factory: pytest.TempPathFactory) -> CompileOptions:
    """Options with a per-session compile cache, so tests never touch ~/.cache."""
    return CompileOptions(cache_dir=str(tmp_path_factory.mktemp("probes-cache")))


def c_examples(examples: Path) -> list[Path]:
    return sorted(p for p in examples.glob("*.wasm") if p.with_suffix(".c").exists())
