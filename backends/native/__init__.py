"""The native backend: Wasm lowered to LLVM IR (llvmlite), JIT-compiled, run on the C
runtime of `probes.cext`, with the same probes as the wasm backend."""

from .runner import NativeBackend, NativeExecutable, NativeInstance

__all__ = ["NativeBackend", "NativeExecutable", "NativeInstance"]
