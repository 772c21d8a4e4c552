"""Merged bounds checks (backends/native/guards.py): the runs they apply to, and that a
run emitted twice (unchecked when its merged checks pass, exact otherwise) traps at the
same instruction, with the same stores done before it, as wasmtime."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.backends.base import CompileOptions
from probes.backends.native import guards
from probes.backends.wasm import WasmBackend
from probes.ir import Location, Trap, decode

from ..conftest import assemble

OPTS = CompileOptions(cache=False, opt_level=2)


def _runs(body: str, params: str = "(param $p i32) (param $i i32)",
          locals_: str = "(local $q i32)") -> list[guards.Run]:
    m = decode(assemble(f"(module (memory 1) (func {params} {locals_} {body}))"))
    f = m.functions[0]
    return list(guards.find_runs(f, {0, 1, 2}, {0: 65536}).values())


def test_the_address_forms_compilers_emit_share_a_check() -> None:
    (run,) = _runs("""
        (i32.store offset=4 (local.get $p) (i32.load offset=8 (local.get $p)))
        (local.set $q (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))))
        (drop (i32.load (local.get $q)))
        (drop (i64.load (i32.add (local.get $q) (i32.const -4))))
        (local.set $p (i32.const 0))
        (drop (i32.load offset=100 (local.get $p)))
        (drop (i32.load offset=200 (local.get $p)))""")
    by_base = {g.base: g for g in run.groups}
    assert set(by_base) == {((0, 1),), ((0, 1), (1, 4))}
    p = by_base[((0, 1),)]
    assert (p.lo, p.hi, sorted(p.at.values())) == (0, 12, [4, 8])
    q = by_base[((0, 1), (1, 4))]  # p + 4i, read through $q
    assert (q.lo, q.hi, sorted(q.at.values())) == (-4, 4, [-4, 0])
    # after local.set $p, $p holds a constant: those two accesses are not in a group


def test_runs_end_at_control_flow_and_calls() -> None:
    runs = _runs("""
        (drop (i32.load (local.get $p)))
        (if (local.get $i) (then nop))
        (drop (i32.load offset=4 (local.get $p)))
        (drop (i32.load offset=8 (local.get $p)))
        (call 0 (local.get $p) (local.get $i))
        (drop (i32.load offset=12 (local.get $p)))""")
    assert [sorted(g.at.values()) for r in runs for g in r.groups] == [[4, 8]]


def test_one_address_or_an_unknown_base_is_not_worth_a_copy() -> None:
    assert _runs("""
        (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
        (drop (i32.load (i32.load (local.get $i))))
        (drop (i32.load offset=4 (i32.load (local.get $i))))
        (drop (i32.load (i32.mul (local.get $p) (local.get $i))))
        (drop (i32.load offset=4 (i32.mul (local.get $p) (local.get $i))))""") == []


def test_a_group_never_spans_more_than_the_minimum_memory() -> None:
    (run,) = _runs("""
        (drop (i32.load offset=0 (local.get $p)))
        (drop (i32.load offset=8 (local.get $p)))
        (drop (i32.load offset=70000 (local.get $p)))""")
    (g,) = run.groups
    assert sorted(g.at.values()) == [0, 8]


# Differential: random runs of accesses through $p, p + 4q and a local set in the run,
# called with arguments at the ends of memory and where 32-bit addresses wrap.

WIDTHS = {"i32.load": 4, "i64.load": 8, "i32.load8_u": 1, "i32.load16_s": 2,
          "i32.store": 4, "i64.store": 8, "i32.store8": 1, "i32.store16": 2}
SIZE = 65536
DIGEST = f"""(func (export "digest") (result i64) (local $a i32) (local $h i64)
  (loop $l
    (local.set $h (i64.add (i64.rotl (local.get $h) (i64.const 7))
                           (i64.load (local.get $a))))
    (br_if $l (i32.ne (local.tee $a (i32.add (local.get $a) (i32.const 8)))
                      (i32.const {SIZE}))))
  (local.get $h))"""
"""A hash of the first page: the memory a call leaves."""


def _address(form: str, c: int) -> str:
    base = {"p": "(local.get $p)",
            "pq": "(i32.add (local.get $p) (i32.shl (local.get $q) (i32.const 2)))",
            "t": "(local.get $t)"}[form]
    if c > 0:
        return f"(i32.add {base} (i32.const {c}))"
    if c < 0:
        return f"(i32.sub {base} (i32.const {-c}))"
    return base


def _access(op: str, form: str, c: int, offset: int, k: int) -> str:
    return access_at(op, _address(form, c), offset, k)


def access_at(op: str, addr: str, offset: int, k: int) -> str:
    """The k-th access of a generated body: a store of a constant, or a load folded
    into $acc."""
    if op.startswith("i64.store"):
        return f"({op} offset={offset} {addr} (i64.const {k * 0x10001 + 7}))"
    if ".store" in op:
        return f"({op} offset={offset} {addr} (i32.const {k * 257 + 3}))"
    value = f"({op} offset={offset} {addr})"
    if op.startswith("i64"):
        value = f"(i32.wrap_i64 {value})"
    return f"(local.set $acc (i32.add (i32.rotl (local.get $acc) (i32.const 5)) {value}))"


def _module(accesses: list[tuple[str, str, int, int]], max_pages: int) -> bytes:
    body = " ".join(_access(op, form, c, off, k)
                    for k, (op, form, c, off) in enumerate(accesses))
    return assemble(f"""(module (memory 1 {max_pages})
      (func (export "f") (param $p i32) (param $q i32) (result i32) (local $t i32) (local $acc i32)
        (local.set $t (i32.add (local.get $p) (i32.shl (local.get $q) (i32.const 3))))
        {body}
        (local.get $acc))
      {DIGEST})""")


ACCESS = st.tuples(st.sampled_from(sorted(WIDTHS)), st.sampled_from(["p", "pq", "t"]),
                   st.sampled_from([0, 4, 8, 12, -4, -8, -16, 64]),
                   st.sampled_from([0, 0, 4, 16, 60, 65500, 0xFFFFFFF0]))
EDGE = [0, 4, 8, 16, SIZE - 64, SIZE - 16, SIZE - 12, SIZE - 8, SIZE - 4, SIZE - 1, SIZE,
        SIZE + 8, 2**32 - 4, 2**32 - 8, 2**31]
ARG = st.one_of(st.sampled_from(EDGE), st.integers(0, 2**32 - 1))


def _outcome(inst: Any, p: int, q: int) -> tuple[Any, int]:
    try:
        result: Any = inst.call("f", _s32(p), _s32(q))
    except Trap as t:
        result = (t.kind, t.location)
    return result, inst.call("digest")


def _s32(v: int) -> int:
    return v - 2**32 if v >= 2**31 else v


def _first_out_of_bounds(m: Any, accesses: list[tuple[str, str, int, int]], p: int,
                         q: int) -> Any:
    """Where Wasm traps: the first access whose 32-bit address plus offset and width
    passes the end of memory (wasmtime names a later one when two stores to one
    address follow each other, so this is the reference for the location)."""
    pcs = [i.pc for i in m.functions[0].instrs if i.op.mem_bytes]
    bases = {"p": p, "pq": p + 4 * q, "t": p + 8 * q}
    for pc, (op, form, c, offset) in zip(pcs, accesses, strict=True):
        if ((bases[form] + c) & 0xFFFFFFFF) + offset + WIDTHS[op] > SIZE:
            return pc
    return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accesses=st.lists(ACCESS, min_size=2, max_size=10),
       args=st.lists(st.tuples(ARG, st.sampled_from([0, 1, 2, -1 & 0xFFFFFFFF, 16000])),
                     min_size=1, max_size=6),
       max_pages=st.sampled_from([1, 2]))
def test_a_run_traps_where_wasm_does_with_the_same_stores_done(
        native: Any, accesses: list[tuple[str, str, int, int]],
        args: list[tuple[int, int]], max_pages: int) -> None:
    m = decode(_module(accesses, max_pages))
    wasm = WasmBackend().compile(m, None, CompileOptions(cache=False)).instantiate()
    nat = native.compile(m, None, OPTS).instantiate()
    # With q = 0 every base is p: p where each access ends just inside or just outside.
    ends = {SIZE - (c + offset + WIDTHS[op]) + d for op, _f, c, offset in accesses
            for d in (0, 1)}
    for p, q in args + [(p & 0xFFFFFFFF, 0) for p in sorted(ends)]:
        (n, n_digest), (w, w_digest) = _outcome(nat, p, q), _outcome(wasm, p, q)
        assert n_digest == w_digest, (p, q)  # memory, after the stores before any trap
        at = _first_out_of_bounds(m, accesses, p, q)
        if at is None:
            assert n == w, (p, q)
        else:
            assert n == ("out of bounds memory access", Location(0, at)), (p, q)
            assert isinstance(w, tuple) and w[0] == n[0], (p, q)
    nat.close()
    wasm.close()


def test_the_generated_runs_are_merged(native: Any, monkeypatch: Any) -> None:
    """The property above exercises merged checks (not only the exact copy): the lowering
    emits the run of a generated module in two copies, with three merged checks."""
    from probes.backends.native import lower

    m = decode(_module([("i32.store", "p", 0, 0), ("i32.load", "p", 0, 4),
                        ("i64.load", "pq", -8, 0), ("i32.store8", "pq", 4, 0),
                        ("i32.load", "t", 0, 0), ("i32.load16_s", "t", 4, 0)], 2))
    lowered: list[guards.Run] = []
    original = lower._FuncLowering.lower_run

    def spy(self: Any, run: guards.Run, covered: Any = ()) -> None:
        if not covered:  # not the digest's loop, checked once (lower_loop)
            lowered.append(run)
        original(self, run, covered)

    monkeypatch.setattr(lower._FuncLowering, "lower_run", spy)
    nat = native.compile(m, None, OPTS).instantiate()
    assert [len(run.groups) for run in lowered] == [3]
    assert nat.call("f", 100, 3) == WasmBackend().compile(
        m, None, CompileOptions(cache=False)).instantiate().call("f", 100, 3)
    nat.close()


def test_functions_with_probes_keep_a_check_per_access_outside_counted_loops(
        native: Any, monkeypatch: Any) -> None:
    from probes.backends.native import lower
    from probes.monitors import create
    from probes.probeset import ProbeSet

    m = decode(_module([("i32.load", "p", 0, 0), ("i32.load", "p", 0, 4)], 1))
    calls: list[int] = []
    original = lower._FuncLowering.lower_run
    monkeypatch.setattr(lower._FuncLowering, "lower_run",
                        lambda self, *args: (calls.append(self.index), original(self, *args)))
    native.compile(m, None, OPTS)
    assert sorted(set(calls)) == [0, 1]  # f's run, digest's counted loop
    calls.clear()
    ps = ProbeSet(m)
    create("icount").attach(m, ps)
    native.compile(m, ps, OPTS)
    assert calls == [1]  # digest's loop, checked once (lower_loop), counters and all


def test_globals_keep_the_operand_stack_in_step(native: Any) -> None:
    """global.get pushes and global.set pops: the load's address below is b + g, not the
    a + b that the simulation saw when it skipped global.get (stop 13 to 16: native
    read address 0, not 100)."""
    m = decode(assemble("""(module (memory 1) (global $g (mut i32) (i32.const 100))
      (data (i32.const 100) "\\07")
      (func (export "f") (param $a i32) (param $b i32) (result i32)
        (global.set $g (i32.add (global.get $g) (local.get $a)))
        (i32.add (i32.add (local.get $a) (i32.load (i32.add (local.get $b) (global.get $g))))
                 (i32.load offset=4 (i32.add (local.get $a) (local.get $b))))))"""))
    # a + b reaches one address (the second load's): no group worth a copy
    assert guards.find_runs(m.functions[0], {0, 1}, {0: 65536}) == {}
    wasm = WasmBackend().compile(m, None, CompileOptions(cache=False)).instantiate()
    nat = native.compile(m, None, OPTS).instantiate()
    assert nat.call("f", 0, 0) == wasm.call("f", 0, 0) == 7
    nat.close()
    wasm.close()
