"""Every report format, judged by its consumer: genhtml for lcov, Graphviz for DOT,
the speedscope file-format schema, the Chrome trace event structure; plus the
text and JSON reports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import probes
from probes.analyses import callgraph, cfg
from probes.analyses.chrometrace import chrome_trace
from probes.analyses.collapsed import collapsed_report
from probes.analyses.dotreport import callgraph_dot, cfg_dot
from probes.analyses.jsonreport import json_report
from probes.analyses.lcovreport import lcov_report
from probes.analyses.speedscope import SCHEMA, speedscope_report
from probes.analyses.textreport import cfg_text, text_report
from probes.profile import ProfileData

from .support import check_chrome, check_speedscope, parse_lcov

REPO = Path(__file__).resolve().parents[2]
COV = Path(__file__).resolve().parent / "data" / "cov-g.wasm"

GENHTML = shutil.which("genhtml")
DOT = shutil.which("dot")
needs_genhtml = pytest.mark.skipif(GENHTML is None, reason="genhtml not installed (Debian "
                                   "package lcov: apt-get install lcov)")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz dot not installed "
                               "(apt-get install graphviz)")


@pytest.fixture(scope="module")
def cov_run(tmp_path_factory: pytest.TempPathFactory) -> probes.api.RunResult:
    out = tmp_path_factory.mktemp("cov") / "stdout"
    return probes.api.run(COV, ["coverage", "branches", "icount", "calls", "loops"],
                          stdout=str(out))


def genhtml(info: Path, out: Path) -> subprocess.CompletedProcess[str]:
    assert GENHTML is not None
    return subprocess.run([GENHTML, "--branch-coverage", "-o", str(out), str(info)],
                          capture_output=True, text=True, check=False)


# -- lcov -------------------------------------------------------------------------------------
def test_lcov_lines_functions_branches(cov_run: probes.api.RunResult) -> None:
    res = lcov_report(cov_run.module, cov_run.profile)
    files = parse_lcov(res.text)
    assert list(files) == res.files and len(files) == 1  # libc sources left out
    (path, rec), = files.items()
    assert path.endswith("/cov.c") and Path(path).is_file()
    da = rec["DA"]
    assert da[58] == 10 and da[59] == 10  # the loop body runs N = 10 times
    assert da[57] == 11                   # the for header: its condition runs N + 1 times
    assert da[18] == 10 and da[27] == 4 and da[29] == 3 and da[30] == 3
    assert da[54] == 0 and da[62] == 0 and da[22] == 0  # never executed
    assert da[51] == 1 and da[74] == 1
    assert rec["FN"]["main"] == 51 and rec["FN"]["square"] == 17
    assert rec["FNDA"] == {"square": 10, "never_called": 0, "classify": 10, "put_int": 4,
                           "put_str": 2, "main": 1}
    # `if (argc > 1)` on line 53: the argument-less run takes one way only.
    on_53 = [t for ln, _, _, t in rec["BRDA"] if ln == 53]
    assert sorted(on_53) == ["0", "1"]


@needs_genhtml
def test_genhtml_accepts_the_tracefile(cov_run: probes.api.RunResult, tmp_path: Path) -> None:
    res = lcov_report(cov_run.module, cov_run.profile)
    info = tmp_path / "cov.info"
    info.write_text(res.text)
    proc = genhtml(info, tmp_path / "html")
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr.upper(), proc.stderr
    index = (tmp_path / "html" / "index.html").read_text()
    assert "cov.c" in index or "data" in index
    page = next((tmp_path / "html").rglob("cov.c.gcov.html")).read_text()
    assert "never_called" in page or "return x + 42" in page


@needs_genhtml
def test_lcov_on_a_disassembly_listing(tmp_path: Path) -> None:
    r = probes.api.run(REPO / "examples" / "loop.wat", ["icount", "branches"], invoke="run",
                       args=(10,))
    res = lcov_report(r.module, r.profile, listing_path=str(tmp_path / "loop.listing"))
    assert res.listing is not None
    Path(res.listing[0]).write_text(res.listing[1])
    files = parse_lcov(res.text)
    rec = files[str(tmp_path / "loop.listing")]
    assert rec["FNDA"] == {"run": 1, "nested": 0}
    assert 10 in rec["DA"].values()  # the loop body
    info = tmp_path / "loop.info"
    info.write_text(res.text)
    proc = genhtml(info, tmp_path / "html")
    assert proc.returncode == 0, proc.stderr


# -- speedscope and collapsed stacks ----------------------------------------------------------
CCT = {(0,): {"samples": 10, "total_ns": 10e6},
       (0, 1): {"samples": 7, "total_ns": 7e6, "self_samples": 3, "self_ns": 3e6},
       (0, 1, 2): {"samples": 4, "total_ns": 4e6, "self_samples": 4, "self_ns": 4e6},
       (0, 2): {"samples": 3, "total_ns": 3e6, "self_samples": 3, "self_ns": 3e6}}


def test_speedscope_matches_the_schema(wat_module) -> None:  # type: ignore[no-untyped-def]
    m = wat_module("(module (func $a) (func $b) (func $c))")
    doc = speedscope_report(ProfileData(program="x.wasm", cct=CCT), m)
    json.loads(json.dumps(doc))  # plain JSON
    check_speedscope(doc)
    assert doc["$schema"] == SCHEMA
    names = [f["name"] for f in doc["shared"]["frames"]]
    prof = doc["profiles"][0]
    stacks = {tuple(names[i] for i in s): w for s, w in zip(prof["samples"], prof["weights"], strict=True)}
    assert stacks == {("a", "b"): 3e6, ("a", "b", "c"): 4e6, ("a", "c"): 3e6}
    assert prof["unit"] == "nanoseconds" and prof["endValue"] == 10e6
    with pytest.raises(ValueError, match="profile monitor"):
        speedscope_report(ProfileData())


def test_speedscope_frames_carry_source_positions() -> None:
    m = probes.load(COV)
    main, square = m.resolve_func("main"), m.resolve_func("square")
    prof = ProfileData(cct={(main,): {"samples": 2, "self_samples": 1, "self_ns": 1.0},
                            (main, square): {"samples": 1, "self_samples": 1, "self_ns": 1.0}})
    from probes.analyses import source_map
    doc = speedscope_report(prof, m, source_map(m))
    check_speedscope(doc)
    frames = {f["name"]: f for f in doc["shared"]["frames"]}
    assert frames["square"]["line"] == 17 and frames["main"]["file"].endswith("cov.c")


def test_collapsed_stacks(wat_module) -> None:  # type: ignore[no-untyped-def]
    m = wat_module("(module (func $a) (func $b) (func $c))")
    text = collapsed_report(ProfileData(cct=CCT), m)
    lines = text.splitlines()
    assert all(re.fullmatch(r"[^;\s]+(;[^;\s]+)* \d+", ln) for ln in lines)
    assert sorted(lines) == ["a;b 3", "a;b;c 4", "a;c 3"]
    weird = wat_module('(module (func (export "x y;z")))')
    assert collapsed_report(ProfileData(cct={(0,): {"self_samples": 1}}), weird) == "x_y_z 1\n"


# -- Chrome trace --------------------------------------------------------------------------------
def test_chrome_trace_from_an_instruction_trace() -> None:
    r = probes.api.run(COV, ["trace:instructions=true,limit=100000"], stdout="/dev/null")
    doc = chrome_trace(r.profile, r.module)
    events = check_chrome(json.loads(json.dumps(doc)))
    begins = [e["name"] for e in events if e["ph"] == "B"]
    assert begins.count("square") == 10 and begins.count("classify") == 10
    assert begins.count("main") == 1 and "never_called" not in begins
    assert doc["otherData"]["nesting"] == "exact"
    # square is called from main: its slices lie inside main's.
    ts = {e["name"] + e["ph"]: e["ts"] for e in events if e["name"] in ("main", "square")}
    assert ts["mainB"] < ts["squareB"] <= ts["squareE"] < ts["mainE"]


def test_chrome_trace_from_a_call_trace() -> None:
    r = probes.api.run(REPO / "examples" / "fib.wasm", ["trace"], stdout="/dev/null")
    doc = chrome_trace(r.profile, r.module)
    events = check_chrome(doc)
    calls = [e for e in events if e["ph"] == "X"]
    assert len(calls) == len(r.profile.trace) and calls[0]["name"] == "_start"
    with pytest.raises(ValueError, match="trace monitor"):
        chrome_trace(ProfileData())


# -- DOT --------------------------------------------------------------------------------------
def render_dot(text: str, tmp_path: Path) -> str:
    assert DOT is not None
    src = tmp_path / "g.dot"
    src.write_text(text)
    proc = subprocess.run([DOT, "-Tsvg", str(src)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    return proc.stdout


@needs_dot
def test_cfg_dot_renders_with_counts(tmp_path: Path) -> None:
    r = probes.api.run(REPO / "examples" / "loop.wat", ["icount", "branches"],
                       invoke="nested", args=(6,))
    g = cfg(r.module, "nested", r.profile)
    text = cfg_dot(g, r.module)
    assert "count=36" in text and 'label="30"' in text  # inner header, its back edge
    svg = render_dot(text, tmp_path)
    assert "<svg" in svg and "count=36" in svg
    plain = render_dot(cfg_dot(cfg(r.module, "nested"), r.module), tmp_path)
    assert "count=" not in plain


@needs_dot
def test_callgraph_dot_renders(cov_run: probes.api.RunResult, tmp_path: Path) -> None:
    g = callgraph(cov_run.module, cov_run.profile, dynamic=True)
    svg = render_dot(callgraph_dot(g), tmp_path)
    assert "square" in svg and "entries=10" in svg
    rec = probes.api.run(REPO / "examples" / "fib.wasm", ["calls"], stdout="/dev/null")
    text = callgraph_dot(callgraph(rec.module, rec.profile, dynamic=True))
    assert text.count("subgraph cluster_scc") == 3  # the recursive groups
    render_dot(text, tmp_path)
    static = callgraph_dot(callgraph(cov_run.module), only_called=True)
    render_dot(static, tmp_path)


# -- text and JSON -------------------------------------------------------------------------
def test_text_report(cov_run: probes.api.RunResult) -> None:
    text = text_report(cov_run.profile, cov_run.module)
    assert "top functions (by instructions executed)" in text
    assert re.search(r"cov\.c:58\s+10\s+sum \+= square\(i\);", text)
    assert re.search(r"source lines\s+40/44", text)
    assert re.search(r"functions entered\s+\d+/\d+", text)
    bare = text_report(cov_run.profile)  # without the module: numbers, no lines
    assert "top lines" not in bare and "func" in bare


def test_cfg_text_with_counts(cov_run: probes.api.RunResult) -> None:
    text = cfg_text(cfg(cov_run.module, "classify", cov_run.profile), cov_run.module)
    assert text.startswith("func ") and "count 10" in text and " x" in text


def test_json_report(cov_run: probes.api.RunResult) -> None:
    doc = json_report(cov_run.profile, cov_run.module, func="main")
    doc = json.loads(json.dumps(doc))
    assert doc["format"] == "probes-report"
    assert doc["coverage"]["lines"] == {"hit": 40, "total": 44}
    (f,) = doc["files"]
    assert [58, 10] in f["lines"] and [54, 0] in f["lines"]
    assert {e["callee"] for e in doc["callgraph"]["edges"]} >= {
        cov_run.module.resolve_func("square")}
    fn = doc["function"]
    assert fn["name"] == "main" and fn["cfg"]["nodes"][0]["count"] == 1
    assert [lp["iterations"] for lp in fn["loops"]] == [11, 4]  # the two for loops
    assert fn["hot_paths"] and fn["dominators"][0] == [0, 0]
    assert cov_run.module.resolve_func("never_called") in \
        doc["dead_code"]["unexecuted_functions"]
