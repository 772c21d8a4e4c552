"""IR throughput: decode + validate + encode, in MB of code section per second.

    python benchmarks/bench_ir.py [-o results.json] [pyperf options]

Programs: the largest example and the >= 1 MB generated module
(benchmarks/programs/large.wasm). Four benchmarks per program:

* ``decode+validate``: decode every body and type-check the module;
* ``decode-lazy``: decode the module structure only (bodies stay bytes);
* ``encode-untouched``: re-encode a decoded module (verbatim copy path);
* ``encode-bodies``: re-encode every body from its instructions.

The figure of merit is code-section bytes / time, printed after the run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyperf

from probes import ir

ROOT = Path(__file__).resolve().parents[1]


def programs() -> list[Path]:
    """The example with the most code, and the >= 1 MB generated module."""
    examples = sorted((ROOT / "examples").glob("*.wasm"),
                      key=lambda p: ir.decode(p.read_bytes()).code_size)
    return [examples[-1], ROOT / "benchmarks" / "programs" / "large.wasm"]


def decode_validate(data: bytes) -> None:
    m = ir.decode(data, lazy=False)
    ir.validate(m)


def encode_bodies(data: bytes) -> None:
    m = ir.decode(data)
    for f in m.functions:
        f.replace_body(f.instrs)
    ir.encode(m)


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["description"] = __doc__.splitlines()[0]
    for path in programs():
        data = path.read_bytes()
        m = ir.decode(data)
        name = path.name
        runner.metadata[f"code_bytes_{name}"] = str(m.code_size)
        runner.bench_func(f"{name}: decode+validate", decode_validate, data)
        runner.bench_func(f"{name}: decode-lazy", ir.decode, data)
        runner.bench_func(f"{name}: encode-untouched", ir.encode, m)
        runner.bench_func(f"{name}: encode-bodies", encode_bodies, data)


if __name__ == "__main__":
    if "--help" in sys.argv or "-h" in sys.argv:
        print(__doc__)
    main()
