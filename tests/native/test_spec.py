"""The WebAssembly spec suite's execution commands on the native backend.

Every ``.wast`` of the features we support runs: ``assert_return``,
``assert_trap`` and ``assert_exhaustion`` (plus actions, ``assert_unlinkable``
and ``assert_uninstantiable``) must all pass; commands whose module the IR
rejects as a proposal outside our feature set (function-references, GC,
exceptions, memory64, SIMD for the native backend) are counted as skipped, and so
are modules importing from a registered module that was skipped. Registered
modules share their memories, tables and mutable globals with the importers.
Per-file counts are printed at the end of the run (tests/conftest.py),
also when the tests run in parallel workers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..conftest import SPEC_PROPERTY
from ..ir.spec_support import convert, missing_reason, spec_dir, wast_names

PROPOSALS = re.compile(
    r"^(simd_|relaxed|i16x8_relaxed|i32x4_relaxed|i8x16_relaxed|array|struct|i31|binary-gc|"
    r"br_on_|call_ref|return_call|ref_(as_non_null|cast|eq|test)|tag$|throw|try_table|"
    r"type-(rec|subtyping|canon|equivalence)|.*64$|memory64)")
"""Files of proposals outside the native backend's feature set."""

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

    root = spec_dir()
    assert root is not None
    cache_provider = getattr(request.config, "cache", None)
    cache: Path = (cache_provider.mkdir("probes-spec") if cache_provider is not None
                   else tmp_path_factory.mktemp("probes-spec"))
    json_path = convert(root / f"{wast}.wast", cache)
    # Spec modules are tiny: O1 keeps the suite fast while still running LLVM's optimizer.
    options = CompileOptions(cache=False, opt_level=1)
    result = SpecRunner(json_path, native, options).run()
    # The counts travel with the test's report, so the summary also has them when
    # the tests ran in worker processes (pytest-xdist).
    request.node.user_properties.append((SPEC_PROPERTY, {
        "wast": wast, "passed": result.passed, "total": result.total,
        "skipped": result.skipped, "failures": len(result.failures)}))
    if result.failures:
        listed = "\n  ".join(result.failures[:25])
        pytest.fail(f"{wast}.wast: {len(result.failures)} failure(s):\n  {listed}",
                    pytrace=False)
    allowed = ("unsupported: function-references", "unsupported: gc", "unsupported: exceptions",
               "unsupported: memory64", "unsupported: table64", "unsupported: simd",
               "v128 results", "text module", "result type refnull")
    odd = [r for r in result.skip_reasons if not r.startswith(allowed)]
    assert not odd, f"{wast}.wast: commands skipped for unexpected reasons: {odd}"
