"""The wasm backend: probes woven into re-emitted Wasm, run on wasmtime."""

from .runner import WasmBackend, WasmExecutable, WasmInstance
from .weaver import Layout, Woven, weave

__all__ = ["WasmBackend", "WasmExecutable", "WasmInstance", "weave", "Woven", "Layout"]
