"""`probes coverage`, `probes report` and `probes cfg --profile`, run as users run
them: the installed package (`pip install .`), from an empty directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .support import check_chrome, check_speedscope, parse_lcov

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
COV = DATA / "cov-g.wasm"
EXAMPLES = REPO / "examples"
GENHTML = shutil.which("genhtml")
DOT = shutil.which("dot")

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The installed probes is there and carries this source's analyses and CLI."""
    cwd = tmp_path_factory.mktemp("where")
    code = ("import importlib, os\n"
            "for n in ('probes', 'probes.analyses'):\n"
            "    print(n, os.path.dirname(importlib.import_module(n).__file__))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.fail("these tests need the package installed: run `pip install .`")
    where = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    stale = [f"{folder}/{src.name}"
             for folder, pkg in (("analyses", "probes.analyses"), ("probes", "probes"))
             for src in sorted((REPO / folder).glob("*.py"))
             if not (Path(where[pkg]) / src.name).is_file()
             or (Path(where[pkg]) / src.name).read_bytes() != src.read_bytes()]
    if stale:
        pytest.fail(f"the installed probes differs from the source ({', '.join(stale[:4])}): "
                    "reinstall with `pip install .`")


@pytest.fixture
def run(installed: None, tmp_path: Path) -> Run:
    def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "probes", *map(str, args)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)
    return _run


def one_error(proc: subprocess.CompletedProcess[str], needle: str, code: int = 1) -> None:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("probes: error: ") and needle in lines[0], \
        proc.stderr


def test_coverage_end_to_end(run: Run, tmp_path: Path) -> None:
    """C built with -g -> probes coverage -> lcov with the known counts -> genhtml."""
    args = [COV, "--save", "prof.json"]
    if GENHTML:
        args += ["--html", "html"]
    proc = run("coverage", *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "sum=285 counts=4,3,3\n"  # the program's own output, untouched
    assert "cov.c" in proc.stderr and "90.9%" in proc.stderr
    files = parse_lcov((tmp_path / "coverage.info").read_text())
    (path, rec), = files.items()
    assert Path(path).resolve() == (DATA / "cov.c").resolve()
    da = rec["DA"]
    assert (da[58], da[59], da[57]) == (10, 10, 11)  # loop body N = 10 times; header N + 1
    assert (da[54], da[62], da[22]) == (0, 0, 0)     # never executed
    assert rec["FNDA"]["never_called"] == 0 and rec["FNDA"]["square"] == 10
    if GENHTML is None:
        pytest.skip("genhtml not installed (apt-get install lcov): HTML not checked")
    assert (tmp_path / "html" / "index.html").is_file()
    page = next((tmp_path / "html").rglob("cov.c.gcov.html")).read_text()
    assert "sum += square(i);" in page


def test_coverage_passes_arguments_and_exit_codes(run: Run, tmp_path: Path) -> None:
    # (Options go before PROG: probes.cli's parser takes none between PROG and --.)
    proc = run("coverage", "-o", "three.info", COV, "--", "3")
    assert proc.returncode == 0 and proc.stdout == "sum=5 counts=1,1,1\n", proc.stderr
    (rec,) = parse_lcov((tmp_path / "three.info").read_text()).values()
    assert rec["DA"][58] == 3 and rec["DA"][54] == 1  # atoi(argv[1]) ran this time
    # A program exiting non-zero: its code; the tracefile is still written.
    proc = run("coverage", "-o", "i.info", EXAMPLES / "interp.wasm", "--", "7")
    assert proc.returncode == 7, proc.stderr
    assert (tmp_path / "i.info").read_text().startswith("TN:")
    assert (tmp_path / "interp.listing").is_file()  # no DWARF: a disassembly listing
    one_error(run("coverage", "missing.wasm"), "missing.wasm", code=66)


def test_report_formats_from_a_saved_profile(run: Run, tmp_path: Path) -> None:
    proc = run("trace", COV, "-m", "icount", "-m", "branches", "-m", "calls", "-m", "coverage",
               "-o", "p.json", "--report", "summary.txt")
    assert proc.returncode == 0, proc.stderr
    text = run("report", "p.json")
    assert text.returncode == 0 and "top lines" in text.stdout and "cov.c:58" in text.stdout
    js = run("report", "p.json", "-F", "json", "--func", "main")
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    assert doc["coverage"]["lines"] == {"hit": 40, "total": 44}
    assert doc["function"]["name"] == "main"
    lcov = run("report", "p.json", "-F", "lcov", "-o", "out/r.info")  # makes out/
    assert lcov.returncode == 0, lcov.stderr
    (rec,) = parse_lcov((tmp_path / "out/r.info").read_text()).values()
    assert rec["DA"][58] == 10
    dot = run("report", "p.json", "-F", "dot", "-f", "classify", "-o", "c.dot")
    assert dot.returncode == 0 and "count=10" in (tmp_path / "c.dot").read_text()
    calls = run("report", "p.json", "-F", "dot", "-o", "calls.dot")
    assert calls.returncode == 0 and "square" in (tmp_path / "calls.dot").read_text()
    if DOT:
        for f in ("c.dot", "calls.dot"):
            r = subprocess.run([DOT, "-Tsvg", f], cwd=tmp_path, capture_output=True, text=True,
                               check=False)
            assert r.returncode == 0, r.stderr
    # speedscope / collapsed need a calling-context tree, chrome a trace: clear errors.
    one_error(run("report", "p.json", "-F", "speedscope"), "profile monitor")
    one_error(run("report", "p.json", "-F", "chrome"), "trace monitor")


def test_report_of_a_trace_and_a_cct(run: Run, tmp_path: Path) -> None:
    proc = run("trace", COV, "-m", "trace:instructions=true", "-o", "t.json",
               "--report", "s.txt")
    assert proc.returncode == 0, proc.stderr
    out = run("report", "t.json", "-F", "chrome", "-o", "trace.json")
    assert out.returncode == 0, out.stderr
    check_chrome(json.loads((tmp_path / "trace.json").read_text()))
    # A calling-context tree, written by hand (sampling times vary by machine).
    prof = json.loads((tmp_path / "t.json").read_text())
    prof["cct"] = [[[6], {"samples": 3, "total_ns": 3e6, "self_samples": 1, "self_ns": 1e6}],
                   [[6, 24], {"samples": 2, "total_ns": 2e6, "self_samples": 2,
                              "self_ns": 2e6}]]
    (tmp_path / "c.json").write_text(json.dumps(prof))
    ss = run("report", "c.json", "-F", "speedscope")
    assert ss.returncode == 0, ss.stderr
    check_speedscope(json.loads(ss.stdout))
    col = run("report", "c.json", "-F", "collapsed")
    assert col.stdout == "_start 1\n_start;main 2\n"


def test_report_refuses_another_program(run: Run, tmp_path: Path) -> None:
    assert run("trace", COV, "-m", "icount", "-o", "p.json", "--report", "s").returncode == 0
    one_error(run("report", "p.json", "-F", "lcov", "--program", EXAMPLES / "fib.wasm"),
              "is not the program this profile was collected from")
    one_error(run("cfg", EXAMPLES / "fib.wasm", "--profile", "p.json"),
              "is not the program")
    # The recorded path is gone: formats needing the module say how to fix it.
    prof = json.loads((tmp_path / "p.json").read_text())
    prof["program"] = "/no/such/prog.wasm"
    (tmp_path / "q.json").write_text(json.dumps(prof))
    one_error(run("report", "q.json", "-F", "lcov"), "--program")
    assert run("report", "q.json", "-F", "lcov", "--program", COV).returncode == 0
    assert run("report", "q.json").returncode == 0  # text does without
    one_error(run("report", "nope.json"), "no such profile", code=66)  # as a missing program
    one_error(run("cfg", EXAMPLES / "fib.wasm", "--profile", "nope.json"), "no such profile",
              code=66)
    (tmp_path / "bad.json").write_text("{}")
    one_error(run("report", "bad.json"), "not a probes profile")


def test_cfg_with_profile(run: Run, tmp_path: Path) -> None:
    assert run("trace", COV, "-m", "icount", "-m", "branches", "-o", "p.json",
               "--report", "s").returncode == 0
    text = run("cfg", COV, "--func", "square", "--profile", "p.json")
    assert text.returncode == 0, text.stderr
    assert "count 10" in text.stdout
    dot = run("cfg", COV, "--func", "classify", "--profile", "p.json", "--format", "dot")
    assert dot.returncode == 0 and "count=10" in dot.stdout
    assert "count" not in run("cfg", COV, "--func", "square").stdout.split("\n", 1)[1]
    if DOT:
        r = subprocess.run([DOT, "-Tsvg"], input=dot.stdout, capture_output=True, text=True,
                           check=False)
        assert r.returncode == 0, r.stderr
