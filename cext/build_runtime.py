"""cffi build script of the C runtime (``probes.cext._runtime``).

setup.py lists it in ``cffi_modules`` so ``pip install`` compiles the runtime;
`probes.cext.load` also calls `build_into` to compile it on first use in a
source checkout. The cdef is ``runtime_api.h`` itself.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SOURCES = ("runtime.c", "wasi.c")
MODULE = "probes.cext._runtime"
CFLAGS = ["-O2", "-std=gnu11", "-fno-strict-aliasing"]


def cdef_text() -> str:
    """runtime_api.h as cffi reads it: the Python callback becomes extern "Python+C"."""
    text = (HERE / "runtime_api.h").read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"^int32_t rt_py_callback\(", 'extern "Python+C" int32_t rt_py_callback(',
                  text, flags=re.M)


def make_ffi(module: str = MODULE, relative: bool = True) -> FFI:
    ffi = FFI()
    ffi.cdef(cdef_text())
    base = Path("cext") if relative else HERE
    ffi.set_source(module, '#include <stdint.h>\n#include "runtime_api.h"\n',
                   sources=[str(base / s) for s in SOURCES], include_dirs=[str(base)],
                   extra_compile_args=CFLAGS)
    return ffi


def source_hash() -> str:
    """Digest of everything the compiled module is built from."""
    import hashlib

    h = hashlib.sha256()
    for name in ("runtime_api.h", "build_runtime.py", *SOURCES):
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


def build_into(directory: str, module: str) -> str:
    """Compile the runtime as ``module`` into ``directory``; returns the library path."""
    ffi = make_ffi(module, relative=False)
    return ffi.compile(tmpdir=directory, verbose=False)


ffibuilder = make_ffi()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
