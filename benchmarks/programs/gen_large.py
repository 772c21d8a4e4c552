#!/usr/bin/env python3
"""Generate ``large.c``: a deterministic C program with thousands of distinct,
non-trivial functions, used to benchmark decoding, instrumentation and
re-encoding of a big Wasm module (code section > 1 MB at -O2).

Every function is different (random shapes and constants from a seeded PRNG):

* integer functions ``unsigned fN(unsigned a, unsigned b, int depth)`` built
  from a random mix of blocks: counted loops, nested loops, while loops with
  ``break``, ``switch`` statements (``br_table``), nested ``if`` chains,
  global-array loads/stores, calls to float helpers, direct calls to
  lower-numbered functions and indirect calls through a function table
  (``call_indirect``);
* float functions ``double gN(double x, unsigned n)`` with loops of f64
  arithmetic, ``sqrt``/``floor``/``fabs`` and value clamping (so no NaN/inf
  and no undefined float-to-int conversions).

Calls only happen while ``depth > 0`` and always pass ``depth - 1``, so the
call graph is acyclic in time and the run is short. All functions are kept by
the linker because they are reachable from the function tables. ``main``
calls a strided subset through the tables and prints checksums.

Usage: gen_large.py [-o large.c] [--functions N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

DEFAULT_FUNCTIONS = 2200
DEFAULT_SEED = 20240601
FLOAT_SHARE = 0.2     # fraction of functions that are float helpers
MEM_WORDS = 256


class Gen:
    def __init__(self, n_functions: int, seed: int):
        self.r = random.Random(seed)
        self.n = n_functions
        # Decide up front which indices are float helpers, so every function
        # can call float helpers (and int functions) with a smaller index.
        self.kinds = ["i" if i < 8 or self.r.random() >= FLOAT_SHARE else "f"
                      for i in range(n_functions)]
        self.ints = [i for i, k in enumerate(self.kinds) if k == "i"]
        self.floats = [i for i, k in enumerate(self.kinds) if k == "f"]
        self.int_slot = {f: s for s, f in enumerate(self.ints)}
        self.float_slot = {f: s for s, f in enumerate(self.floats)}

    # ---- helpers ---------------------------------------------------------

    def c32(self) -> str:
        return f"0x{self.r.getrandbits(32):08x}u"

    def small(self, lo: int = 1, hi: int = 31) -> int:
        return self.r.randint(lo, hi)

    def var(self) -> str:
        return self.r.choice(["a", "b", "acc", "t"])

    def int_expr(self, depth: int = 0) -> str:
        """A random side-effect-free unsigned expression over a, b, acc, t."""
        r = self.r
        if depth > 2 or r.random() < 0.3:
            return r.choice([self.var(), self.var(), self.c32()])
        x, y = self.int_expr(depth + 1), self.int_expr(depth + 1)
        form = r.randrange(9)
        if form == 0:
            return f"({x} + {y})"
        if form == 1:
            return f"({x} - {y})"
        if form == 2:
            return f"({x} * {self.c32()})"
        if form == 3:
            return f"({x} ^ {y})"
        if form == 4:
            return f"({x} & {y})"
        if form == 5:
            return f"({x} | ({y} >> {self.small()}))"
        if form == 6:
            s = self.small()
            return f"(({x} << {s}) | ({x} >> {32 - s}))"
        if form == 7:
            return f"({x} / ({y} | 1u))"
        return f"({x} % ({self.small(3, 997)}u + ({y} & 7u)))"

    def cond(self) -> str:
        r = self.r
        form = r.randrange(5)
        if form == 0:
            return f"({self.var()} & {1 << r.randrange(32)}u)"
        if form == 1:
            return f"{self.var()} > {self.c32()}"
        if form == 2:
            x, y = self.int_expr(1), self.int_expr(1)
            while y == x:
                y = self.int_expr(1)
            return f"({x}) < ({y})"
        if form == 3:
            return f"({self.var()} % {self.small(2, 13)}u) == {self.small(0, 1)}u"
        x, y = self.r.sample(["a", "b", "acc", "t"], 2)
        return f"{x} != {y}"

    # ---- statement blocks for integer functions ----------------------------

    def blk_loop(self, idx: int) -> str:
        r = self.r
        mask = r.choice([3, 7, 15])
        return (f"    for (unsigned i = 0; i < ((a >> {self.small(0, 24)}) & {mask}u) + {self.small(1, 6)}u; i++) {{\n"
                f"        acc = acc * {self.c32()} + ({self.var()} ^ i);\n"
                f"        if ({self.cond()}) acc ^= {self.int_expr(1)};\n"
                f"        else t += {self.int_expr(1)};\n"
                f"    }}\n")

    def blk_nested_loop(self, idx: int) -> str:
        return (f"    for (unsigned i = 0; i < {self.small(2, 5)}u; i++)\n"
                f"        for (unsigned j = 0; j < (({self.var()} >> i) & 3u) + 1u; j++) {{\n"
                f"            t = t * {self.small(3, 97)}u + (i ^ j) + {self.int_expr(2)};\n"
                f"            if ((t & {self.small(1, 255)}u) == 0u) break;\n"
                f"        }}\n")

    def blk_while(self, idx: int) -> str:
        return (f"    {{\n"
                f"        unsigned w = ({self.var()} | 1u) & 0xffffu, guard = 0;\n"
                f"        while (w < {self.r.randint(40000, 65535)}u && guard++ < {self.small(6, 20)}u) {{\n"
                f"            w = w * {self.small(2, 5)}u + {self.small(1, 99)}u;\n"
                f"            if (w % {self.small(5, 17)}u == 0u) break;\n"
                f"            acc += w ^ {self.int_expr(2)};\n"
                f"        }}\n"
                f"        t ^= w;\n"
                f"    }}\n")

    def blk_switch(self, idx: int) -> str:
        r = self.r
        n = r.randint(4, 11)
        lines = [f"    switch (({self.int_expr(1)}) % {n}u) {{"]
        for k in range(n):
            stmt = r.choice([
                f"acc += {self.int_expr(1)};",
                f"acc ^= {self.int_expr(1)};",
                f"t = {self.int_expr(1)};",
                f"acc = acc * {self.c32()} + t;",
                f"b = {self.int_expr(1)};",
            ])
            tail = "/* fall through */" if r.random() < 0.15 and k < n - 1 else "break;"
            lines.append(f"    case {k}: {stmt} {tail}")
        lines.append(f"    default: acc -= {self.c32()}; break;")
        lines.append("    }")
        return "\n".join(lines) + "\n"

    def blk_ifs(self, idx: int) -> str:
        return (f"    if ({self.cond()}) {{\n"
                f"        if ({self.cond()}) acc += {self.int_expr(1)};\n"
                f"        else acc -= {self.int_expr(1)};\n"
                f"    }} else if ({self.cond()}) {{\n"
                f"        t ^= {self.int_expr(1)};\n"
                f"        if ({self.cond()}) b = {self.int_expr(1)};\n"
                f"    }} else {{\n"
                f"        acc = {self.int_expr()};\n"
                f"    }}\n")

    def blk_memory(self, idx: int) -> str:
        m = MEM_WORDS - 1
        return (f"    mem[({self.var()} + {self.small(0, m)}u) & {m}u] += {self.int_expr(1)};\n"
                f"    acc ^= mem[({self.var()} * {self.small(3, 255)}u) & {m}u];\n")

    def blk_float(self, idx: int) -> str:
        cands = [f for f in self.floats if f < idx]
        if cands and self.r.random() < 0.6:
            g = self.r.choice(cands)
            call = f"g{g}((double)(acc & 0xfffu) * {self.r.uniform(0.01, 2):.6f}, {self.var()})"
        else:
            call = f"(double)(acc & 0xffffu) * {self.r.uniform(0.001, 0.5):.6f}"
        return (f"    {{\n"
                f"        double d = {call};\n"
                f"        d = d * d / (1.0 + fabs(d)) + {self.r.uniform(-4, 4):.6f};\n"
                f"        d = clampd(d);\n"
                f"        acc += (unsigned)(int)(d * {self.r.uniform(1, 64):.4f});\n"
                f"    }}\n")

    def blk_call(self, idx: int) -> str:
        cands = [f for f in self.ints if f < idx]
        if not cands:
            return self.blk_ifs(idx)
        f = self.r.choice(cands)
        return f"    if (depth > 0) acc += f{f}({self.int_expr(1)}, t, depth - 1);\n"

    def blk_icall(self, idx: int) -> str:
        return (f"    if (depth > 0 && {self.cond()})\n"
                f"        acc ^= itab[({self.int_expr(1)}) % N_INT](acc, {self.var()}, depth - 1);\n")

    def int_function(self, idx: int) -> str:
        r = self.r
        kinds = [
            (self.blk_loop, 3), (self.blk_nested_loop, 1), (self.blk_while, 1),
            (self.blk_switch, 3), (self.blk_ifs, 3), (self.blk_memory, 1),
            (self.blk_float, 1),
        ]
        funcs, weights = zip(*kinds, strict=True)
        nblocks = r.randint(3, 6)
        body = [r.choices(funcs, weights)[0](idx) for _ in range(nblocks)]
        # at most two calls per function keeps the dynamic call tree small
        ncalls = r.choice([0, 1, 1, 2])
        for _ in range(ncalls):
            blk = self.blk_call(idx) if r.random() < 0.6 else self.blk_icall(idx)
            body.insert(r.randrange(len(body) + 1), blk)
        return (f"NOINLINE unsigned f{idx}(unsigned a, unsigned b, int depth) {{\n"
                f"    unsigned acc = a ^ {self.c32()}, t = b + {self.c32()};\n"
                + "".join(body) +
                f"    return acc ^ (t >> {self.small(1, 16)});\n"
                f"}}\n")

    # ---- float functions ------------------------------------------------------

    def float_function(self, idx: int) -> str:
        r = self.r
        lines = [f"NOINLINE double g{idx}(double x, unsigned n) {{",
                 f"    double y = x * {r.uniform(0.1, 3):.6f} + {r.uniform(-10, 10):.6f};"]
        for _ in range(r.randint(2, 4)):
            form = r.randrange(4)
            if form == 0:
                lines += [f"    for (unsigned i = 0; i < (n & {r.choice([3, 7])}u) + 1u; i++) {{",
                          f"        y = y * {r.uniform(0.5, 1.5):.6f} + (double)i * {r.uniform(-1, 1):.6f};",
                          f"        if (y > {r.uniform(100, 1000):.3f}) y = y * {r.uniform(0.01, 0.5):.6f};",
                          "    }"]
            elif form == 1:
                lines += [f"    y = sqrt(fabs(y) + {r.uniform(0.1, 9):.6f}) * {r.uniform(0.5, 4):.6f};"]
            elif form == 2:
                lines += [f"    if (y < {r.uniform(-50, 50):.3f}) y = -y * {r.uniform(0.1, 2):.6f};",
                          f"    else if (n & {1 << r.randrange(8)}u) y = y / (1.0 + fabs(y - {r.uniform(-5, 5):.4f}));",
                          f"    else y += floor(y * {r.uniform(0.01, 0.9):.6f});"]
            else:
                lines += [f"    y = clampd(y * y * {r.uniform(0.001, 0.1):.6f} - y + {r.uniform(-3, 3):.6f});"]
        lines += ["    return clampd(y);", "}"]
        return "\n".join(lines) + "\n"

    # ---- whole program -----------------------------------------------------

    def program(self) -> str:
        out = [
            "/*",
            " * large.c -- GENERATED by gen_large.py; do not edit.",
            f" * {self.n} functions ({len(self.ints)} integer, {len(self.floats)} float),"
            f" seed {SEED_PLACEHOLDER}.",
            " * Loops, switches (br_table), nested ifs, direct and indirect calls,",
            " * f64 math; main() calls a strided subset and prints checksums.",
            " */",
            "#include <stdio.h>",
            "#include <math.h>",
            "",
            "#define NOINLINE __attribute__((noinline))",
            f"#define N_INT {len(self.ints)}u",
            f"#define N_FLOAT {len(self.floats)}u",
            "",
            f"static unsigned mem[{MEM_WORDS}];",
            "",
            "/* keep a double in [-1024, 1024): no inf/NaN, safe to convert to int */",
            "static inline double clampd(double d) {",
            "    if (!(d == d)) return 0.0;",
            "    if (d > 1.0e6 || d < -1.0e6) return 1.0;",
            "    return d - floor(d * (1.0 / 2048.0)) * 2048.0 - 1024.0;",
            "}",
            "",
            "typedef unsigned (*int_fn)(unsigned, unsigned, int);",
            "typedef double (*float_fn)(double, unsigned);",
            "extern int_fn const itab[];",
            "extern float_fn const ftab[];",
            "",
        ]
        for i in range(self.n):
            if self.kinds[i] == "i":
                out.append(self.int_function(i))
            else:
                out.append(self.float_function(i))
        out.append("int_fn const itab[] = {")
        for k in range(0, len(self.ints), 10):
            out.append("    " + ", ".join(f"f{i}" for i in self.ints[k:k + 10]) + ",")
        out.append("};")
        out.append("float_fn const ftab[] = {")
        for k in range(0, len(self.floats), 10):
            out.append("    " + ", ".join(f"g{i}" for i in self.floats[k:k + 10]) + ",")
        out.append("};")
        out.append("""
int main(void) {
    unsigned h = 2166136261u;
    double fsum = 0.0;
    unsigned called = 0;
    for (unsigned round = 0; round < 2u; round++) {
        for (unsigned i = round; i < N_INT; i += 5u) {
            h = (h ^ itab[i](i * 2654435761u + round, h, 3)) * 16777619u;
            called++;
        }
        for (unsigned i = round; i < N_FLOAT; i += 3u) {
            fsum += ftab[i]((double)i * 0.37 - 11.0, i + round);
            called++;
        }
    }
    printf("large: %u integer + %u float functions, %u top-level calls\\n", N_INT, N_FLOAT, called);
    printf("int checksum = %08x\\n", h);
    printf("float checksum = %.6f\\n", fsum);
    for (unsigned i = 0; i < 4u; i++) h = h * 31u + mem[i * 64u];
    printf("memory checksum = %08x\\n", h);
    return 0;
}""")
        return "\n".join(out) + "\n"


SEED_PLACEHOLDER = "@SEED@"


def generate(n_functions: int, seed: int) -> str:
    if n_functions < 16:
        raise ValueError("need at least 16 functions")
    text = Gen(n_functions, seed).program()
    return text.replace(SEED_PLACEHOLDER, str(seed))


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(
        description="Write a large, deterministic C program (default: large.c next to this script) "
        "whose -O2 wasm32-wasi build has a code section of well over 1 MB.")
    parser.add_argument("-o", "--output", type=Path, default=here / "large.c",
                        help="output C file (default: %(default)s); '-' for stdout")
    parser.add_argument("--functions", type=int, default=DEFAULT_FUNCTIONS,
                        help="number of functions to generate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="PRNG seed (default: %(default)s)")
    opts = parser.parse_args(argv)
    try:
        text = generate(opts.functions, opts.seed)
    except ValueError as exc:
        parser.error(str(exc))
    if str(opts.output) == "-":
        sys.stdout.write(text)
    else:
        opts.output.write_text(text, encoding="utf-8")
        print(f"wrote {opts.output} ({opts.functions} functions, {len(text)} bytes, seed {opts.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
