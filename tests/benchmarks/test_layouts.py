"""benchmarks/layouts.py: a shifted program runs exactly as the original, plus
the two instructions of the never-taken test at each call of its first function."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import probes
from probes.ir import decode, validate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from layouts import shifted  # noqa: E402


@pytest.mark.parametrize("name", ["fib", "sort", "interp"])
def test_a_shifted_program_runs_as_the_original(name: str, tmp_path: Path) -> None:
    original = (ROOT / "examples" / f"{name}.wasm").read_bytes()
    assert shifted(original, 0) == original
    base = probes.run(original, ["icount", "calls"], stdout=str(tmp_path / "base.out"))
    first = decode(original).functions[0].index
    entries = base.profile.entries.get(first, 0)
    assert entries >= 1  # the test below is run
    for k in (1, 3):
        data = shifted(original, k)
        m = decode(data)
        validate(m)
        body = m.functions[0].instrs
        assert [i.op.name for i in body[:2]] == ["global.get", "if"]
        assert sum(i.op.name == "global.set" for i in body) == 2 * k
        out = tmp_path / f"{k}.out"
        r = probes.run(data, ["icount"], stdout=str(out))
        assert r.exit_code == base.exit_code and r.trap is None
        assert out.read_bytes() == (tmp_path / "base.out").read_bytes()
        # The arm never runs: global.get and if, once per entry of the first function.
        assert r.profile.total_instructions == base.profile.total_instructions + 2 * entries
