"""profile: a sampled calling-context tree with time.

Inline code keeps a shadow stack of active functions in probe memory (a push
per call, a pop per return: no host call); a timer thread samples it. Each
sample adds the interval to the time of every node on the sampled path
(inclusive) and to its last node (self). Call counts per function are exact
(an entry counter per function).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..ir import Location, Module, ProbeError
from ..probe import CountProbe, ShadowStackProbe
from ..probeset import ENTRY, ProbeSet
from ..profile import ProfileData
from . import Monitor, option, register
from ._util import func_label, pct, table


@register
@dataclass
class ProfileMonitor(Monitor):
    name = "profile"
    help = "calling-context tree with time (sampled shadow stack) and exact call counts"

    interval_ms: float = option(1.0, "sampling interval in milliseconds")
    top: int = option(15, "functions to list")
    _stack: ShadowStackProbe = field(default_factory=ShadowStackProbe, repr=False)
    _entries: dict[int, CountProbe] = field(default_factory=dict, repr=False)
    _samples: dict[tuple[int, ...], int] = field(default_factory=dict, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _elapsed: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.interval_ms <= 60_000:
            raise ProbeError("profile: interval_ms must be positive and at most 60000 "
                             "(one minute)")

    def attach(self, module: Module, probes: ProbeSet) -> None:
        for f in module.functions:
            probes.insert_entry(f.index, self._stack)
            probes.insert_exit(f.index, self._stack)
            self._entries[f.index] = probes.insert(Location(f.index, ENTRY), CountProbe())
        self._stack.on_bind.append(self._start)

    def _start(self, probe: ShadowStackProbe) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="probes-profile",
                                        daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        interval = self.interval_ms / 1000
        start = time.perf_counter()
        samples = self._samples
        while not self._stop.wait(interval):
            path = tuple(self._stack.stack())
            if path:
                samples[path] = samples.get(path, 0) + 1
        self._elapsed += time.perf_counter() - start

    def collect(self, profile: ProfileData) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        total = sum(self._samples.values())
        ns_per_sample = self._elapsed * 1e9 / total if total else 0.0
        for path, n in self._samples.items():
            for depth in range(1, len(path) + 1):
                node = profile.cct.setdefault(path[:depth], {})
                node["samples"] = node.get("samples", 0) + n
                node["total_ns"] = node.get("total_ns", 0.0) + n * ns_per_sample
            leaf = profile.cct[path]
            leaf["self_samples"] = leaf.get("self_samples", 0) + n
            leaf["self_ns"] = leaf.get("self_ns", 0.0) + n * ns_per_sample
        for func, p in self._entries.items():
            if p.count:
                profile.entries[func] = p.count  # the same data whichever monitor sets it
        self._samples = {}
        self._elapsed = 0.0

    def report(self, profile: ProfileData, module: Module) -> str:
        self_ns: dict[int, float] = {}
        total_ns: dict[int, float] = {}
        for path, node in profile.cct.items():
            f = path[-1]
            self_ns[f] = self_ns.get(f, 0.0) + node.get("self_ns", 0.0)
            if f not in path[:-1]:  # count recursive frames once
                total_ns[f] = total_ns.get(f, 0.0) + node.get("total_ns", 0.0)
        all_ns = sum(self_ns.values())
        samples = sum(int(n.get("self_samples", 0)) for n in profile.cct.values())
        rows = [(func_label(module, f), f"{t / 1e6:.1f}", pct(int(t), int(all_ns)),
                 f"{total_ns.get(f, 0.0) / 1e6:.1f}", profile.entries.get(f, 0))
                for f, t in sorted(self_ns.items(), key=lambda kv: -kv[1])[:self.top]]
        head = (f"profile: {samples} samples every {self.interval_ms} ms, "
                f"{len(profile.cct)} calling contexts, "
                f"{sum(profile.entries.values())} calls")
        if not rows:
            return head
        return head + "\n" + table(rows, ("function", "self ms", "self", "total ms", "calls"))
