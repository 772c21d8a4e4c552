"""Round trips of the repository's own programs (examples and benchmark binaries).

For each ``examples/*.wasm``, ``examples/*.wat`` and ``benchmarks/programs/*.wasm``:
decode→encode is byte-identical; ``encode(verbatim=False)`` and re-encoding
every body from its decoded instructions give modules that ``wasm-tools``
validates (with our proposals only) and prints exactly like the original;
`validate` accepts the module.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

from probes.ir import Module, decode, encode, load_bytes, validate
from probes.testing import WASM_TOOLS_FEATURES, wasm_tools_print, wasm_tools_validate

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = sorted([*REPO.glob("examples/*.wasm"), *REPO.glob("examples/*.wat"),
                   *REPO.glob("benchmarks/programs/*.wasm")])
IDS = [str(p.relative_to(REPO)) for p in PROGRAMS]


@cache
def _bytes(path: Path) -> bytes:
    return load_bytes(path)


@cache
def _printed(path: Path) -> str:
    return wasm_tools_print(_bytes(path))


def _same_program(path: Path, out: bytes, how: str) -> None:
    """``out`` is the original, or a valid module that prints identically."""
    if out == _bytes(path):
        return
    with ThreadPoolExecutor(2) as pool:  # big programs take a second or two to print
        original = pool.submit(_printed, path)
        printed = pool.submit(wasm_tools_print, out)
        error = wasm_tools_validate(out, WASM_TOOLS_FEATURES)
        assert error is None, f"{how}: wasm-tools rejects the output: {error}"
        assert printed.result() == original.result(), f"{how}: prints differently"


def test_programs_found() -> None:
    assert any(p.suffix == ".wat" for p in PROGRAMS) and any(p.suffix == ".wasm"
                                                            for p in PROGRAMS)


@pytest.mark.parametrize("path", PROGRAMS, ids=IDS)
def test_byte_identical(path: Path) -> None:
    data = _bytes(path)
    m = decode(data)
    assert not any(f.decoded for f in m.functions), "bodies should decode lazily"
    assert encode(m) == data
    for f in m.functions:  # decoding bodies alone must not change the output
        f.instrs  # noqa: B018
    assert encode(m) == data


@pytest.mark.parametrize("path", PROGRAMS, ids=IDS)
def test_validates(path: Path) -> None:
    m = decode(_bytes(path))
    validate(m)
    assert all(f.decoded for f in m.functions)


@pytest.mark.parametrize("path", PROGRAMS, ids=IDS)
def test_within_our_features(path: Path, wasm_tools_exe: str) -> None:
    """The programs only use proposals probes supports (so identical bytes are valid output)."""
    assert wasm_tools_validate(_bytes(path), WASM_TOOLS_FEATURES) is None


@pytest.mark.parametrize("path", PROGRAMS, ids=IDS)
def test_reencoded_from_model(path: Path, wasm_tools_exe: str) -> None:
    m = decode(_bytes(path))
    _same_program(path, encode(m, verbatim=False), "encode(verbatim=False)")


@pytest.mark.parametrize("path", PROGRAMS, ids=IDS)
def test_reencoded_bodies(path: Path, wasm_tools_exe: str) -> None:
    m: Module = decode(_bytes(path))
    for f in m.functions:
        f.replace_body(f.instrs)
        assert f.raw is None
    _same_program(path, encode(m), "re-encoded bodies")
