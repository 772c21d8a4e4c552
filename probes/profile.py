"""ProfileData: the public data API of a run's results.

Plain Python objects keyed by original `Location`s and function indices.
Monitors fill it, analyses and reports read it, ``a + b`` merges runs, and it
round-trips through JSON (written atomically, so a trap or Ctrl-C never
leaves half a file).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from .atomic import atomic_write
from .ir import Location, ProbesError

__all__ = ["ProfileData", "FORMAT_VERSION"]

FORMAT_VERSION = 1
"""Bumped when the JSON layout changes incompatibly."""


def _lk(loc: Location) -> str:
    return f"{loc.func}:{loc.pc}"


def _pl(key: str) -> Location:
    func, _, pc = key.partition(":")
    return Location(int(func), int(pc))


def _add_counts(a: dict[Any, int], b: dict[Any, int]) -> dict[Any, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


def _add_hist(a: dict[Any, dict[int, int]], b: dict[Any, dict[int, int]]
              ) -> dict[Any, dict[int, int]]:
    out = {k: dict(v) for k, v in a.items()}
    for k, v in b.items():
        out[k] = _add_counts(out.get(k, {}), v)
    return out


@dataclass
class ProfileData:
    """Everything the monitors of one or more runs collected."""

    program: str = ""
    """Path or name of the program."""
    module_sha256: str = ""
    """Hash of the original binary (locations refer to it)."""
    backend: str = ""
    """Backend that ran it."""
    runs: int = 1
    """How many runs were merged into this profile."""
    exit_code: int | None = None
    """WASI exit code of the (last) run."""
    trap: dict[str, Any] | None = None
    """The trap that ended the (last) run: kind, func, pc, backtrace."""
    monitors: list[str] = field(default_factory=list)
    """Monitors that contributed."""
    counts: dict[Location, int] = field(default_factory=dict)
    """Executions per instruction (icount, hotness, opcodes)."""
    coverage: dict[Location, bool] = field(default_factory=dict)
    """Instruction (or entry site, pc -1) -> whether it executed."""
    function_coverage: dict[int, bool] = field(default_factory=dict)
    """Function -> whether it was entered."""
    branches: dict[Location, dict[int, int]] = field(default_factory=dict)
    """br_if/if: {0: not taken, 1: taken}; br_table: target position -> count."""
    calls: dict[tuple[int, int], int] = field(default_factory=dict)
    """(caller, callee) -> calls; the dynamic call graph incl. call_indirect."""
    entries: dict[int, int] = field(default_factory=dict)
    """Function -> times entered."""
    indirect_targets: dict[Location, dict[int, int]] = field(default_factory=dict)
    """call_indirect site -> callee function -> count."""
    loops: dict[Location, dict[str, int]] = field(default_factory=dict)
    """Loop instruction -> {"entries": n, "iterations": m}."""
    memory: dict[str, dict[int, int]] = field(default_factory=dict)
    """"loads"/"stores" -> 64 KiB page -> accesses."""
    cct: dict[tuple[int, ...], dict[str, float]] = field(default_factory=dict)
    """Calling-context tree: call path (function indices from the root) ->
    {"samples", "total_ns", "self_samples", "self_ns"} (sampled; exact call
    counts per function are in `entries`)."""
    trace: list[tuple[Location, int]] = field(default_factory=list)
    """Trace events (location, value), oldest first (bounded by the monitor)."""
    trace_dropped: int = 0
    """Trace events dropped because of the bound."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Monitor-specific JSON-able data (e.g. opcode mixes), by monitor name."""

    # -- merging ------------------------------------------------------------------------
    def __add__(self, other: ProfileData) -> ProfileData:
        if not isinstance(other, ProfileData):
            return NotImplemented
        if self.module_sha256 and other.module_sha256 and \
                self.module_sha256 != other.module_sha256:
            raise ValueError("cannot merge profiles of different modules")
        cct = {k: dict(v) for k, v in self.cct.items()}
        for k, v in other.cct.items():
            node = cct.setdefault(k, {})
            for field_, x in v.items():
                node[field_] = node.get(field_, 0) + x
        extra = dict(self.extra)
        for k, v in other.extra.items():
            if k in extra and isinstance(v, dict) and isinstance(extra[k], dict) and all(
                    isinstance(x, (int, float)) for x in list(v.values()) +
                    list(extra[k].values())):
                extra[k] = _add_counts(extra[k], v)
            else:
                extra.setdefault(k, v)
        return ProfileData(
            program=self.program or other.program,
            module_sha256=self.module_sha256 or other.module_sha256,
            backend=self.backend if self.backend == other.backend else "mixed",
            runs=self.runs + other.runs,
            exit_code=other.exit_code, trap=other.trap,
            monitors=sorted(set(self.monitors) | set(other.monitors)),
            counts=_add_counts(self.counts, other.counts),
            coverage={k: self.coverage.get(k, False) or other.coverage.get(k, False)
                      for k in self.coverage.keys() | other.coverage.keys()},
            function_coverage={k: self.function_coverage.get(k, False)
                               or other.function_coverage.get(k, False)
                               for k in self.function_coverage.keys()
                               | other.function_coverage.keys()},
            branches=_add_hist(self.branches, other.branches),
            calls=_add_counts(self.calls, other.calls),
            entries=_add_counts(self.entries, other.entries),
            indirect_targets=_add_hist(self.indirect_targets, other.indirect_targets),
            loops=_add_hist(self.loops, other.loops),  # type: ignore[arg-type]
            memory=_add_hist(self.memory, other.memory),  # type: ignore[arg-type]
            cct=cct,  # type: ignore[arg-type]
            trace=self.trace + other.trace,
            trace_dropped=self.trace_dropped + other.trace_dropped,
            extra=extra,
        )

    # -- derived views --------------------------------------------------------------------
    def function_counts(self) -> dict[int, int]:
        """Instructions executed per function (from `counts`)."""
        out: dict[int, int] = {}
        for loc, n in self.counts.items():
            out[loc.func] = out.get(loc.func, 0) + n
        return out

    @property
    def total_instructions(self) -> int:
        return sum(self.counts.values())

    # -- JSON -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": "probes-profile", "version": FORMAT_VERSION,
            "program": self.program, "module_sha256": self.module_sha256,
            "backend": self.backend, "runs": self.runs, "exit_code": self.exit_code,
            "trap": self.trap, "monitors": self.monitors,
            "counts": {_lk(k): v for k, v in sorted(self.counts.items())},
            "coverage": {_lk(k): v for k, v in sorted(self.coverage.items())},
            "function_coverage": {str(k): v for k, v in sorted(self.function_coverage.items())},
            "branches": {_lk(k): {str(i): n for i, n in v.items()}
                         for k, v in sorted(self.branches.items())},
            "calls": [[a, b, n] for (a, b), n in sorted(self.calls.items())],
            "entries": {str(k): v for k, v in sorted(self.entries.items())},
            "indirect_targets": {_lk(k): {str(i): n for i, n in v.items()}
                                 for k, v in sorted(self.indirect_targets.items())},
            "loops": {_lk(k): v for k, v in sorted(self.loops.items())},
            "memory": {kind: {str(p): n for p, n in sorted(v.items())}
                       for kind, v in self.memory.items()},
            "cct": [[list(path), node] for path, node in sorted(self.cct.items())],
            "trace": [[loc.func, loc.pc, v] for loc, v in self.trace],
            "trace_dropped": self.trace_dropped,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProfileData:
        if data.get("format") != "probes-profile":
            raise ValueError("not a probes profile (missing \"format\": \"probes-profile\")")
        if data.get("version", 0) > FORMAT_VERSION:
            raise ValueError(f"profile format version {data.get('version')} is newer than "
                             f"this probes understands ({FORMAT_VERSION})")
        return cls(
            program=data.get("program", ""), module_sha256=data.get("module_sha256", ""),
            backend=data.get("backend", ""), runs=data.get("runs", 1),
            exit_code=data.get("exit_code"), trap=data.get("trap"),
            monitors=list(data.get("monitors", [])),
            counts={_pl(k): v for k, v in data.get("counts", {}).items()},
            coverage={_pl(k): v for k, v in data.get("coverage", {}).items()},
            function_coverage={int(k): v for k, v in data.get("function_coverage", {}).items()},
            branches={_pl(k): {int(i): n for i, n in v.items()}
                      for k, v in data.get("branches", {}).items()},
            calls={(a, b): n for a, b, n in data.get("calls", [])},
            entries={int(k): v for k, v in data.get("entries", {}).items()},
            indirect_targets={_pl(k): {int(i): n for i, n in v.items()}
                              for k, v in data.get("indirect_targets", {}).items()},
            loops={_pl(k): dict(v) for k, v in data.get("loops", {}).items()},
            memory={kind: {int(p): n for p, n in v.items()}
                    for kind, v in data.get("memory", {}).items()},
            cct={tuple(path): dict(node) for path, node in data.get("cct", [])},
            trace=[(Location(f, pc), v) for f, pc, v in data.get("trace", [])],
            trace_dropped=data.get("trace_dropped", 0),
            extra=dict(data.get("extra", {})),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write JSON atomically (temp file + rename)."""
        atomic_write(path, json.dumps(self.to_json(), separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ProfileData:
        """Read a saved profile. A file that is not one raises `ProbesError`;
        a missing or unreadable file raises the usual `OSError`."""
        with open(path, "rb") as fh:
            raw = fh.read()
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ProbesError(f"{path}: not a probes profile (not UTF-8 JSON text)") from None
        except json.JSONDecodeError as e:
            raise ProbesError(f"{path}: not a probes profile (invalid JSON: {e})") from None
        if not isinstance(data, dict):
            raise ProbesError(f"{path}: not a probes profile (not a JSON object)")
        try:
            return cls.from_json(data)
        except ValueError as e:
            raise ProbesError(f"{path}: {e}") from None
        except (KeyError, TypeError, AttributeError) as e:
            raise ProbesError(f"{path}: not a probes profile (malformed: {e!r})") from None
