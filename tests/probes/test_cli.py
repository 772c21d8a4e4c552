"""The command line, run as users run it: ``python -m probes`` in a fresh directory.

These tests run the *installed* package (``pip install .``) from a temporary
working directory, so the source checkout is not on the path. A fixture
fails early with a clear message when the installed copy is missing or
differs from the source.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import probes
from probes import cli
from probes.ir import load
from probes.ir.cfg import build_cfg

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
# Source folder -> installed subpackage (see pyproject.toml's package-dir).
_PACKAGES = {"probes": "probes", "ir": "probes.ir"}

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def cli_cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty working directory, away from the source checkout."""
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="session")
def installed(cli_cwd: Path) -> None:
    """The installed package exists and matches the source being tested."""
    code = ("import importlib, os, sys\n"
            f"for name in {sorted(_PACKAGES.values())!r}:\n"
            "    print(name, os.path.dirname(importlib.import_module(name).__file__))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=cli_cwd, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.fail("the CLI tests need the package installed: run `pip install .` "
                    f"({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''})")
    where = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    stale = []
    for folder, package in _PACKAGES.items():
        for src in sorted((REPO / folder).glob("*.py")):
            inst = Path(where[package]) / src.name
            if not inst.exists() or inst.read_bytes() != src.read_bytes():
                stale.append(f"{folder}/{src.name}")
    if stale:
        pytest.fail(f"the installed probes differs from the source ({', '.join(stale[:5])}): "
                    "reinstall with `pip install .`")


@pytest.fixture
def run(installed: None, tmp_path: Path) -> Run:
    """``run(*args, input=None) -> CompletedProcess`` of ``python -m probes`` in tmp_path."""
    def _run(*args: str | Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "probes", *map(str, args)],
                              cwd=tmp_path, capture_output=True, text=True, input=input,
                              timeout=120, check=False)
    return _run


NO_INPUT = cli.EXIT_NO_INPUT
BAD_MODULE = cli.EXIT_BAD_MODULE


def assert_user_error(proc: subprocess.CompletedProcess[str], *needles: str,
                      code: int = 1) -> None:
    """Exit ``code``, nothing on stdout, one ``probes: error:`` line on stderr."""
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("probes: error: ")
    for needle in needles:
        assert needle in lines[0]


def assert_usage_error(proc: subprocess.CompletedProcess[str], needle: str = "") -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "usage: probes" in proc.stderr
    assert needle in proc.stderr


# -- help, version, usage --------------------------------------------------------------
def test_version(run: Run) -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"probes {probes.__version__}"


def test_help_lists_commands(run: Run) -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for name in ("inspect", "cfg"):
        assert name in proc.stdout
    for name in ("inspect", "cfg"):
        sub = run(name, "--help")
        assert sub.returncode == 0 and f"usage: probes {name}" in sub.stdout
    assert "--json" in run("inspect", "--help").stdout
    assert "--format" in run("cfg", "--help").stdout


@pytest.mark.parametrize("args, needle", [
    ((), "required"),
    (("frobnicate",), "invalid choice"),
    (("inspect",), "PROG"),
    (("cfg", "x.wasm", "--format", "svg"), "invalid choice"),
    (("inspect", "x.wasm", "--bogus"), "unrecognized arguments"),
])
def test_usage_errors_exit_2(run: Run, args: tuple[str, ...], needle: str) -> None:
    assert_usage_error(run(*args), needle)


# -- inspect -------------------------------------------------------------------------------
def test_inspect_text(run: Run) -> None:
    path = EXAMPLES / "fib.wasm"
    proc = run("inspect", path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    m = load(path)
    assert f"{path.stat().st_size} bytes" in out.splitlines()[0]
    assert "wasi_snapshot_preview1.fd_write" in out
    assert "_start -> func" in out
    assert f"{m.num_funcs} ({m.num_imported_funcs} imported, {len(m.functions)} defined)" in out
    assert "features: mvp" in out
    assert f"code size: {m.code_size} bytes" in out
    assert "start: none" in out
    assert proc.stderr == ""


def test_inspect_json(run: Run) -> None:
    path = EXAMPLES / "fib.wasm"
    proc = run("inspect", path, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    m = load(path)
    data = path.read_bytes()
    assert info["size"] == len(data)
    assert info["counts"]["functions"] == m.num_funcs
    assert info["counts"]["defined_functions"] == len(m.functions)
    assert info["counts"]["imported_functions"] == m.num_imported_funcs
    assert info["counts"]["types"] == len(m.types)
    assert info["counts"]["datas"] == len(m.datas)
    assert [(i["module"], i["name"], i["kind"]) for i in info["imports"]] == [
        (i.module, i.name, i.kind) for i in m.imports]
    assert [(e["name"], e["kind"], e["index"]) for e in info["exports"]] == [
        (e.name, e.kind, e.index) for e in m.exports]
    assert "mvp" in info["features"] and "sign-extension" in info["features"]
    assert info["code_size"] == m.code_size
    # Sections tile the file after the 8-byte header.
    pos = 8
    for s in info["sections"]:
        assert s["offset"] == pos
        assert data[s["offset"]] == s["id"]
        pos = s["payload_offset"] + s["size"]
    assert pos == len(data)
    code = next(s for s in info["sections"] if s["name"] == "code")
    assert code["payload_offset"] == m.code_offset and code["size"] == m.code_size


def test_inspect_wat_with_start_and_custom_section(run: Run) -> None:
    proc = run("inspect", EXAMPLES / "multi.wat", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["start"] == {"index": 3, "name": "init"}
    assert {"multi-value", "reference-types", "bulk-memory"} <= set(info["features"])
    customs = [s["custom_name"] for s in info["sections"] if s["id"] == 0]
    assert customs == ["name"]
    text = run("inspect", EXAMPLES / "multi.wat").stdout
    assert "start: func 3 (init)" in text
    assert '"name"' in text


def test_inspect_relative_path(run: Run, tmp_path: Path) -> None:
    (tmp_path / "loop.wat").write_text((EXAMPLES / "loop.wat").read_text())
    proc = run("inspect", "loop.wat")
    assert proc.returncode == 0, proc.stderr
    assert "run -> func 0" in proc.stdout
    assert "mutable-globals" in proc.stdout


# -- user errors ---------------------------------------------------------------------------
def test_missing_file(run: Run) -> None:
    assert_user_error(run("inspect", "nope.wasm"), "nope.wasm", "no such file", code=NO_INPUT)
    assert_user_error(run("cfg", "nope.wasm", "--func", "0"), "no such file", code=NO_INPUT)


def test_directory(run: Run, tmp_path: Path) -> None:
    (tmp_path / "d.wasm").mkdir()
    assert_user_error(run("inspect", "d.wasm"), "directory", code=NO_INPUT)


@pytest.mark.parametrize("content", [
    b"not wasm at all",
    b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x0f",   # section longer than the file
    b"\0asm\x02\0\0\0",                          # unknown version
    b"",
])
def test_malformed_module(run: Run, tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad.wasm").write_bytes(content)
    assert_user_error(run("inspect", "bad.wasm"), "bad.wasm", code=BAD_MODULE)
    assert_user_error(run("cfg", "bad.wasm"), "bad.wasm", code=BAD_MODULE)


def test_truncated_module(run: Run, tmp_path: Path) -> None:
    data = (EXAMPLES / "fib.wasm").read_bytes()
    (tmp_path / "cut.wasm").write_bytes(data[: len(data) // 2])
    assert_user_error(run("inspect", "cut.wasm"), "offset 0x", code=BAD_MODULE)


def test_malformed_function_body(run: Run, tmp_path: Path,
                                 wat_to_binary: Callable[[str], bytes]) -> None:
    """Bodies decode lazily; a bad one must still be a one-line error."""
    data = bytearray(wat_to_binary("(module (func nop nop nop))"))
    at = data.rindex(b"\x01\x01\x01\x0b")
    data[at + 1] = 0xFF  # an illegal opcode
    (tmp_path / "body.wasm").write_bytes(bytes(data))
    assert_user_error(run("inspect", "body.wasm"), "illegal opcode", code=BAD_MODULE)
    assert_user_error(run("cfg", "body.wasm", "--func", "0"), "illegal opcode", code=BAD_MODULE)


@pytest.mark.parametrize("command", ["run", "trace", "instrument"])
def test_invalid_module_is_refused_before_it_runs(run: Run, tmp_path: Path, command: str,
                                                  wat_to_binary: Callable[[str], bytes]) -> None:
    """A load from a memory the program does not have: the woven module would
    give it the probe state's memory, so the backend must validate first."""
    data = wat_to_binary('(module (func (export "_start") (drop (i32.load (i32.const 0)))))')
    (tmp_path / "nomem.wasm").write_bytes(data)
    extra = ["-m", "coverage", "-o", "out.wasm"] if command == "instrument" else []
    assert_user_error(run(command, "nomem.wasm", *extra), "unknown memory 0", code=BAD_MODULE)


def test_bad_wat(run: Run, tmp_path: Path) -> None:
    (tmp_path / "bad.wat").write_text("(module (func (i32.frobnicate)))")
    assert_user_error(run("inspect", "bad.wat"), "bad.wat", code=BAD_MODULE)


# -- cfg -------------------------------------------------------------------------------------
def test_cfg_text(run: Run) -> None:
    proc = run("cfg", EXAMPLES / "loop.wat", "--func", "run")
    assert proc.returncode == 0, proc.stderr
    m = load(EXAMPLES / "loop.wat")
    assert proc.stdout == build_cfg(m, 0).to_text(m)
    assert "(loop)" in proc.stdout and "exit  preds:" in proc.stdout


@pytest.mark.parametrize("spec", ["1", "nested", "$nested", "0x1"])
def test_cfg_function_by_index_or_name(run: Run, spec: str) -> None:
    proc = run("cfg", EXAMPLES / "loop.wat", "--func", spec)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("func 1 nested:")


def test_cfg_all_functions(run: Run) -> None:
    proc = run("cfg", EXAMPLES / "loop.wat")
    assert proc.returncode == 0, proc.stderr
    heads = [line for line in proc.stdout.splitlines() if line.startswith("func ")]
    assert [h.split(":")[0] for h in heads] == ["func 0 run", "func 1 nested"]


def test_cfg_dot_to_file(run: Run, tmp_path: Path) -> None:
    proc = run("cfg", EXAMPLES / "fib.wasm", "--func", "8", "--format", "dot", "-o", "out.dot")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    m = load(EXAMPLES / "fib.wasm")
    assert (tmp_path / "out.dot").read_text() == build_cfg(m, 8).to_dot(m)
    assert (tmp_path / "out.dot").read_text().startswith('digraph "func 8 _start" {')


def test_cfg_unknown_function(run: Run) -> None:
    assert_user_error(run("cfg", EXAMPLES / "loop.wat", "--func", "nope"), "nope")
    assert_user_error(run("cfg", EXAMPLES / "loop.wat", "--func", "7"), "out of range")


def test_cfg_imported_function(run: Run) -> None:
    assert_user_error(run("cfg", EXAMPLES / "fib.wasm", "--func", "0"),
                      "imported", "wasi_snapshot_preview1.args_get")


def test_cfg_output_folders(run: Run, tmp_path: Path) -> None:
    """-o makes missing folders (as trace -o does); a file in the way is one error."""
    proc = run("cfg", EXAMPLES / "loop.wat", "-o", "new/dir/out.txt")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "new/dir/out.txt").read_text().startswith("func 0 run")
    (tmp_path / "plain").write_text("")
    assert_user_error(run("cfg", EXAMPLES / "loop.wat", "-o", "plain/out.txt"),
                      "plain/out.txt")
    assert (tmp_path / "plain").read_text() == ""


def test_broken_pipe_is_quiet(installed: None, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "probes", "cfg", str(EXAMPLES / "fib.wasm")],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert first.startswith(b"func ")
    assert "Traceback" not in err and "Exception ignored" not in err


# -- in-process: the registry and Ctrl-C ---------------------------------------------------
def test_adding_a_command_is_one_function(capsys: pytest.CaptureFixture[str]) -> None:
    @cli.command("hello", "say hello", cli.arg("--name", default="world"))
    def _hello(args: object) -> int:
        print(f"hello {args.name}")
        return 3
    try:
        assert cli.main(["hello", "--name", "wasm"]) == 3
        assert capsys.readouterr().out == "hello wasm\n"
        assert cli.main(["--help"]) == 0
        assert "say hello" in capsys.readouterr().out
    finally:
        del cli.COMMANDS["hello"]


def test_ctrl_c_exits_130_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    @cli.command("interrupted", "raise KeyboardInterrupt")
    def _interrupted(args: object) -> int:
        raise KeyboardInterrupt
    try:
        assert cli.main(["interrupted"]) == 130
        captured = capsys.readouterr()
        assert captured.err == "" and captured.out == ""
    finally:
        del cli.COMMANDS["interrupted"]


def test_main_returns_usage_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["inspect"]) == 2
    assert cli.main(["--version"]) == 0
    assert cli.main(["inspect", str(EXAMPLES / "no-such.wasm")]) == cli.EXIT_NO_INPUT
    assert capsys.readouterr().err.endswith("no-such.wasm: no such file\n")


# -- running programs ---------------------------------------------------------------------
def test_trace_writes_profile_and_summaries(run: Run, tmp_path: Path) -> None:
    proc = run("trace", EXAMPLES / "fib.wasm", "-m", "icount", "-m", "branches:top=3",
               "-o", "fib.json")
    assert proc.returncode == 0, proc.stderr
    assert "fib(20) = 6765" in proc.stdout          # the program's stdout passes through
    assert "icount:" in proc.stderr and "branches:" in proc.stderr
    data = json.loads((tmp_path / "fib.json").read_text())
    assert data["format"] == "probes-profile" and data["exit_code"] == 0
    assert sum(data["counts"].values()) > 100_000
    assert data["branches"]


def test_trace_invoke_prints_result(run: Run) -> None:
    proc = run("trace", EXAMPLES / "loop.wat", "-m", "loops", "--invoke", "run", "10")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "145"
    assert "loops: 1 loops entered" in proc.stderr


def test_program_exit_code_passes_through(run: Run) -> None:
    proc = run("run", EXAMPLES / "interp.wasm", "--", "3")
    assert proc.returncode == 3, proc.stderr
    assert "gcd result = 21" in proc.stdout


def test_trap_exit_code_and_profile_kept(run: Run, tmp_path: Path) -> None:
    proc = run("trace", EXAMPLES / "trap.wat", "-m", "icount", "--invoke", "div", "1", "0",
               "-o", "trap.json")
    assert proc.returncode == cli.EXIT_TRAP and "Traceback" not in proc.stderr
    last = proc.stderr.splitlines()[-1]  # after the monitors' summaries
    assert last.startswith("probes: error: trap: integer divide by zero")
    assert "func 0 pc 5" in last and "trap.json" in last
    data = json.loads((tmp_path / "trap.json").read_text())
    assert data["trap"]["kind"] == "integer divide by zero"
    assert data["counts"]  # collected up to the trap


@pytest.mark.parametrize("spec,code,needle", [
    ("nope", cli.EXIT_UNKNOWN_MONITOR, "unknown monitor 'nope'"),
    ("icount:bad=1", cli.EXIT_BAD_OPTION, "unknown option 'bad'"),
    ("hotness:top=many", cli.EXIT_BAD_OPTION, "expects int"),
    ("coverage:level=line", cli.EXIT_BAD_OPTION, "level must be"),
])
def test_bad_monitor_specs(run: Run, spec: str, code: int, needle: str) -> None:
    assert_user_error(run("trace", EXAMPLES / "fib.wasm", "-m", spec), needle, code=code)


def test_missing_import(run: Run, tmp_path: Path) -> None:
    (tmp_path / "imp.wat").write_text(
        '(module (import "env" "missing" (func)) (func (export "_start") call 0))')
    assert_user_error(run("trace", "imp.wat"), "missing", code=cli.EXIT_LINK)


def test_trace_errors_for_bad_input(run: Run, tmp_path: Path) -> None:
    assert_user_error(run("trace", "nope.wasm"), "no such file", code=NO_INPUT)
    (tmp_path / "bad.wasm").write_bytes(b"\0asm\x01\0\0\0\x01\x05")
    assert_user_error(run("trace", "bad.wasm"), "bad.wasm", code=BAD_MODULE)


def test_instrument_writes_a_valid_module(run: Run, tmp_path: Path) -> None:
    proc = run("instrument", EXAMPLES / "sort.wasm", "-m", "icount", "-o", "out.wasm",
               "--layout", "layout.json")
    assert proc.returncode == 0, proc.stderr
    woven = (tmp_path / "out.wasm").read_bytes()
    m = probes.decode(woven)
    probes.validate(m)
    assert any(e.name == "__probes_state" for e in m.exports)
    layout = json.loads((tmp_path / "layout.json").read_text())
    assert layout["block_counters"] and layout["state_size"] > 0


def test_monitors_lists_every_monitor(run: Run) -> None:
    proc = run("monitors")
    assert proc.returncode == 0
    for name in ("coverage", "icount", "hotness", "branches", "calls", "loops", "memory",
                 "opcodes", "trace", "timeout"):
        assert f"\n{name} " in "\n" + proc.stdout


def test_ctrl_c_stops_a_running_guest_and_keeps_the_profile(installed: None,
                                                             tmp_path: Path) -> None:
    import signal
    import time

    (tmp_path / "spin.wat").write_text('(module (func (export "_start") (loop br 0)))')
    proc = subprocess.Popen(
        [sys.executable, "-m", "probes", "trace", "spin.wat", "-m", "icount", "-o", "p.json"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(3)  # start-up and compiling take well under that; then it spins
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the guest did not stop on Ctrl-C")
    assert proc.returncode == cli.EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "probes: error: interrupted; profile written to p.json"
    data = json.loads((tmp_path / "p.json").read_text())
    assert sum(data["counts"].values()) > 0


def test_options_between_program_and_its_arguments(run: Run) -> None:
    proc = run("trace", EXAMPLES / "interp.wasm", "-m", "icount", "--", "5")
    assert proc.returncode == 5, proc.stderr
    assert "icount:" in proc.stderr
