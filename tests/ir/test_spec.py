"""The official WebAssembly spec suite against the decoder, encoder and validator.

Per ``.wast`` file:

- every valid binary module either decodes, validates and re-encodes to the
  identical bytes, or is rejected with `UnsupportedFeature` while wasm-tools
  confirms it uses a proposal outside ours (`WASM_TOOLS_FEATURES`);
- bodies re-encoded from their decoded instructions, and modules re-encoded
  with ``verbatim=False``, are valid and print like the original (only the
  ones whose bytes differ need wasm-tools);
- every ``assert_malformed`` / ``assert_invalid`` binary module is rejected
  with `DecodeError`, `ValidationError`, or a justified `UnsupportedFeature`,
  never another exception, within `SLOW_SECONDS`.

Counts go to the terminal summary (tests/ir/conftest.py).
"""

from __future__ import annotations

import time

import pytest

from probes.ir import (
    DecodeError,
    ProbesError,
    UnsupportedFeature,
    ValidationError,
    decode,
    encode,
    validate,
)
from probes.ir.loader import wat_to_wasm
from probes.ir.module import Module
from probes.testing import WasmToolsError, wasm_tools_print, wasm_tools_validate

from .spec_support import (
    SLOW_SECONDS,
    SpecModule,
    SpecSuite,
    missing_reason,
    report,
    time_limit,
    unsupported_evidence,
    wast_names,
)

WASTS = wast_names()
MAX_LISTED = 25


def _params() -> list[object]:
    if WASTS:
        return WASTS
    return [pytest.param(None, marks=pytest.mark.skip(reason=missing_reason()), id="no-suite")]


def _fail(name: str, failures: list[str], what: str) -> None:
    if failures:
        listed = "\n  ".join(failures[:MAX_LISTED])
        more = f"\n  ... and {len(failures) - MAX_LISTED} more" if len(failures) > MAX_LISTED \
            else ""
        pytest.fail(f"{name}.wast: {len(failures)} {what}:\n  {listed}{more}", pytrace=False)


def _decode_all(data: bytes) -> Module:
    """decode + validate + decode every body (in case validation did not)."""
    m = decode(data)
    validate(m)
    for f in m.functions:
        f.instrs  # noqa: B018
    return m


def _first_difference(a: bytes, b: bytes) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


@pytest.mark.parametrize("wast", _params())
def test_valid_modules(spec_suite: SpecSuite, wast: str) -> None:
    """Valid modules: identical round trip and validation, or a justified UnsupportedFeature."""
    spec = spec_suite.get(wast)
    rep = report(wast)
    failures: list[str] = []
    for mod in spec.valid:
        data = mod.data
        start = time.perf_counter()
        try:
            with time_limit():
                m = _decode_all(data)
        except UnsupportedFeature as e:
            evidence = unsupported_evidence(data, e.feature, wast, valid=True)
            if evidence is None:
                failures.append(f"{mod}: rejected as {e}, but wasm-tools validates it with "
                                f"only our proposals")
            else:
                rep.unsupported += 1
            continue
        except ProbesError as e:
            failures.append(f"{mod}: valid module rejected: {type(e).__name__}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - Hung, or any other exception: the bug
            failures.append(f"{mod}: crashed: {type(e).__name__}: {e}")
            continue
        elapsed = time.perf_counter() - start
        out = encode(m)
        if out != data:
            at = _first_difference(out, data)
            failures.append(f"{mod}: decode->encode differs at byte {at} "
                            f"(sizes {len(data)} -> {len(out)})")
        elif elapsed > SLOW_SECONDS:
            failures.append(f"{mod}: took {elapsed:.1f} s")
        else:
            rep.valid_ok += 1
    rep.failures += failures
    _fail(wast, failures, "valid modules failed")


def _check_reencoded(mod: SpecModule, original: bytes, out: bytes, how: str,
                     printed: dict[str, str]) -> str | None:
    """None if ``out`` is the original or wasm-tools finds it valid and printing the same."""
    if out == original:
        return None
    error = wasm_tools_validate(out, "all")
    if error is not None:
        return f"{mod}: {how} is invalid: {error.splitlines()[0]}"
    try:
        if "original" not in printed:
            printed["original"] = wasm_tools_print(original)
        if wasm_tools_print(out) != printed["original"]:
            return f"{mod}: {how} prints differently from the original"
    except WasmToolsError as e:
        return f"{mod}: {how}: wasm-tools print failed: {e}"
    return None


@pytest.mark.parametrize("wast", _params())
def test_reencoded_bodies(spec_suite: SpecSuite, wast: str) -> None:
    """Bodies re-encoded from decoded instructions, and ``verbatim=False``, mean the same."""
    spec = spec_suite.get(wast)
    rep = report(wast)
    failures: list[str] = []
    for mod in spec.valid:
        data = mod.data
        try:
            m = _decode_all(data)
            plain = encode(decode(data), verbatim=False)
        except ProbesError:
            continue  # test_valid_modules judges these
        except Exception as e:  # noqa: BLE001
            failures.append(f"{mod}: crashed: {type(e).__name__}: {e}")
            continue
        for f in m.functions:
            f.replace_body(f.instrs)
        printed: dict[str, str] = {}
        for how, out in (("re-encoding every body", encode(m)),
                         ("encode(verbatim=False)", plain)):
            problem = _check_reencoded(mod, data, out, how, printed)
            if problem:
                failures.append(problem)
        rep.reencoded += 1
    rep.failures += failures
    _fail(wast, failures, "re-encodings failed")


@pytest.mark.parametrize("wast", _params())
def test_malformed_and_invalid_rejected(spec_suite: SpecSuite, wast: str) -> None:
    """assert_malformed / assert_invalid binaries raise DecodeError or ValidationError
    (or a justified UnsupportedFeature), nothing else, and quickly."""
    spec = spec_suite.get(wast)
    rep = report(wast)
    rep.rejected_total += len(spec.rejected)
    failures: list[str] = []
    for mod in spec.rejected:
        data = mod.data
        start = time.perf_counter()
        try:
            with time_limit():
                _decode_all(data)
        except UnsupportedFeature as e:
            evidence = unsupported_evidence(data, e.feature, wast, valid=False)
            if evidence is None:
                failures.append(f"{mod}: rejected as {e}, but nothing shows it uses "
                                f"{e.feature}")
                continue
        except (DecodeError, ValidationError):
            pass
        except ProbesError as e:
            failures.append(f"{mod}: wrong error class {type(e).__name__}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - Hung, or any other exception: the bug
            failures.append(f"{mod}: crashed: {type(e).__name__}: {e}")
            continue
        else:
            failures.append(f"{mod}: accepted")
            continue
        elapsed = time.perf_counter() - start
        if elapsed > SLOW_SECONDS:
            failures.append(f"{mod}: took {elapsed:.1f} s to reject")
        else:
            rep.rejected += 1
    rep.failures += failures
    _fail(wast, failures, "malformed/invalid modules not rejected properly")


# --- the judges themselves ------------------------------------------------------------------

def test_evidence_is_not_vacuous(wasm_tools_exe: str) -> None:
    """`unsupported_evidence` must refuse to excuse a module that uses only our proposals."""
    mvp = wat_to_wasm("(module (func (result i32) i32.const 1))")
    assert unsupported_evidence(mvp, "gc", "i32", valid=True) is None
    gc = wat_to_wasm("(module (type (struct (field i32))))")
    assert unsupported_evidence(gc, "gc", "struct", valid=True)
    # Invalid modules: a plain type error is no excuse; a 64-bit memory is.
    mistyped = wat_to_wasm("(module (func (result i32) i64.const 1))")
    assert unsupported_evidence(mistyped, "exceptions", "i32", valid=False) is None
    mem64 = wat_to_wasm("(module (memory i64 2 1))")
    assert unsupported_evidence(mem64, "memory64", "memory", valid=False)


def test_spec_files_parse(spec_suite: SpecSuite) -> None:
    """The converted JSON gives modules, rejections and actions tied to their module."""
    spec = spec_suite.get("i32") if "i32" in WASTS else spec_suite.get(WASTS[0])
    assert spec.valid and all(mod.path.exists() for mod in spec.valid)
    assert spec.actions
    returns = [a for a in spec.actions if a.command == "assert_return"]
    assert returns and all(a.module is not None and a.module.exists() for a in returns)
    assert all(a.action.get("type") in ("invoke", "get") for a in spec.actions)
