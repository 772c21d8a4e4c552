"""Counted loops checked once (guards.find_loops, lower.lower_loop): the loops found, and
that a loop emitted twice (unchecked when its accesses in the first and the last
iteration are in bounds, exact otherwise) traps at the same instruction, in the same
iteration, with the same stores done before it, as Wasm requires."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from probes.backends.base import CompileOptions
from probes.backends.native import guards
from probes.backends.wasm import WasmBackend
from probes.ir import Location, Trap, decode

from ..conftest import assemble
from .test_merged_checks import DIGEST, SIZE, WIDTHS, _s32, access_at

OPTS = CompileOptions(cache=False, opt_level=2)
M32 = 0xFFFFFFFF


def _loops(body: str, locals_: str = "(local $q i32) (local $t i32)") -> list[guards.Loop]:
    m = decode(assemble(f"""(module (memory 1)
      (func (param $p i32) (param $i i32) (param $n i32) {locals_} {body}))"""))
    f = m.functions[0]
    return list(guards.find_loops(f, {0, 1, 2, 3, 4}, {0: 65536}).values())


def test_the_loops_compilers_emit_are_counted() -> None:
    # sha.c's message schedule: w[i] from w[i-16], w[i-15], ..., i += 4 until 192
    (loop,) = _loops("""
        (loop $l
          (i32.store offset=64 (local.tee $q (i32.add (local.get $p) (local.get $i)))
            (i32.add (i32.load (local.get $q)) (i32.load offset=4 (local.get $q))))
          (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 4)))
                            (i32.const 192))))""")
    assert (loop.iv, loop.step, loop.exit, loop.bound) == (1, 4, "ne", ((), 192))
    (g,) = loop.groups
    assert (g.base, g.lo, g.hi, loop.strides) == (((0, 1), (1, 1)), 0, 68, [4])
    # matmul.c: a counter running up to 0 and a pointer moving with it
    (loop,) = _loops("""
        (loop $l
          (f64.store (local.get $q) (f64.load offset=8 (local.get $q)))
          (local.set $q (i32.add (local.get $q) (i32.const 3072)))
          (br_if $l (local.tee $i (i32.add (local.get $i) (i32.const 16)))))""")
    assert (loop.iv, loop.step, loop.exit, loop.bound) == (1, 16, "ne", ((), 0))
    assert ([g.base for g in loop.groups], loop.strides) == ([((3, 1),)], [3072])
    # nbody.c: counting down, the bound on the left; an invariant base is covered too
    (loop,) = _loops("""
        (loop $l
          (i32.store (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3)))
                     (i32.load offset=4 (local.get $n)))
          (br_if $l (i32.ne (i32.const 0)
                            (local.tee $i (i32.add (local.get $i) (i32.const -1))))))""")
    assert (loop.step, loop.exit) == (-1, "ne")
    assert sorted(zip([g.base for g in loop.groups], loop.strides, strict=True)) == [
        (((0, 1), (1, 8)), -8), (((2, 1),), 0)]
    # a bound in a local, unsigned
    (loop,) = _loops("""
        (loop $l
          (i32.store8 (i32.add (local.get $p) (local.get $i)) (i32.const 1))
          (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 3)))
                              (local.get $n))))""")
    assert (loop.exit, loop.bound, loop.strides) == ("lt_u", (((2, 1),), 0), [3])


def test_a_coverage_flag_between_the_exit_compare_and_br_if_is_no_obstacle() -> None:
    """The weaver stores a block's coverage flag just before its branch, after the
    compare that decides it (here into memory 1, the state)."""
    m = decode(assemble("""(module (memory 1) (memory 1)
      (func (param $p i32) (param $i i32) (param $n i32)
        (loop $l
          (i32.store (i32.add (local.get $p) (local.get $i)) (i32.const 0))
          (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 4))) (local.get $n))
          (i32.store8 offset=3 (i32.const 0) (i32.const 1))
          (br_if $l))))"""))
    (loop,) = guards.find_loops(m.functions[0], {0, 1, 2}, {0: 65536}).values()
    assert (loop.exit, loop.step, loop.bound) == ("lt_u", 4, (((2, 1),), 0))
    assert [g.base for g in loop.groups] == [((0, 1), (1, 1))]


def test_loops_that_are_not_counted_keep_their_checks() -> None:
    def counted(update: str, cond: str = "(i32.ne (local.get $i) (local.get $n))",
                access: str = "(i32.load (i32.add (local.get $p) (local.get $i)))") -> bool:
        return bool(_loops(f"(loop $l (drop {access}) {update} (br_if $l {cond}))"))

    step = "(local.set $i (i32.add (local.get $i) (i32.const 1)))"
    assert counted(step)
    assert not counted("(local.set $i (i32.shl (local.get $i) (i32.const 1)))")  # not linear
    assert counted(step + "(local.set $n (i32.const 5))")  # the bound is 5 from here on
    assert not counted(step + "(local.set $n (i32.load (local.get $p)))")  # the bound moves
    assert not counted(step + "(local.set $n (i32.add (local.get $n) (i32.const 1)))")
    assert not counted(step, "(i32.lt_s (local.get $i) (local.get $i))")  # no bound
    assert not counted("(local.set $i (i32.add (local.get $i) (i32.const -1)))",
                       "(i32.lt_u (local.get $i) (local.get $n))")  # < while counting down
    assert not counted("(local.set $i (i32.add (local.get $i) (local.get $n)))")  # step
    assert not counted(step, access="(i32.load (i32.xor (local.get $p) (local.get $i)))")
    assert not counted(step + "(local.set $p (i32.load (local.get $p)))")  # base moves
    assert not counted(step + "(call 0 (local.get $p) (local.get $i) (local.get $n))")
    assert not _loops("""(loop $l (result i32) (drop (i32.load (local.get $p)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.ne (local.get $i) (local.get $n))) (i32.const 0)) drop""")


# Differential: a random loop of accesses through an invariant base, bases moving with
# the counter and a pointer moving on its own, called with counters and bounds chosen so
# that it ends, at the ends of memory and where 32-bit addresses wrap.

ADDRESS = {"p": "(local.get $p)",
           "pi": "(i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))",
           "i8": "(i32.mul (local.get $i) (i32.const 8))",
           "q": "(local.get $q)",
           "qi": "(i32.add (local.get $q) (local.get $i))"}
EXITS = {"ne": "(i32.ne {next} (local.get $n))",
         "ne_left": "(i32.ne (local.get $n) {next})",
         "nz": "{next}",
         "lt_u": "(i32.lt_u {next} (local.get $n))",
         "lt_s": "(i32.lt_s {next} (local.get $n))"}


def _module(accesses: list[tuple[str, str, int, int]], exit: str, step: int,
            qstep: int) -> bytes:
    body = " ".join(
        access_at(op, f"(i32.add {ADDRESS[form]} (i32.const {c}))" if c else ADDRESS[form],
                  off, k)
        for k, (op, form, c, off) in enumerate(accesses))
    cond = EXITS[exit].format(
        next=f"(local.tee $i (i32.add (local.get $i) (i32.const {step})))")
    return assemble(f"""(module (memory 1 2)
      (func (export "f") (param $p i32) (param $i i32) (param $n i32) (result i32)
            (local $q i32) (local $acc i32)
        (local.set $q (local.get $p))
        (loop $l
          {body}
          (local.set $q (i32.add (local.get $q) (i32.const {qstep})))
          (br_if $l {cond}))
        (local.get $acc))
      {DIGEST})""")


def _reference(m: Any, accesses: list[tuple[str, str, int, int]], exit: str, step: int,
               qstep: int, p: int, i: int, n: int) -> Any:
    """Where Wasm traps (the pc of the first access out of bounds), "done" when the loop
    ends in bounds, or None when it runs too long to test."""
    pcs = [ins.pc for ins in m.functions[0].instrs if ins.op.mem_bytes]
    q = p
    for _ in range(20000):
        bases = {"p": p, "pi": p + 4 * i, "i8": 8 * i, "q": q, "qi": q + i}
        for pc, (op, form, c, offset) in zip(pcs, accesses, strict=True):
            if ((bases[form] + c) & M32) + offset + WIDTHS[op] > SIZE:
                return pc
        q, i = (q + qstep) & M32, (i + step) & M32
        again = {"ne": i != n, "ne_left": i != n, "nz": i != 0, "lt_u": i < n,
                 "lt_s": _s32(i) < _s32(n)}[exit]
        if not again:
            return "done"
    return None


def _outcome(inst: Any, p: int, i: int, n: int) -> tuple[Any, int]:
    try:
        result: Any = inst.call("f", _s32(p), _s32(i), _s32(n))
    except Trap as t:
        result = (t.kind, t.location)
    return result, inst.call("digest")


ACCESS = st.tuples(st.sampled_from(sorted(WIDTHS)), st.sampled_from(sorted(ADDRESS)),
                   st.sampled_from([0, 4, 8, -4, -8, 64]),
                   st.sampled_from([0, 0, 4, 16, 60, 65500, 0xFFFFFFF0]))
EDGE = [0, 4, 8, 16, 1000, SIZE - 64, SIZE - 16, SIZE - 8, SIZE - 4, SIZE, 2**32 - 4,
        2**32 - 8, 2**31 - 4, 2**31]
START = [0, 1, 4, 100, 2000, 8000, 16380, 2**31 - 8, 2**31 - 1, 2**31 + 4, 2**32 - 16,
         2**32 - 1]


@st.composite
def _calls(draw: Any, exit: str, step: int) -> list[tuple[int | None, int, int]]:
    """(p, i, n): loops of a few iterations, ending exactly for != or one step off
    (those end by a trap); p None: at the end of memory (_at_the_edge)."""
    calls = []
    for _ in range(draw(st.integers(2, 6))):
        p = draw(st.one_of(st.none(), st.sampled_from(EDGE), st.integers(0, SIZE + 64),
                           st.integers(0, M32)))
        i = draw(st.one_of(st.sampled_from(START), st.integers(0, M32)))
        trips = draw(st.integers(1, 40))
        n = draw(st.one_of(st.just((i + step * trips + draw(st.sampled_from([0, 1])))
                                   & M32),
                           st.sampled_from(START)))
        if exit == "nz":
            i = (-step * trips) & M32
        calls.append((p, i, n))
    return calls


def _at_the_edge(reference: Callable[[int, int, int], Any], i: int, n: int) -> int:
    """The largest p in [0, SIZE] for which the loop from i to n stays in bounds (by
    bisection; the accesses through p reach further as p grows), or 0."""
    if reference(0, i, n) != "done":
        return 0
    lo, hi = 0, SIZE  # reference(lo, i, n) == "done"
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if reference(mid, i, n) == "done" else (lo, mid)
    return lo


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accesses=st.lists(ACCESS, min_size=1, max_size=8),
       exit_step=st.sampled_from(["ne", "ne_left", "nz", "lt_u", "lt_s"]).flatmap(
           lambda e: st.tuples(st.just(e), st.sampled_from(
               [1, 2, 4, 3] + ([-1, -4] if e.startswith("n") else [])))),
       qstep=st.sampled_from([0, 4, -8, 3072]), data=st.data())
def test_a_loop_traps_where_wasm_does_with_the_same_stores_done(
        native: Any, accesses: list[tuple[str, str, int, int]], exit_step: tuple[str, int],
        qstep: int, data: Any) -> None:
    exit, step = exit_step
    m = decode(_module(accesses, exit, step, qstep))
    if any(offset + WIDTHS[op] <= SIZE for op, _form, _c, offset in accesses):
        assert guards.find_loops(m.functions[0], {0, 1, 2, 3, 4}, {0: SIZE})

    reference = partial(_reference, m, accesses, exit, step, qstep)
    calls = []
    for p, i, n in data.draw(_calls(exit, step)):
        if p is None:
            p = _at_the_edge(reference, i, n)
            calls += [(p, i, n), (p + 1, i, n)]
        else:
            calls.append((p, i, n))
    calls = [c for c in calls if reference(*c) is not None]
    assume(calls)
    wasm = WasmBackend().compile(m, None, CompileOptions(cache=False)).instantiate()
    nat = native.compile(m, None, OPTS).instantiate()
    for p, i, n in calls:
        (got, got_digest), (want, want_digest) = _outcome(nat, p, i, n), _outcome(wasm, p, i, n)
        assert got_digest == want_digest, (p, i, n)  # memory, after the stores before a trap
        at = reference(p, i, n)
        if at == "done":
            assert got == want, (p, i, n)
        else:
            assert got == ("out of bounds memory access", Location(0, at)), (p, i, n)
            assert isinstance(want, tuple) and want[0] == got[0], (p, i, n)
    nat.close()
    wasm.close()


EDGES = [
    # != never met (3 does not divide 8 - 0): the loop runs until p + 4i leaves memory
    ([("i32.load", "pi", 0, 0)], "ne", 3, 0, [(0, 0, 8)]),
    # != met only after the counter wraps around (the bound is behind it)
    ([("i32.store", "pi", 0, 0)], "ne", 4, 0, [(0, 8, 4)]),
    # < whose counter wraps past the top before it reaches the bound
    ([("i32.load", "pi", 0, 0)], "lt_u", 4, 0, [(64, 2**32 - 16, 2**32 - 3)]),
    ([("i32.store16", "pi", 0, 0)], "lt_s", 4, 0, [(64, 2**31 - 16, 2**31 - 3)]),
    # the last iteration is the one that leaves memory, at its top end...
    ([("i32.store", "pi", 8, 0), ("i64.load", "q", 0, 16)], "ne", 1, 3072, [(None, 0, 10)]),
    ([("i32.load8_u", "pi", 0, 4)], "lt_u", 3, 0, [(None, 0, 10)]),
    ([("i32.load", "qi", 0, 0)], "lt_s", 2, 3072, [(None, 0, 7)]),
    # ...or below 0, counting down
    ([("i32.store", "pi", -8, 0)], "nz", -1, 0, [(0, 10, 0), (4, 10, 0), (8, 10, 0)]),
    ([("i64.store", "q", -4, 0)], "ne", 2, -8, [(64, 0, 40), (76, 0, 40), (84, 0, 40)]),
]


def _edge_calls(m: Any, accesses: list[tuple[str, str, int, int]], exit: str, step: int,
                qstep: int, calls: list[tuple[int | None, int, int]]
                ) -> list[tuple[int, int, int, Any]]:
    """(p, i, n, where Wasm traps or "done") for EDGES' calls; p None: the last p in
    bounds and the first out."""
    reference = partial(_reference, m, accesses, exit, step, qstep)
    out = []
    for p, i, n in calls:
        if p is None:
            edge = _at_the_edge(reference, i, n)
            assert reference(edge, i, n) == "done" != reference(edge + 1, i, n)
            out += [(edge, i, n, "done"), (edge + 1, i, n, reference(edge + 1, i, n))]
        else:
            out.append((p, i, n, reference(p, i, n)))
    assert all(at is not None for *_, at in out)
    return out


def test_loops_at_the_edges_of_their_checks(native: Any) -> None:
    """A loop one iteration too long for memory, or whose counter runs past its bound,
    wraps around, or only meets it after wrapping, takes the exact copy and traps in the
    iteration Wasm does (a loop checked for too few iterations would run unchecked)."""
    for accesses, exit, step, qstep, calls in EDGES:
        m = decode(_module(accesses, exit, step, qstep))
        assert guards.find_loops(m.functions[0], {0, 1, 2, 3, 4}, {0: SIZE})
        wasm = WasmBackend().compile(m, None, CompileOptions(cache=False)).instantiate()
        nat = native.compile(m, None, OPTS).instantiate()
        for p, i, n, at in _edge_calls(m, accesses, exit, step, qstep, calls):
            got, want = _outcome(nat, p, i, n), _outcome(wasm, p, i, n)
            assert got[1] == want[1], (accesses, p, i, n)  # memory
            if at == "done":
                assert got == want, (accesses, p, i, n)
            else:
                assert got[0] == ("out of bounds memory access", Location(0, at))
        nat.close()
        wasm.close()


def test_loops_at_the_edges_count_alike(native_run: Any, native_options: Any) -> None:
    """With probes woven into the loop (counters, coverage flags after the exit compare,
    branch profiles), the same loops give the wasm backend's profile, trap and value."""
    from .test_differential import comparable, trap_key

    for accesses, exit, step, qstep, calls in EDGES:
        wasm = _module(accesses, exit, step, qstep)
        for p, i, n, _at in _edge_calls(decode(wasm), accesses, exit, step, qstep, calls):
            args = (_s32(p), _s32(i), _s32(n))
            got = native_run(wasm, ["icount", "coverage", "branches"], backend="native",
                             invoke="f", args=args, options=native_options)
            want = native_run(wasm, ["icount", "coverage", "branches"], backend="wasm",
                              invoke="f", args=args)
            assert (got.value, trap_key(got.trap)) == (want.value, trap_key(want.trap))
            assert comparable(got.profile) == comparable(want.profile), (accesses, p, i, n)


def test_the_generated_loops_are_checked_once(native: Any, monkeypatch: Any) -> None:
    """The property above exercises loops checked once: the lowering emits the loop of
    a generated module through lower_loop, with every group covered."""
    from probes.backends.native import lower

    m = decode(_module([("i32.store", "pi", 0, 0), ("i32.load", "qi", -4, 16),
                        ("i64.load", "p", 0, 0)], "lt_s", 2, 3072))
    seen: list[tuple[int, int, int]] = []
    original = lower._FuncLowering.lower_loop

    def spy(self: Any, loop: guards.Loop, run: Any) -> None:
        seen.append((self.index, len(loop.groups), len(loop.run.groups)))
        original(self, loop, run)

    monkeypatch.setattr(lower._FuncLowering, "lower_loop", spy)
    nat = native.compile(m, None, OPTS).instantiate()
    assert seen == [(0, 3, 0), (1, 1, 0)]  # f's loop, digest's loop
    args = (64, 0, 100)
    want = WasmBackend().compile(m, None, CompileOptions(cache=False)).instantiate()
    assert _outcome(nat, *args) == _outcome(want, *args)
    nat.close()
