"""Expected-output tests: every example under every monitor.

Each (example, monitor) pair's summary is compared with a checked-in file in
tests/expected/. After an intended change, regenerate them with

    BLESS=1 pytest tests/probes/test_expected.py

and review the diff like any other change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from probes.api import run
from probes.monitors import available

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EXPECTED = REPO / "tests" / "expected"
BLESS = os.environ.get("BLESS") == "1"

# WAT examples have no _start: what to invoke.
INVOCATIONS = {
    "loop.wat": ("nested", (6,)),
    "branches.wat": ("classify", (42,)),
    "trap.wat": ("deep", (3,)),
    "multi.wat": ("bulk", ()),
}
PROGRAMS = sorted(p.name for p in EXAMPLES.glob("*.c")) + sorted(INVOCATIONS)
# profile's times depend on the machine: tests/probes/test_monitors.py checks it.
MONITORS = sorted(set(available()) - {"timeout", "profile"}) + ["timeout:n=5000"]


def render(program: str, monitor: str, tmp_path: Path) -> str:
    path = EXAMPLES / program
    if path.suffix == ".c":
        path = path.with_suffix(".wasm")
        kw: dict = {"stdout": str(tmp_path / "stdout")}
    else:
        export, args = INVOCATIONS[program]
        kw = {"invoke": export, "args": args}
    result = run(path, [monitor], **kw)
    lines = [f"# {program} under {monitor}"]
    if result.trap is not None:
        lines.append(f"trap: {result.trap.kind} at {result.trap.location}")
    elif result.exit_code is not None:
        lines.append(f"exit code: {result.exit_code}")
    else:
        lines.append(f"result: {result.value}")
    for _, text in result.reports():
        lines.append(text)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("monitor", MONITORS)
@pytest.mark.parametrize("program", PROGRAMS)
def test_expected_output(program: str, monitor: str, tmp_path: Path) -> None:
    text = render(program, monitor, tmp_path)
    expected = EXPECTED / f"{Path(program).stem}.{monitor.split(':')[0]}.txt"
    if BLESS:
        expected.write_text(text)
        return
    if not expected.exists():
        pytest.fail(f"{expected.relative_to(REPO)} is missing: run BLESS=1 pytest {__file__}")
    assert text == expected.read_text()
