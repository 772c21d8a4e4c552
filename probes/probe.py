"""Probe kinds: what can be attached to a program location.

The first kinds are *intrinsic*: backends compile them inline (counter adds,
flag stores, buffer appends) and only the host-side bookkeeping lives here.
`Probe` itself is the general kind: arbitrary Python run through a host call,
with only the frame parts it declares in `Probe.reads` materialized.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .ir import Location, ProbeError

if TYPE_CHECKING:
    pass

__all__ = [
    "Probe", "FrameReads", "DynamicLoc", "Action", "CONTINUE", "CountProbe", "CoverageProbe",
    "OperandProbe", "TraceProbe", "ShadowStackProbe",
    "CallbackProbe",
]


@dataclass(frozen=True, slots=True)
class FrameReads:
    """The frame parts a probe's `fire` reads; only these are materialized."""

    locals: tuple[int, ...] = ()
    """Local indices (parameters first) to pass to the probe."""
    operands: int = 0
    """How many operand-stack values, counted from the top, to pass."""
    memory: bool = False
    """Whether the probe reads linear memory (through `DynamicLoc.read`)."""


NO_READS = FrameReads()


@dataclass(frozen=True, slots=True)
class Action:
    """What a probe asks of the program after firing: continue, or trap."""

    trap_reason: str | None = None
    """None to continue; a message to stop the program with a Trap."""

    @staticmethod
    def trap(reason: str) -> Action:
        return Action(reason)


CONTINUE = Action()
"""Go on executing (returning None from `fire` means the same)."""


class DynamicLoc:
    """The state a firing probe sees: where it is and the frame parts it asked for."""

    __slots__ = ("func", "pc", "_locals", "_operands", "_memory", "_reads")

    def __init__(self, func: int, pc: int, reads: FrameReads, locals_: Sequence[Any],
                 operands: Sequence[Any], memory: Callable[[int, int], bytes] | None) -> None:
        self.func = func
        """Function index."""
        self.pc = pc
        """Byte offset of the instruction in the function body (-1 for entry/exit)."""
        self._reads = reads
        self._locals = locals_
        self._operands = operands
        self._memory = memory

    @property
    def location(self) -> Location:
        return Location(self.func, self.pc)

    def local(self, i: int) -> Any:
        """Value of local ``i``; the probe must list ``i`` in ``reads.locals``."""
        try:
            return self._locals[self._reads.locals.index(i)]
        except ValueError:
            raise ProbeError(f"probe reads local {i} but did not declare it in "
                             f"reads.locals {self._reads.locals}") from None

    def operand(self, i: int = 0) -> Any:
        """Operand-stack value ``i`` from the top (0 = top of stack)."""
        if not 0 <= i < self._reads.operands:
            raise ProbeError(f"probe reads operand {i} but declared "
                             f"reads.operands={self._reads.operands}")
        return self._operands[-1 - i]

    def read(self, addr: int, size: int) -> bytes:
        """``size`` bytes of linear memory 0 at ``addr`` (needs ``reads.memory``)."""
        if self._memory is None:
            raise ProbeError("probe reads memory but did not declare reads.memory=True")
        if addr < 0 or size < 0:
            raise read_out_of_bounds(addr, size)
        return self._memory(addr, size)

    def read_i32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little", signed=True)

    def read_i64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little", signed=True)

    def __repr__(self) -> str:
        return f"<DynamicLoc func {self.func} pc {self.pc}>"


def read_out_of_bounds(addr: int, size: int) -> ProbeError:
    """The error of a `DynamicLoc.read` outside memory (every backend raises this one)."""
    return ProbeError(f"probe reads memory [{addr}, {addr + size}) out of bounds")


class Probe:
    """A probe running arbitrary Python when its location executes.

    Subclass and override `fire`; set the class attribute `reads` to the frame
    parts it needs. Return None/`CONTINUE` to go on, or `Action.trap(msg)`.
    Identity-compared: the same object may be inserted at several places.
    """

    reads: ClassVar[FrameReads] = NO_READS
    """Frame parts materialized for `fire`."""

    def fire(self, loc: DynamicLoc) -> Action | None:
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at 0x{id(self):x}>"


class CallbackProbe(Probe):
    """A `Probe` built from a function: ``CallbackProbe(fn, reads=...)``."""

    def __init__(self, fn: Callable[[DynamicLoc], Action | None],
                 reads: FrameReads = NO_READS) -> None:
        self.fn = fn
        self.reads = reads  # type: ignore[misc]  # per-instance override

    def fire(self, loc: DynamicLoc) -> Action | None:
        return self.fn(loc)


class _Intrinsic(Probe):
    """Base of the kinds backends compile inline. Values accumulate over every
    run the probe takes part in; `sources` are the live runs to read from."""

    def __init__(self) -> None:
        self._sources: list[Callable[[], Any]] = []

    def _bind(self, source: Callable[[], Any]) -> None:
        self._sources.append(source)


class CountProbe(_Intrinsic):
    """A 64-bit counter: how many times its location(s) executed."""

    def __init__(self) -> None:
        super().__init__()
        self._settled = 0

    @property
    def count(self) -> int:
        """Executions so far, over every run; readable at any time."""
        return self._settled + sum(src() for src in self._sources)

    def _settle(self, source: Callable[[], Any]) -> None:
        """A run ended: keep its final value and stop reading it."""
        self._settled += source()
        self._sources.remove(source)

    def fire(self, loc: DynamicLoc) -> None:  # the host-dispatched fallback
        self._settled += 1


class CoverageProbe(_Intrinsic):
    """Records whether its location ever executed, then removes itself."""

    def __init__(self) -> None:
        super().__init__()
        self._hit = False

    @property
    def hit(self) -> bool:
        if not self._hit:
            self._hit = any(src() for src in self._sources)
        return self._hit

    def _settle(self, source: Callable[[], Any]) -> None:
        self._hit = self._hit or bool(source())
        self._sources.remove(source)

    def fire(self, loc: DynamicLoc) -> None:
        self._hit = True


@dataclass(eq=False)
class OperandProbe(_Intrinsic):
    """Histogram of the value an instruction consumes.

    By instruction: ``br_if``/``if``: the condition as 0 (not taken) / 1
    (taken); ``br_table``: the target position (clamped to the default);
    ``call_indirect``: the table index; loads and stores: the 64 KiB page of
    the effective address.
    """

    histogram: dict[int, int] = field(default_factory=dict)
    """Value -> count, complete after the run."""

    def __post_init__(self) -> None:
        _Intrinsic.__init__(self)

    def values(self) -> dict[int, int]:
        """The histogram including live runs."""
        out = dict(self.histogram)
        for src in self._sources:
            for k, v in src().items():
                out[k] = out.get(k, 0) + v
        return {k: v for k, v in sorted(out.items()) if v}

    def _settle(self, source: Callable[[], Any]) -> None:
        for k, v in source().items():
            if v:
                self.histogram[k] = self.histogram.get(k, 0) + v
        self._sources.remove(source)

    def __hash__(self) -> int:
        return id(self)


class TraceProbe(_Intrinsic):
    """Appends an event per execution to a bounded ring buffer.

    Events are ``(location, value)`` where value is an operand (``depth`` 0:
    the top of stack, 1: the one below it, e.g. a store's address) when
    ``with_value`` (integers as unsigned, floats as their bits) and 0 otherwise;
    with ``address`` (and ``with_value``), loads and stores record their
    effective address.
    """

    def __init__(self, with_value: bool = False, limit: int = 1_000_000,
                 depth: int = 0, address: bool = False) -> None:
        super().__init__()
        if depth not in (0, 1):
            raise ProbeError("TraceProbe depth must be 0 (top of stack) or 1")
        self.with_value = with_value
        """Whether to record an operand's value."""
        self.depth = depth
        """Which operand: 0 the top of stack, 1 the one below."""
        self.address = address
        """At loads and stores: record the effective address (operand + offset)."""
        self.limit = limit
        """Keep at most this many events (the oldest are dropped)."""
        self.events: list[tuple[Location, int]] = []
        """Recorded events, oldest first."""
        self.dropped = 0
        """Events dropped because of `limit`."""

    def _append(self, events: list[tuple[Location, int]]) -> None:
        self.events.extend(events)
        extra = len(self.events) - self.limit
        if extra > 0:
            del self.events[:extra]
            self.dropped += extra


class ShadowStackProbe(_Intrinsic):
    """The stack of active functions, kept in probe memory by inline code (a push
    on entry, a pop on every normal exit). Insert the *same* object with
    `ProbeSet.insert_entry` and `ProbeSet.insert_exit` for every function.

    `stack()` may be called at any time, also from another thread while the
    program runs, which is what sampling profilers do.
    """

    def __init__(self, capacity: int = 4096) -> None:
        super().__init__()
        self.capacity = capacity
        """Frames recorded; deeper frames are counted but not stored."""
        self.on_bind: list[Callable[[ShadowStackProbe], None]] = []
        """Called when a run starts (the stack becomes readable)."""

    def _bind(self, source: Callable[[], Any]) -> None:
        super()._bind(source)
        for fn in self.on_bind:
            fn(self)

    def stack(self) -> list[int]:
        """Function indices of the active frames, outermost first (the live run)."""
        return list(self._sources[-1]()) if self._sources else []


def check_probe(p: object) -> Probe:
    if not isinstance(p, Probe):
        raise ProbeError(f"not a probe: {p!r} (subclass probes.Probe)")
    return p
