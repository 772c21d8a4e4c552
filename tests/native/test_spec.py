"""The WebAssembly spec suite's execution commands on the native backend.

Every ``.wast`` of the features we support runs: ``assert_return``,
``assert_trap`` and ``assert_exhaustion`` (plus actions, ``assert_unlinkable``
and ``assert_uninstantiable``) must all pass; commands whose module the IR
rejects as a proposal outside our feature set (function-references, GC,
exceptions, memory64, SIMD for the native backend) are counted as skipped.
Per-file counts are printed at the end of the run (tests/native/conftest.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..ir.spec_support import convert, missing_reason, spec_dir, wast_names
from .conftest import SPEC_RESULTS

PROPOSALS = re.compile(
    r"^(simd_|relaxed|i16x8_relaxed|i32x4_relaxed|i8x16_relaxed|array|struct|i31|binary-gc|"
    r"br_on_|call_ref|return_call|ref_(as_non_null|cast|eq|test)|tag$|throw|try_table|"
    r"type-(rec|subtyping|canon|equivalence)|.*64$|memory64)")
"""Files of proposals outside the native backend's feature set."""

NEEDS_SHARED_IMPORTS = {
    "elem": 6, "imports4": 2, "linking": 21, "linking0": 1, "linking1": 2, "linking3": 4,
    "load1": 5, "table_grow": 2,
}
"""Files with commands that import a memory or table *shared* with another instance
(registered modules), which the native runtime does not support yet: the number
of commands that fail for that reason."""

CRASHERS = {"imports", "imports0"}
"""Files whose harness needs shared memories/tables before anything runs."""

FILES = [n for n in wast_names() if not PROPOSALS.match(n)]


def _params() -> list[object]:
    if FILES:
        return FILES
    return [pytest.param(None, marks=pytest.mark.skip(reason=missing_reason()), id="no-suite")]


@pytest.mark.parametrize("wast", _params())
def test_spec_file(wast: str, native, request: pytest.FixtureRequest,  # type: ignore[no-untyped-def]
                   tmp_path_factory: pytest.TempPathFactory) -> None:
    from probes.backends.base import CompileOptions

    from .spec_exec import SpecRunner

    if wast in CRASHERS:
        pytest.xfail("needs memories/tables shared between instances")
    root = spec_dir()
    assert root is not None
    cache_provider = getattr(request.config, "cache", None)
    cache: Path = (cache_provider.mkdir("probes-spec") if cache_provider is not None
                   else tmp_path_factory.mktemp("probes-spec"))
    json_path = convert(root / f"{wast}.wast", cache)
    # Spec modules are tiny: O1 keeps the suite fast while still running LLVM's optimizer.
    options = CompileOptions(cache=False, opt_level=1)
    result = SpecRunner(json_path, native, options).run()
    SPEC_RESULTS[wast] = result
    expected_failures = NEEDS_SHARED_IMPORTS.get(wast, 0)
    if result.failures and len(result.failures) <= expected_failures:
        pytest.xfail(f"{len(result.failures)} command(s) need shared memories/tables")
    if result.failures:
        listed = "\n  ".join(result.failures[:25])
        pytest.fail(f"{wast}.wast: {len(result.failures)} failure(s):\n  {listed}",
                    pytrace=False)
    allowed = ("unsupported: function-references", "unsupported: gc", "unsupported: exceptions",
               "unsupported: memory64", "unsupported: table64", "unsupported: simd",
               "v128 results", "text module", "result type refnull")
    odd = [r for r in result.skip_reasons if not r.startswith(allowed)]
    assert not odd, f"{wast}.wast: commands skipped for unexpected reasons: {odd}"
