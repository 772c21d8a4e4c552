"""probes.testing's process helper: a start refused with EFAULT is retried."""

from __future__ import annotations

import errno
import subprocess
import sys
from typing import Any

import pytest

from probes import testing


def test_run_tool_retries_a_refused_start(monkeypatch: pytest.MonkeyPatch) -> None:
    real = subprocess.run
    calls: list[int] = []

    def flaky(cmd: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.EFAULT, "Bad address")
        return real(cmd, **kwargs)

    monkeypatch.setattr(testing.subprocess, "run", flaky)
    proc = testing.run_tool([sys.executable, "-c", "print(7)"], capture_output=True, text=True)
    assert proc.stdout == "7\n" and len(calls) == 2


def test_run_tool_does_not_hide_other_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError):
        testing.run_tool(["/nonexistent/tool"], capture_output=True)
