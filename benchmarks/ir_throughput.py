"""Turn a pyperf result file of bench_ir.py into MB/s of code section.

    python benchmarks/ir_throughput.py results.json
"""

from __future__ import annotations

import sys

import pyperf


def main(path: str) -> None:
    suite = pyperf.BenchmarkSuite.load(path)
    meta = suite.get_metadata()
    print(f"{'benchmark':45} {'mean':>10} {'MB/s':>10}")
    for bench in suite.get_benchmarks():
        name = bench.get_name()
        prog = name.split(":")[0]
        code = int(bench.get_metadata().get(f"code_bytes_{prog}", meta.get(f"code_bytes_{prog}", 0)))
        mean = bench.mean()
        print(f"{name:45} {mean * 1e3:8.2f}ms {code / mean / 1e6:10.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
