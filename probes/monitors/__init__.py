"""Monitors: ready-made analyses built on the public probe API, one per file.

Each monitor is a dataclass whose fields are its options, registered by name
with help text. Lifecycle: `attach` places probes before the run, `collect`
moves results into the ProfileData after it (also after a trap), `report`
renders a readable summary.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
from collections.abc import Sequence
from typing import Any, ClassVar

from ..ir import Module, ProbeError
from ..probeset import ProbeSet
from ..profile import ProfileData

__all__ = ["Monitor", "register", "REGISTRY", "create", "available", "refuse_duplicates"]

REGISTRY: dict[str, type[Monitor]] = {}
"""Monitor name -> class."""


class Monitor:
    """Base class. Subclasses are dataclasses; their fields are the options."""

    name: ClassVar[str] = ""
    """Registered name, as given to ``--monitor``."""
    help: ClassVar[str] = ""
    """One-line description for ``python -m probes monitors``."""

    def attach(self, module: Module, probes: ProbeSet) -> None:
        """Insert this monitor's probes."""

    def compile_options(self) -> dict[str, Any]:
        """Extra backend options this monitor needs (e.g. fuel)."""
        return {}

    def collect(self, profile: ProfileData) -> None:
        """Move results from the probes into ``profile`` (after a run, or a trap)."""

    def report(self, profile: ProfileData, module: Module) -> str:
        """A readable summary of this monitor's part of ``profile``."""
        return ""


def register(cls: type[Monitor]) -> type[Monitor]:
    """Class decorator: make a monitor available by its name."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def available() -> dict[str, type[Monitor]]:
    """Every registered monitor, by name."""
    if not REGISTRY:
        _load_all()
    return dict(sorted(REGISTRY.items()))


def _convert(value: str, typ: Any, name: str, option: str) -> Any:
    typ = typ if isinstance(typ, type) else {"int": int, "float": float, "bool": bool,
                                             "str": str}.get(str(typ), str)
    if typ is bool:
        low = value.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ProbeError(f"monitor {name}: option {option} expects true/false, got {value!r}")
    try:
        out = typ(value)
    except ValueError:
        raise ProbeError(f"monitor {name}: option {option} expects {typ.__name__}, "
                         f"got {value!r}") from None
    if typ is float and not math.isfinite(out):
        raise ProbeError(f"monitor {name}: option {option} expects a finite number, "
                         f"got {value!r}")
    if typ is int and option == "top" and out < 0:
        raise ProbeError(f"monitor {name}: option top expects a count >= 0, got {value!r}")
    return out


def create(spec: str) -> Monitor:
    """A monitor from ``NAME[:k=v,...]`` (the CLI's ``--monitor`` syntax)."""
    name, _, opts = spec.partition(":")
    monitors = available()
    cls = monitors.get(name)
    if cls is None:
        raise ProbeError(f"unknown monitor {name!r} (available: {', '.join(monitors)})")
    fields = {f.name: f for f in dataclasses.fields(cls)  # type: ignore[arg-type]
              if not f.name.startswith("_")}
    kwargs: dict[str, Any] = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq:
            raise ProbeError(f"monitor {name}: option {item!r} must be key=value")
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise ProbeError(f"monitor {name}: unknown option {key!r} (options: {known})")
        if key in kwargs:
            raise ProbeError(f"monitor {name}: option {key} is given twice")
        kwargs[key] = _convert(value.strip(), fields[key].type, name, key)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ProbeError(f"monitor {name}: {e}") from None


def refuse_duplicates(names: Sequence[str]) -> None:
    """Raise ProbeError when a monitor is named twice: two of a kind would fill the same
    part of the profile (and compete for options such as timeout's budget)."""
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ProbeError(f"monitor {twice[0]} is given twice; give it once, with all its "
                         f"options (as {twice[0]}:k=v,k2=v2)")


def options_help(cls: type[Monitor]) -> list[tuple[str, str, Any]]:
    """(option, help, default) for each option of a monitor."""
    out = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name.startswith("_"):
            continue
        out.append((f.name, f.metadata.get("help", ""), f.default))
    return out


def option(default: Any, help: str) -> Any:
    """A monitor option: a dataclass field with help text."""
    return dataclasses.field(default=default, metadata={"help": help})
