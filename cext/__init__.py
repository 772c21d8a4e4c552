"""probes.cext: the C runtime of the native backend, built with cffi.

`pip install` compiles it as ``probes.cext._runtime`` (setup.py's
``cffi_modules``). In a source checkout without that build, `load` compiles
it once into the cache directory (``$PROBES_CACHE_DIR`` or
``~/.cache/probes``), keyed by a digest of the C sources.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["load", "RuntimeUnavailable"]

_LOCK = threading.Lock()
_MODULE: ModuleType | None = None


class RuntimeUnavailable(ImportError):
    """The C runtime is neither installed nor buildable here (no cffi or no C compiler)."""


def _cache_dir() -> Path:
    root = os.environ.get("PROBES_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "probes")
    return Path(root) / "cext"


def _build_locally() -> ModuleType:
    here = Path(__file__).resolve().parent
    if not (here / "build_runtime.py").exists():
        raise RuntimeUnavailable("probes.cext._runtime is not built and its sources are missing")
    spec = importlib.util.spec_from_file_location("_probes_build_runtime",
                                                  here / "build_runtime.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(builder)
    except ImportError as e:  # cffi missing
        raise RuntimeUnavailable(f"cannot build the C runtime: {e}") from None
    name = f"_probes_runtime_{builder.source_hash()}"
    target = _cache_dir() / name
    libs = list(target.glob(f"{name}*.so")) if target.is_dir() else []
    if not libs:
        target.mkdir(parents=True, exist_ok=True)
        try:
            path = builder.build_into(str(target), name)
        except Exception as e:  # compiler missing or failing
            raise RuntimeUnavailable(f"cannot build the C runtime: {e}") from None
        libs = [Path(path)]
    mspec = importlib.util.spec_from_file_location(name, libs[0])
    assert mspec is not None and mspec.loader is not None
    mod = importlib.util.module_from_spec(mspec)
    sys.modules[name] = mod
    mspec.loader.exec_module(mod)
    return mod


def load() -> Any:
    """The compiled runtime module (with ``ffi`` and ``lib``), building it if needed."""
    global _MODULE
    with _LOCK:
        if _MODULE is None:
            try:
                from . import _runtime  # type: ignore[attr-defined]
                _MODULE = _runtime
            except ImportError:
                _MODULE = _build_locally()
        return _MODULE
