"""Loading programs from disk: ``.wasm``, ``.wat``/``.wast`` and ``.c``."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from .decoder import decode
from .errors import DecodeError, ProbesError
from .module import Module

__all__ = ["load", "load_bytes", "compile_c", "wat_to_wasm", "CACHE_DIR", "InputNotFound",
           "ProgramNotFound"]

CACHE_DIR = Path(os.environ.get("PROBES_CACHE_DIR", Path.home() / ".cache" / "probes"))
"""Where compiled C programs (and later, compiled modules) are cached."""


def wat_to_wasm(text: str) -> bytes:
    """Assemble WebAssembly text with wasmtime's assembler."""
    import wasmtime

    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as e:
        text = str(e).strip()
        first = text.splitlines()[0] if text else "invalid text"
        where = re.search(r"-->\s*\S*?:(\d+):(\d+)", text)  # wasmtime: "--> <anon>:4:5"
        if where:
            first += f" (at line {where[1]}, column {where[2]})"
        raise DecodeError(f"cannot assemble WAT: {first}", None) from None


def compile_c(path: Path, flags: tuple[str, ...] = ("-O2",)) -> bytes:
    """Compile a C file to wasm32-wasi with the clang inside the ``ziglang`` wheel.

    Results are cached by source content and flags.
    """
    try:
        import ziglang  # noqa: F401
    except ImportError:
        raise ProbesError(
            f"{path}: compiling C needs the 'ziglang' package (pip install ziglang)") from None
    src = path.read_bytes()
    key = hashlib.sha256(src + b"\0" + " ".join(flags).encode()).hexdigest()[:24]
    cached = CACHE_DIR / "c" / f"{key}.wasm"
    if cached.exists():
        return cached.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wasm"
        cmd = [sys.executable, "-m", "ziglang", "cc", "--target=wasm32-wasi", *flags,
               str(path), "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            # The first diagnostic names the file, line and column; clang's
            # summary lines ("1 error generated.") say nothing more.
            msg = [line for line in proc.stderr.strip().splitlines() if "error" in line]
            raise DecodeError(f"C compilation failed: "
                              f"{msg[0] if msg else proc.stderr.strip() or 'error'}", None)
        data = out.read_bytes()
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp_path.write_bytes(data)
    os.replace(tmp_path, cached)
    return data


class InputNotFound(ProbesError):
    """An input file (a program, a saved profile) does not exist or cannot be read."""


class ProgramNotFound(InputNotFound):
    """The program file does not exist or cannot be read."""


def load_bytes(path: str | os.PathLike[str]) -> bytes:
    """The binary module for a program file, by extension."""
    p = Path(path)
    if not p.exists():
        raise ProgramNotFound(f"{p}: no such file")
    if p.is_dir():
        raise ProgramNotFound(f"{p}: is a directory")
    if not os.access(p, os.R_OK):
        raise ProgramNotFound(f"{p}: permission denied")
    suffix = p.suffix.lower()
    if suffix in (".wat", ".wast"):
        return wat_to_wasm(p.read_text(encoding="utf-8", errors="replace"))
    if suffix == ".c":
        return compile_c(p)
    data = p.read_bytes()
    if suffix != ".wasm" and not data.startswith(b"\0asm"):
        # Unknown extension: accept text modules too.
        head = data.lstrip()[:1]
        if head == b"(":
            return wat_to_wasm(data.decode("utf-8", errors="replace"))
    return data


def load(path: str | os.PathLike[str], *, lazy: bool = True) -> Module:
    """Load and decode a ``.wasm``, ``.wat`` or ``.c`` program."""
    return decode(load_bytes(path), lazy=lazy)


