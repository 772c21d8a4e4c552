"""Reference runs on wasmtime with nothing of probes in between."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

import wasmtime


@dataclass
class PlainRun:
    stdout: bytes
    exit_code: int | None
    trap: str | None
    fuel: int | None = None


def run_wasi(wasm: bytes, argv: list[str], fuel: bool = False) -> PlainRun:
    cfg = wasmtime.Config()
    if fuel:
        cfg.consume_fuel = True
    engine = wasmtime.Engine(cfg)
    store = wasmtime.Store(engine)
    budget = 10**12
    if fuel:
        store.set_fuel(budget)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "stdout")
        wasi = wasmtime.WasiConfig()
        wasi.argv = argv
        wasi.stdout_file = out
        store.set_wasi(wasi)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        inst = linker.instantiate(store, wasmtime.Module(engine, wasm))
        code: int | None = 0
        trap = None
        try:
            inst.exports(store)["_start"](store)
        except wasmtime.ExitTrap as e:
            code = e.code
        except wasmtime.Trap as t:
            code, trap = None, str(t).splitlines()[0]
        with open(out, "rb") as fh:
            stdout = fh.read()
    used = budget - store.get_fuel() if fuel else None
    return PlainRun(stdout, code, trap, used)


def call_export(wasm: bytes, name: str, args: tuple[Any, ...]) -> tuple[str, Any]:
    """("ok", result) or ("trap", first line of the message)."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
    try:
        return "ok", inst.exports(store)[name](store, *args)
    except wasmtime.Trap as t:
        return "trap", t.trap_code.name if t.trap_code else str(t).splitlines()[0]
