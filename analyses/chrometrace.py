"""Chrome trace event JSON (opens in Perfetto and chrome://tracing) from a trace.

    >>> doc = chrome_trace(profile, module)
    >>> json.dump(doc, open("trace.json", "w"))

The trace monitor records events without timestamps, so time here is the
event's position in the trace: one event is one microsecond of ``ts``.

* An *instruction* trace (``-m trace:instructions=true``) gives exact call
  nesting: the first instruction of a function runs once per call (an
  entry), and an event in a function below the top of the stack is a
  return to it. Each call becomes a ``B``/``E`` pair (a slice whose length
  is the instructions executed in the call, callees included).
* A *call* trace (the default: function entries only) says nothing of
  returns, so nesting would be a guess; each call becomes a one-tick
  complete event (``X``) in order instead.

Shape::

    {"traceEvents": [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 1, "args": {...}},
        {"name": "main", "cat": "wasm", "ph": "B", "ts": 12, "pid": 1, "tid": 1},
        {"name": "main", "cat": "wasm", "ph": "E", "ts": 90, "pid": 1, "tid": 1}, ...],
     "displayTimeUnit": "ns", "otherData": {"program": ..., "time": ..., ...}}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._common import func_name

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

__all__ = ["chrome_trace"]


def chrome_trace(profile: ProfileData, module: Module | None = None, *, pid: int = 1,
                 tid: int = 1) -> dict[str, Any]:
    """The trace event document (a dict for ``json.dump``). Raises ValueError
    when the profile holds no trace."""
    if not profile.trace:
        raise ValueError("the profile has no trace: collect one with the trace monitor "
                         "(-m trace, or -m trace:instructions=true for call nesting)")
    names: dict[int, str] = {}

    def name(f: int) -> str:
        n = names.get(f)
        if n is None:
            n = names[f] = func_name(module, f)
        return n

    first_pc: dict[int, int] = {}
    if module is not None:
        for fn in module.functions:
            if fn.instrs:
                first_pc[fn.index] = fn.instrs[0].pc
    pcs: dict[int, set[int]] = {}
    for loc, _ in profile.trace:
        pcs.setdefault(loc.func, set()).add(loc.pc)
    instruction_trace = any(len(s) > 1 for s in pcs.values()) or any(
        loc.pc != first_pc.get(loc.func, loc.pc) for loc, _ in profile.trace)

    base = {"pid": pid, "tid": tid}
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", **base,
         "args": {"name": profile.program or "wasm"}},
        {"name": "thread_name", "ph": "M", **base, "args": {"name": "wasm main"}},
    ]
    if instruction_trace and module is not None:
        stack: list[int] = []
        for ts, (loc, _) in enumerate(profile.trace):
            f = loc.func
            if loc.pc == first_pc.get(f):  # a call
                events.append({"name": name(f), "cat": "wasm", "ph": "B", "ts": ts, **base})
                stack.append(f)
                continue
            if stack and stack[-1] == f:
                continue
            if f in stack:  # returned to a caller
                while stack[-1] != f:
                    g = stack.pop()
                    events.append({"name": name(g), "cat": "wasm", "ph": "E", "ts": ts,
                                   **base})
                continue
            # A frame that began before the trace window: close what we have and
            # open it here.
            while stack:
                g = stack.pop()
                events.append({"name": name(g), "cat": "wasm", "ph": "E", "ts": ts, **base})
            events.append({"name": name(f), "cat": "wasm", "ph": "B", "ts": ts,
                           "args": {"began_before_trace": True}, **base})
            stack.append(f)
        end = len(profile.trace)
        while stack:
            g = stack.pop()
            events.append({"name": name(g), "cat": "wasm", "ph": "E", "ts": end, **base})
        nesting = "exact"
    else:
        for ts, (loc, _) in enumerate(profile.trace):
            events.append({"name": name(loc.func), "cat": "wasm", "ph": "X", "ts": ts,
                           "dur": 1, "args": {"pc": loc.pc}, **base})
        nesting = "none (function entries only)"
    return {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {
            "program": profile.program, "module_sha256": profile.module_sha256,
            "time": "trace event index (1 event = 1 us)", "nesting": nesting,
            "events": len(profile.trace), "dropped_before": profile.trace_dropped,
        },
    }
