"""Bad input on the command line and in `probes.run`: one clear error line and a
distinct exit code, never a traceback, a hang or a misleading status.

Uses the fixtures and helpers of test_cli.py (the installed package, run in a
fresh directory).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import probes
from probes import cli

from .test_cli import EXAMPLES, Run, assert_usage_error, assert_user_error, cli_cwd, installed, run

__all__ = ["cli_cwd", "installed", "run"]  # fixtures, re-used


def _wat(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return name


# -- output paths ------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ("trace", "PROG", "-m", "icount", "-o", "out"),
    ("trace", "PROG", "--report", "out"),
    ("trace", "PROG", "-m", "trace:file=out"),
    ("instrument", "PROG", "-m", "icount", "-o", "out"),
    ("instrument", "PROG", "-o", "i.wasm", "--layout", "out"),
    ("coverage", "PROG", "-o", "out"),
    ("coverage", "PROG", "--save", "out"),
])
def test_output_that_is_a_directory_is_refused_before_the_run(run: Run, tmp_path: Path,
                                                              argv: tuple[str, ...]) -> None:
    """Not after the run (the profile would be lost), and naming the user's path,
    not the temporary file of the atomic write."""
    (tmp_path / "out").mkdir()
    args = [str(EXAMPLES / "fib.wasm") if a == "PROG" else a for a in argv]
    proc = run(*args)
    assert_user_error(proc, "out: is a directory")
    assert ".out." not in proc.stderr


def test_output_under_a_file_is_refused(run: Run, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    assert_user_error(run("trace", EXAMPLES / "fib.wasm", "-o", "f/p.json"),
                      "f/p.json", "f is not a directory")
    assert_user_error(run("instrument", EXAMPLES / "fib.wasm", "-o", "f/x/i.wasm"),
                      "f is not a directory")


def test_save_into_a_directory_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    result = probes.run(EXAMPLES / "loop.wat", ["icount"], invoke="run", args=[3])
    with pytest.raises(IsADirectoryError) as e:
        result.profile.save(tmp_path / "d")
    assert e.value.filename == str(tmp_path / "d")
    assert [p.name for p in (tmp_path).iterdir()] == ["d"]  # no temporary left behind


# -- stdin, dirs --------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["wasm", "native"])
def test_stdin_missing_or_a_directory(run: Run, tmp_path: Path, backend: str) -> None:
    (tmp_path / "d").mkdir()
    prog = EXAMPLES / "fib.wasm"
    assert_user_error(run("run", "-b", backend, prog, "--stdin", "nope.txt"),
                      "--stdin nope.txt: no such file")
    assert_user_error(run("run", "-b", backend, prog, "--stdin", "d"),
                      "--stdin d: is a directory")
    assert_user_error(run("coverage", "-b", backend, prog, "--stdin", "nope.txt"),
                      "--stdin nope.txt")


def test_dir_without_a_host(run: Run) -> None:
    assert_user_error(run("run", EXAMPLES / "fib.wasm", "--dir", ":/data"), "no host directory")


def test_api_checks_preopens_and_stdio_files(tmp_path: Path) -> None:
    prog = EXAMPLES / "fib.wasm"
    for kwargs, needle in [({"dirs": [(str(tmp_path / "no"), "/x")]}, "no such directory"),
                           ({"stdin": str(tmp_path / "no.txt")}, "no such file"),
                           ({"stdin": str(tmp_path)}, "is a directory"),
                           ({"stdout": str(tmp_path / "no" / "out")}, "no such directory")]:
        with pytest.raises(probes.ProbeError, match=needle):
            probes.run(prog, **kwargs)


# -- --invoke arguments ---------------------------------------------------------------------
TYPES = """(module
  (func (export "i32") (param i32) (result i32) local.get 0)
  (func (export "i64") (param i64) (result i64) local.get 0)
  (func (export "v") (result v128) v128.const i64x2 1 2))"""


@pytest.mark.parametrize("invoke, needle", [
    (("i32", "4294967296"), "out of range for i32"),
    (("i32", "-2147483649"), "out of range for i32"),
    (("i64", "18446744073709551616"), "out of range for i64"),
    (("v",), "returns a v128"),
])
def test_invoke_arguments_out_of_range_or_unreturnable(run: Run, tmp_path: Path,
                                                       invoke: tuple[str, ...],
                                                       needle: str) -> None:
    """An i32 argument used to wrap silently (4294967296 ran as 0)."""
    assert_user_error(run("run", _wat(tmp_path, "t.wat", TYPES), "--invoke", *invoke), needle)


@pytest.mark.parametrize("invoke, out", [
    (("i32", "4294967295"), "-1"), (("i32", "-2147483648"), "-2147483648"),
    (("i64", "0xffffffffffffffff"), "-1"),
])
def test_invoke_arguments_at_the_limits(run: Run, tmp_path: Path, invoke: tuple[str, ...],
                                        out: str) -> None:
    proc = run("run", _wat(tmp_path, "t.wat", TYPES), "--invoke", *invoke)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == out


@pytest.mark.parametrize("arg", [2**40, 1.5, "x", None, True])
def test_api_invoke_argument_of_the_wrong_kind(arg: object) -> None:
    with pytest.raises(probes.ProbeError, match="argument"):
        probes.run(EXAMPLES / "loop.wat", invoke="run", args=[arg])


def test_api_monitor_arguments() -> None:
    result = probes.run(EXAMPLES / "loop.wat", "icount", invoke="run", args=[3])
    assert result.value == 12 and [m.name for m in result.monitors] == ["icount"]
    with pytest.raises(TypeError, match="monitors must be"):
        probes.run(EXAMPLES / "loop.wat", [3], invoke="run", args=[3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="env"):
        probes.run(EXAMPLES / "fib.wasm", env={"A": 1})  # type: ignore[dict-item]
    result = probes.run(memoryview((EXAMPLES / "fib.wasm").read_bytes()), stdout="/dev/null")
    assert result.exit_code == 0


# -- exit statuses ----------------------------------------------------------------------------
EXIT = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const CODE))))"""


@pytest.mark.parametrize("code, status", [(0, 0), (1, 1), (200, 200), (256, 255), (512, 255),
                                          (-1, 255)])
def test_proc_exit_status(run: Run, tmp_path: Path, code: int, status: int) -> None:
    """proc_exit(256) used to exit 0: the OS keeps only the low byte."""
    prog = _wat(tmp_path, "exit.wat", EXIT.replace("CODE", str(code)))
    assert run("run", prog).returncode == status
    assert run("trace", prog, "-m", "icount", "-o", "p.json").returncode == status
    assert json.loads((tmp_path / "p.json").read_text())["exit_code"] == code


def test_stack_overflow_without_probes_names_no_bogus_pc(run: Run) -> None:
    """wasmtime knows no offset for the callee's frame (the CLI printed pc
    18446744073709551615): the trap is before its first instruction."""
    proc = run("run", EXAMPLES / "trap.wat", "--invoke", "deep", "100000")
    assert_user_error(proc, "trap: call stack exhausted in deep (func 3 pc 1,",
                      code=cli.EXIT_TRAP)
    assert "18446744073709551615" not in proc.stderr


# -- profiles ---------------------------------------------------------------------------------
def test_binary_file_as_profile(run: Run, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    assert_user_error(run("report", EXAMPLES / "fib.wasm"), "not a probes profile")
    assert_user_error(run("cfg", EXAMPLES / "fib.wasm", "--profile", EXAMPLES / "fib.wasm"),
                      "not a probes profile")
    assert_user_error(run("report", "d"), "d: is a directory", code=cli.EXIT_NO_INPUT)


def test_report_top_must_be_a_count(run: Run) -> None:
    assert_usage_error(run("report", "p.json", "--top", "-1"), ">= 0")


# -- usage -----------------------------------------------------------------------------------
def test_program_arguments_to_a_command_without_them(run: Run,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error(run("inspect", EXAMPLES / "fib.wasm", "--", "x"),
                       "usage: probes inspect")
    assert cli.main(["inspect", str(EXAMPLES / "fib.wasm"), "--", "x"]) == 2  # not SystemExit
    assert "takes no program arguments" in capsys.readouterr().err


def test_missing_prog_before_double_dash(run: Run) -> None:
    proc = run("run", "--", EXAMPLES / "fib.wasm")
    assert_usage_error(proc, "required: PROG")
    assert "-- ARGS" not in proc.stderr.splitlines()[-1]


# -- Ctrl-C --------------------------------------------------------------------------------------
def test_ctrl_c_stops_coverage_of_a_spinning_guest(installed: None, tmp_path: Path,
                                                   wat_to_binary: Callable[[str], bytes]
                                                   ) -> None:
    """`probes coverage` did not make the guest interruptible: Ctrl-C hung."""
    import time

    (tmp_path / "spin.wat").write_text('(module (func (export "_start") (loop br 0)))')
    proc = subprocess.Popen([sys.executable, "-m", "probes", "coverage", "spin.wat"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(3)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("coverage did not stop on Ctrl-C")
    assert proc.returncode == cli.EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "probes: error: interrupted"
    assert (tmp_path / "coverage.info").read_text().startswith("TN:")


# -- entry points -----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["wasm", "native"])
def test_trap_in_the_start_function_is_a_trap(run: Run, tmp_path: Path, backend: str) -> None:
    """It exited 1 (a plain error) and wrote no profile."""
    prog = _wat(tmp_path, "st.wat",
                '(module (func $s unreachable) (start $s) (func (export "_start")))')
    proc = run("trace", "-b", backend, prog, "-m", "icount", "-o", "p.json")
    assert proc.returncode == cli.EXIT_TRAP, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("probes: error: trap: unreachable")
    assert json.loads((tmp_path / "p.json").read_text())["trap"]["kind"] == "unreachable"


@pytest.mark.parametrize("backend", ["wasm", "native"])
@pytest.mark.parametrize("wat, needle", [
    ('(module (global (export "_start") i32 (i32.const 0)))', "_start is exported as a global"),
    ('(module (func (export "_start") (param i32)))', "_start takes parameters (i32)"),
])
def test_start_export_that_is_not_a_command(run: Run, tmp_path: Path, backend: str, wat: str,
                                            needle: str) -> None:
    """A global named _start was a TypeError traceback on the wasm backend."""
    assert_user_error(run("run", "-b", backend, _wat(tmp_path, "s.wat", wat)), needle)


def test_bad_invoke_arguments_are_refused_before_the_start_function_runs(
        run: Run, tmp_path: Path) -> None:
    prog = _wat(tmp_path, "s.wat", """(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "started\\n") (data (i32.const 0) "\\10\\00\\00\\00\\08\\00\\00\\00")
      (func $s (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32))))
      (start $s)
      (func (export "f") (param i32) (result i32) local.get 0))""")
    ok = run("run", prog, "--invoke", "f", "7")
    assert ok.returncode == 0 and ok.stdout == "started\n7\n", ok.stderr
    proc = run("run", prog, "--invoke", "f", "x")
    assert_user_error(proc, "not a valid i32")
    assert proc.stdout == ""


@pytest.mark.parametrize("backend", ["wasm", "native"])
def test_proc_exit_in_the_start_function(run: Run, tmp_path: Path, backend: str) -> None:
    """It was a traceback (the backends' private _Exit escaped instantiation)."""
    prog = _wat(tmp_path, "sx.wat", """(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
      (memory (export "memory") 1)
      (func $s (call $e (i32.const 3))) (start $s) (func (export "_start")))""")
    proc = run("trace", "-b", backend, prog, "-m", "icount", "-o", "p.json")
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads((tmp_path / "p.json").read_text())["exit_code"] == 3


@pytest.mark.parametrize("argv", [
    ("trace", "fib.wasm", "-o", "fib.wasm"),
    ("trace", "fib.wasm", "--report", "./fib.wasm"),
    ("coverage", "fib.wasm", "--save", "fib.wasm"),
])
def test_output_over_the_program_is_refused(run: Run, tmp_path: Path,
                                            argv: tuple[str, ...]) -> None:
    """`trace prog.wasm -o prog.wasm` replaced the program with its profile."""
    data = (EXAMPLES / "fib.wasm").read_bytes()
    (tmp_path / "fib.wasm").write_bytes(data)
    assert_user_error(run(*argv), "refusing to overwrite")
    assert (tmp_path / "fib.wasm").read_bytes() == data


def test_profile_and_report_to_the_same_file(run: Run) -> None:
    assert_user_error(run("trace", EXAMPLES / "fib.wasm", "-o", "p.json", "--report", "p.json"),
                      "both name p.json")


def test_report_or_cfg_over_their_inputs_is_refused(run: Run, tmp_path: Path) -> None:
    """`report p.json -F json -o p.json` replaced the profile with the report."""
    data = (EXAMPLES / "fib.wasm").read_bytes()
    (tmp_path / "fib.wasm").write_bytes(data)
    assert run("trace", "fib.wasm", "-m", "icount", "-o", "p.json").returncode == 0
    profile = (tmp_path / "p.json").read_text()
    assert_user_error(run("report", "p.json", "-F", "json", "-o", "p.json"),
                      "that is the profile")
    assert_user_error(run("report", "p.json", "-p", "fib.wasm", "-o", "fib.wasm"),
                      "that is the program")
    assert_user_error(run("cfg", "fib.wasm", "-o", "fib.wasm"), "that is the program")
    assert_user_error(run("cfg", "fib.wasm", "--profile", "p.json", "-o", "p.json"),
                      "that is the profile")
    assert (tmp_path / "p.json").read_text() == profile
    assert (tmp_path / "fib.wasm").read_bytes() == data


def test_report_file_in_a_new_folder_like_the_profile(run: Run, tmp_path: Path) -> None:
    """-o made missing folders but --report failed there after the run."""
    proc = run("trace", EXAMPLES / "fib.wasm", "-o", "a/p.json", "--report", "b/r.txt")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a" / "p.json").is_file()
    assert (tmp_path / "b" / "r.txt").read_text().startswith("icount:")


@pytest.mark.parametrize("backend", ["wasm", "native"])
def test_ctrl_c_keeps_buffered_trace_events(installed: None, tmp_path: Path,
                                            backend: str) -> None:
    """The events still in the guest's trace buffer were dropped on Ctrl-C (kept on
    a trap): the monitors collected before the instance flushed them."""
    import time

    (tmp_path / "t.wat").write_text(
        '(module (func $f) (func (export "_start") (call $f) (loop br 0)))')
    proc = subprocess.Popen(
        [sys.executable, "-m", "probes", "trace", "-b", backend, "t.wat", "-m", "trace",
         "-o", "p.json"], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(3 if backend == "wasm" else 6)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the guest did not stop on Ctrl-C")
    assert proc.returncode == cli.EXIT_INTERRUPTED, err
    assert "trace: 2 events" in err
    assert json.loads((tmp_path / "p.json").read_text())["trace"] == [[1, 1, 0], [0, 1, 0]]


# -- monitor options ---------------------------------------------------------------------------
@pytest.mark.parametrize("spec, needle", [
    ("profile:interval_ms=inf", "expects a finite number"),     # was a thread traceback
    ("profile:interval_ms=nan", "expects a finite number"),     # was 0 samples, silently
    ("profile:interval_ms=1e300", "at most 60000"),
    ("hotness:top=-1", "count >= 0"),                           # listed everything
    ("hotness:top=1,top=2", "option top is given twice"),       # kept the last silently
])
def test_monitor_option_values_are_checked(run: Run, spec: str, needle: str) -> None:
    proc = run("trace", EXAMPLES / "fib.wasm", "-m", spec)
    assert_user_error(proc, needle, code=cli.EXIT_BAD_OPTION)


def test_a_monitor_given_twice_is_refused(run: Run) -> None:
    """Two budgets competed: the run stopped at one and the summary named the other."""
    proc = run("trace", EXAMPLES / "fib.wasm", "-m", "timeout:n=100", "-m", "timeout:n=1000")
    assert_user_error(proc, "monitor timeout is given twice", code=cli.EXIT_BAD_OPTION)
    with pytest.raises(probes.ProbeError, match="given twice"):
        probes.run(EXAMPLES / "fib.wasm", ["icount", "icount"])


# -- programs in source form -----------------------------------------------------------------
def test_wat_errors_name_the_line_and_column(run: Run, tmp_path: Path) -> None:
    """It said "(at offset 0x0)", which means nothing in a text file."""
    bad = tmp_path / "bad.wat"
    bad.write_text("(module\n  (func (result i32)\n    i32.const 1\n    i32.bogus))\n")
    proc = run("run", bad)
    assert_user_error(proc, "cannot assemble WAT: ", "(at line 4, column 5)",
                      code=cli.EXIT_BAD_MODULE)
    assert "offset 0x0" not in proc.stderr


def test_c_errors_are_bad_programs(run: Run, tmp_path: Path) -> None:
    """A C file that does not compile is bad input like a bad module (it exited 1)."""
    pytest.importorskip("ziglang")
    bad = tmp_path / "bad.c"
    bad.write_text("int main(void) { return x; }\n")
    proc = run("run", bad)
    assert_user_error(proc, "C compilation failed: ", "bad.c:1:25: error: use of undeclared "
                      "identifier 'x'", code=cli.EXIT_BAD_MODULE)


def test_a_host_out_of_memory_is_not_a_link_error(installed: None, tmp_path: Path) -> None:
    """wasmtime cannot reserve the program's memory (address space capped): one
    error line, exit 1; it was reported as a missing import (exit 5)."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    proc = subprocess.run([sys.executable, "-m", "probes", "run", str(EXAMPLES / "fib.wasm")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          preexec_fn=cap, check=False)
    if proc.returncode == 0:
        pytest.skip("the engine fits in 3 GiB of address space here")
    assert_user_error(proc, "cannot instantiate: ", code=1)


@pytest.mark.parametrize("content, needle", [
    (b"\xff\xfe", "not UTF-8 JSON text"),
    (b"[1]", "not a JSON object"),
    (b'{"format": "x"}', 'missing "format"'),
    (b'{"format": "probes-profile", "calls": [1]}', "malformed"),
    (b"nope", "invalid JSON"),
])
def test_api_profile_load_raises_probes_errors(tmp_path: Path, content: bytes,
                                               needle: str) -> None:
    """ProfileData.load raised UnicodeDecodeError, JSONDecodeError, TypeError..."""
    from probes.profile import ProfileData

    path = tmp_path / "p.json"
    path.write_bytes(content)
    with pytest.raises(probes.ProbesError, match=needle):
        ProfileData.load(path)


def test_invoke_arguments_after_the_separator_get_a_hint(run: Run) -> None:
    """`--invoke run -- 5` gave the 5 to the program's argv and said only "got 0"."""
    proc = run("run", EXAMPLES / "loop.wat", "--invoke", "run", "--", "5")
    assert_user_error(proc, "run takes 1 argument(s) (i32), got 0",
                      "arguments after -- go to the program's argv")
    plain = run("run", EXAMPLES / "loop.wat", "--invoke", "run")
    assert_user_error(plain, "got 0")
    assert "argv" not in plain.stderr
