"""The WASI subset in C: real C programs print exactly what they print on wasmtime.

``programs/files.c`` (built for wasm32-wasi; rebuilt from source when ziglang
is installed and the source is newer) exercises args, environ, clocks,
random, stdio, path_open/read/write/seek/close, stat, readdir, mkdir, unlink
and rmdir in a preopened directory, and an attempt to escape it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from probes.backends.base import CompileOptions

PROGRAMS = Path(__file__).resolve().parent / "programs"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _files_wasm() -> Path:
    wasm = PROGRAMS / "files.wasm"
    src = PROGRAMS / "files.c"
    if not wasm.exists() or src.stat().st_mtime > wasm.stat().st_mtime:
        from probes.ir.loader import compile_c

        wasm.write_bytes(compile_c(src, ("-O2", "-Wl,--strip-debug")))
    return wasm


def _run(native_run: Any, backend: str, wasm: Path, data: Path, out: Path,
         argv: list[str]) -> Any:
    (data / "in.txt").write_text("hello from the host\n")
    return native_run(wasm, [], backend=backend, argv=argv, env={"GREETING": "hi there"},
                      dirs=[(str(data), "/data")], stdout=str(out),
                      options=CompileOptions(cache=False))


@pytest.mark.parametrize("argv", [[], ["one", "7"]])
def test_files_program_matches_wasmtime(native_run, tmp_path: Path, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    wasm = _files_wasm()
    outputs = {}
    codes = {}
    for backend in ("wasm", "native"):
        data = tmp_path / f"data-{backend}"
        data.mkdir()
        out = tmp_path / f"out-{backend}"
        r = _run(native_run, backend, wasm, data, out, argv)
        assert r.trap is None, r.trap
        outputs[backend] = out.read_text()
        codes[backend] = r.exit_code
        assert sorted(p.name for p in data.iterdir()) == ["in.txt"]
    assert outputs["native"] == outputs["wasm"]
    assert codes["native"] == codes["wasm"] == (7 if argv else 0)
    assert "escape: refused" in outputs["native"]
    assert "read 100 lines, sum 4950" in outputs["native"]


@pytest.mark.parametrize("program", sorted(EXAMPLES.glob("*.wasm")), ids=lambda p: p.stem)
def test_examples_print_what_wasmtime_prints(native_run, tmp_path: Path,  # type: ignore[no-untyped-def]
                                             program: Path) -> None:
    outputs = {}
    for backend in ("wasm", "native"):
        out = tmp_path / f"out-{backend}"
        r = native_run(program, [], backend=backend, stdout=str(out), argv=["5"],
                       options=CompileOptions(cache=False))
        outputs[backend] = (out.read_bytes(), r.exit_code, r.trap and r.trap.kind)
    assert outputs["native"] == outputs["wasm"]


def _importing(funcs: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> str:
    imports = "".join(
        f'(import "wasi_snapshot_preview1" "{name}" (func (param {" ".join(params)}) '
        f'(result {" ".join(results)})))'
        for name, (params, results) in funcs.items())
    return f'(module {imports} (memory (export "memory") 1) (func (export "_start")))'


def test_every_wasi_preview1_function_links_as_on_wasmtime(native: Any,
                                                           native_options: Any) -> None:
    """All of preview1 links (the functions outside the C subset fail with ENOSYS),
    with the signatures wasmtime's own WASI accepts; anything else is a link error."""
    import wasmtime

    from probes.backends.base import WasiOptions
    from probes.backends.native.runner import WASI_ENOSYS, WASI_SIGNATURES
    from probes.ir import LinkError, decode

    from ..conftest import assemble

    every = {**WASI_SIGNATURES, **WASI_ENOSYS}
    assert len(every) == 46
    wat = _importing(every)
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    linker.instantiate(store, wasmtime.Module(engine, assemble(wat)))  # the reference
    m = decode(assemble(wat))
    native.compile(m, None, native_options).instantiate(wasi=WasiOptions()).run_wasi()

    bad = {"nosuch": ((), ()), "fd_write": (("i32",), ("i32",))}
    for name, sig in bad.items():
        wat = _importing({name: sig})
        with pytest.raises(wasmtime.WasmtimeError):
            linker.instantiate(store, wasmtime.Module(engine, assemble(wat)))
        m = decode(assemble(wat))
        with pytest.raises(LinkError, match=name):
            native.compile(m, None, native_options).instantiate(wasi=WasiOptions())
