"""Running the WebAssembly spec suite's execution commands on the native backend.

The ``.wast`` files are converted by ``tests/ir/spec_support.convert`` (shared
cache); this module walks the JSON commands in order: ``module`` instantiates,
``register`` makes an instance's exports importable (as the objects
``NativeInstance.export`` returns, so memories, tables and mutable globals are
shared with the importers, as the spec requires), and ``assert_return``,
``assert_trap``, ``assert_exhaustion``, ``action``, ``assert_uninstantiable``
and ``assert_unlinkable`` are checked. Values travel as bit patterns, so NaN
payloads are compared exactly (``nan:canonical`` / ``nan:arithmetic`` by their
definitions).

Counts per command kind go to `FileResult`; a command whose module cannot be
compiled because of a feature the native backend lacks (SIMD) is *skipped*,
never counted as passed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.backends.base import CompileOptions
from probes.backends.native.runner import (
    ExternRef,
    NativeBackend,
    NativeGlobal,
    NativeInstance,
    NativeMemory,
    NativeTable,
    to_bits,
)
from probes.ir import LinkError, ProbesError, Trap, UnsupportedFeature, decode
from probes.ir.types import F32, F64, I32, I64

COUNTED = ("assert_return", "assert_trap", "assert_exhaustion")
"""The command kinds the acceptance target is about."""

TRAP_ALIASES = {
    "out of bounds table access": {"undefined element", "out of bounds table access"},
    "undefined element": {"undefined element"},
    "uninitialized element": {"uninitialized element", "uninitialized element 2"},
    "indirect call type mismatch": {"indirect call type mismatch"},
}
"""Expected trap text -> kinds that satisfy it (the native backend reports the wasm
backend's kinds: wasmtime says "undefined element" for every table bound)."""


@dataclass
class FileResult:
    """Pass counts of one .wast file."""

    passed: dict[str, int] = field(default_factory=lambda: {k: 0 for k in COUNTED})
    total: dict[str, int] = field(default_factory=lambda: {k: 0 for k in COUNTED})
    skipped: dict[str, int] = field(default_factory=lambda: {k: 0 for k in COUNTED})
    other_passed: int = 0
    other_total: int = 0
    failures: list[str] = field(default_factory=list)
    skip_reasons: set[str] = field(default_factory=set)


class _Unsupported(Exception):
    pass


def _spectest() -> dict[str, Any]:
    """The spectest module: one memory and one table, shared by every importer."""
    def nop(*args: Any) -> None:
        return None
    return {
        "print": nop, "print_i32": nop, "print_i64": nop, "print_f32": nop, "print_f64": nop,
        "print_i32_f32": nop, "print_f64_f64": nop,
        "global_i32": 666, "global_i64": 666, "global_f32": 666.6, "global_f64": 666.6,
        "table": NativeTable.new(10, 20), "memory": NativeMemory.new(1, 2),
    }


class SpecRunner:
    """Runs one converted .wast file."""

    def __init__(self, json_path: Path, backend: NativeBackend, options: CompileOptions) -> None:
        self.json_path = json_path
        self.base = json_path.parent
        self.backend = backend
        self.options = options
        self.result = FileResult()
        self.registered: dict[str, dict[str, Any]] = {"spectest": _spectest()}
        self.instances: list[NativeInstance] = []
        self.current: NativeInstance | None = None
        self.current_error: str | None = None
        self.named: dict[str, NativeInstance | None] = {}
        self.named_errors: dict[str, str] = {}
        self.unregistered: dict[str, str] = {}
        """Registered names whose module could not run here -> why (importers are skipped)."""

    # -- modules -------------------------------------------------------------------------------
    def instantiate(self, filename: str) -> NativeInstance:
        data = (self.base / filename).read_bytes()
        m = decode(data)
        for imp in m.imports:
            if imp.module in self.unregistered and imp.module not in self.registered:
                raise _Unsupported(self.unregistered[imp.module])
        exe = self.backend.compile(m, None, self.options)
        inst = exe.instantiate(imports=self.registered)
        self.instances.append(inst)
        return inst

    def exports_of(self, inst: NativeInstance) -> dict[str, Any]:
        return {e.name: inst.export(e.name) for e in inst.module.exports}

    # -- values ----------------------------------------------------------------------------------
    def arg_bits(self, inst: NativeInstance, v: dict[str, Any]) -> int:
        t = v["type"]
        val = v.get("value")
        if t in ("i32", "f32"):
            return int(val) & 0xFFFFFFFF
        if t in ("i64", "f64"):
            return int(val) & 0xFFFFFFFFFFFFFFFF
        if t in ("externref", "funcref", "anyref"):
            if val is None or val == "null":
                return 0
            if t == "externref":
                return inst.ref_bits(ExternRef(int(val)), I32)
        raise _Unsupported(f"argument type {t}")

    def matches(self, inst: NativeInstance, bits: int, exp: dict[str, Any]) -> bool:
        t = exp["type"]
        val = exp.get("value")
        if t == "i32":
            return bits & 0xFFFFFFFF == int(val) & 0xFFFFFFFF
        if t == "i64":
            return bits & 0xFFFFFFFFFFFFFFFF == int(val) & 0xFFFFFFFFFFFFFFFF
        if t in ("f32", "f64"):
            width = 32 if t == "f32" else 64
            mask = (1 << width) - 1
            bits &= mask
            frac = 23 if t == "f32" else 52
            exp_mask = ((1 << (width - 1 - frac)) - 1) << frac
            quiet = 1 << (frac - 1)
            is_nan = (bits & exp_mask) == exp_mask and bits & ((1 << frac) - 1)
            if val == "nan:canonical":
                return bool(is_nan) and bits & ((1 << frac) - 1) == quiet
            if val == "nan:arithmetic":
                return bool(is_nan) and bool(bits & quiet)
            return bits == int(val) & mask
        if t == "externref":
            if val is None:
                return bits != 0
            if val == "null":
                return bits == 0
            return bits != 0 and inst._externs[bits - 1] == int(val)
        if t in ("funcref", "anyref"):
            if val == "null":
                return bits == 0
            return bits != 0
        raise _Unsupported(f"result type {t}")

    # -- commands --------------------------------------------------------------------------------
    def target(self, action: dict[str, Any]) -> NativeInstance:
        name = action.get("module")
        if name is not None:
            inst = self.named.get(name)
            if inst is None:
                raise _Unsupported(self.named_errors.get(name, f"module {name} unavailable"))
            return inst
        if self.current is None:
            raise _Unsupported(self.current_error or "no module")
        return self.current

    def perform(self, action: dict[str, Any]) -> list[int]:
        inst = self.target(action)
        field_ = action["field"]
        if action["type"] == "get":
            g = inst.export(field_)
            assert isinstance(g, NativeGlobal)
            return [g.bits]
        func = inst._exports.get(field_)
        if func is None:
            raise _Unsupported(f"no export {field_}")
        bits = [self.arg_bits(inst, a) for a in action.get("args", [])]
        return inst.invoke_raw(func, bits)

    def run(self) -> FileResult:
        doc = json.loads(self.json_path.read_text(encoding="utf-8"))
        for cmd in doc["commands"]:
            try:
                self.command(cmd)
            except _Unsupported as e:
                kind = cmd["type"]
                self.result.skip_reasons.add(str(e))
                if kind in COUNTED:
                    self.result.skipped[kind] += 1
        for inst in self.instances:
            inst.close()
        return self.result

    def fail(self, cmd: dict[str, Any], message: str) -> None:
        self.result.failures.append(f"line {cmd.get('line')}: {cmd['type']}: {message}")

    def command(self, cmd: dict[str, Any]) -> None:  # noqa: C901
        kind = cmd["type"]
        res = self.result
        if kind == "module":
            name = cmd.get("name")
            filename = cmd.get("filename")
            if cmd.get("module_type", "binary") != "binary":
                filename = cmd.get("binary_filename")
            self.current = None
            try:
                if not filename:
                    raise _Unsupported("text module")
                self.current = self.instantiate(filename)
                self.current_error = None
            except UnsupportedFeature as e:
                self.current_error = f"unsupported: {e.feature}"
                res.skip_reasons.add(self.current_error)
            except (ProbesError, _Unsupported) as e:
                self.current_error = f"module failed: {e}"
                if not isinstance(e, _Unsupported):
                    self.fail(cmd, f"instantiation failed: {type(e).__name__}: {e}")
            if name is not None:
                self.named[name] = self.current
                if self.current_error:
                    self.named_errors[name] = self.current_error
            return
        if kind == "register":
            name = cmd.get("name")
            inst = self.named.get(name) if name is not None else self.current
            if inst is not None:
                self.registered[cmd["as"]] = self.exports_of(inst)
                self.unregistered.pop(cmd["as"], None)
            else:
                error = self.named_errors.get(name, "") if name is not None else \
                    self.current_error or ""
                self.registered.pop(cmd["as"], None)
                self.unregistered[cmd["as"]] = error or "module unavailable"
            return
        if kind in ("assert_return", "action"):
            if kind == "action":
                res.other_total += 1
            else:
                res.total[kind] += 1
            try:
                out = self.perform(cmd["action"])
            except Trap as t:
                self.fail(cmd, f"{cmd['action'].get('field')}: unexpected trap {t}")
                return
            except ProbesError as e:
                self.fail(cmd, f"{cmd['action'].get('field')}: {type(e).__name__}: {e}")
                return
            if kind == "action":
                res.other_passed += 1
                return
            expected = cmd.get("expected", [])
            if any(e.get("type") == "v128" for e in expected) or any(
                    "either" in e.get("type", "") for e in expected):
                raise _Unsupported("v128 results")
            inst = self.target(cmd["action"])
            if len(out) == len(expected) and all(self.matches(inst, b, e)
                                                 for b, e in zip(out, expected, strict=True)):
                res.passed[kind] += 1
            else:
                self.fail(cmd, f"{cmd['action'].get('field')}"
                               f"({[a.get('value') for a in cmd['action'].get('args', [])]}): "
                               f"got {out}, expected {[e.get('value') for e in expected]}")
            return
        if kind in ("assert_trap", "assert_exhaustion"):
            res.total[kind] += 1
            want = cmd.get("text", "")
            try:
                out = self.perform(cmd["action"])
            except Trap as t:
                ok = t.kind in TRAP_ALIASES.get(want, {want}) or want.startswith(t.kind)
                if kind == "assert_exhaustion":
                    ok = t.kind == "call stack exhausted"
                if ok:
                    res.passed[kind] += 1
                else:
                    self.fail(cmd, f"{cmd['action'].get('field')}: trapped {t.kind!r}, "
                                   f"expected {want!r}")
                return
            except ProbesError as e:
                self.fail(cmd, f"{type(e).__name__}: {e}")
                return
            self.fail(cmd, f"{cmd['action'].get('field')}: returned {out}, expected trap "
                           f"{want!r}")
            return
        if kind in ("assert_uninstantiable", "assert_unlinkable"):
            res.other_total += 1
            filename = cmd.get("filename")
            if cmd.get("module_type", "binary") != "binary" or not filename:
                res.other_total -= 1
                return
            try:
                self.instantiate(filename)
            except UnsupportedFeature:
                res.other_total -= 1
                return
            except _Unsupported as e:
                res.other_total -= 1
                res.skip_reasons.add(str(e))
                return
            except Trap:
                ok = kind == "assert_uninstantiable"
            except LinkError:
                ok = kind == "assert_unlinkable"
            except ProbesError as e:
                self.fail(cmd, f"{type(e).__name__}: {e}")
                return
            else:
                ok = False
            if ok:
                res.other_passed += 1
            else:
                self.fail(cmd, "instantiation did not fail as expected")
            return
        # assert_invalid / assert_malformed / module_definition...: the IR tests' business.


_ = (F32, F64, I64, to_bits)
