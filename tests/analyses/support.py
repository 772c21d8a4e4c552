"""Shared by the analyses tests: graph builders, a random-digraph strategy, and
the judges of the report formats (lcov record structure, the speedscope
file-format schema's required keys, the Chrome trace event structure)."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import networkx as nx
from hypothesis import strategies as st


def graph(edges: list[tuple[Hashable, Hashable]], entry: Hashable = 0,
          exit: Hashable | None = None) -> nx.DiGraph:
    g = nx.DiGraph(entry=entry, exit=exit)
    g.add_node(entry)
    if exit is not None:
        g.add_node(exit)
    g.add_edges_from(edges)
    return g


@st.composite
def digraphs(draw: st.DrawFn, max_nodes: int = 12) -> nx.DiGraph:
    n = draw(st.integers(1, max_nodes))
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
    edges = draw(st.lists(pairs, max_size=3 * n))
    # Mostly-connected: chain some nodes forward from the entry.
    chain = draw(st.lists(st.integers(1, max(1, n - 1)), max_size=n)) if n > 1 else []
    g = nx.DiGraph(entry=0, exit=n - 1)
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    prev = 0
    for c in chain:
        g.add_edge(prev, c)
        prev = c
    return g


def parse_lcov(text: str) -> dict[str, dict[str, Any]]:
    """SF -> {"DA": {line: n}, "FN": {name: line}, "FNDA": {name: n}, "BRDA": [...],
    and the summary numbers}; checks the record structure on the way."""
    files: dict[str, dict[str, Any]] = {}
    cur: dict[str, Any] | None = None
    for line in text.splitlines():
        tag, _, val = line.partition(":")
        if tag == "TN":
            assert cur is None
        elif tag == "SF":
            assert cur is None
            cur = files[val] = {"DA": {}, "FN": {}, "FNDA": {}, "BRDA": []}
        elif line == "end_of_record":
            assert cur is not None
            assert cur["LF"] == len(cur["DA"]) and cur["LH"] == sum(
                1 for n in cur["DA"].values() if n)
            assert cur["FNF"] == len(cur["FN"]) and cur["FNH"] == sum(
                1 for n in cur["FNDA"].values() if n)
            if cur["BRDA"]:
                assert cur["BRF"] == len(cur["BRDA"])
                assert cur["BRH"] == sum(1 for *_, t in cur["BRDA"] if t not in ("-", "0"))
            cur = None
        else:
            assert cur is not None, line
            if tag == "DA":
                ln, n = val.split(",")
                cur["DA"][int(ln)] = int(n)
            elif tag == "FN":
                ln, name = val.split(",", 1)
                cur["FN"][name] = int(ln)
            elif tag == "FNDA":
                n, name = val.split(",", 1)
                assert name in cur["FN"]
                cur["FNDA"][name] = int(n)
            elif tag == "BRDA":
                ln, block, branch, taken = val.split(",")
                assert taken == "-" or int(taken) >= 0
                cur["BRDA"].append((int(ln), int(block), int(branch), taken))
            else:
                assert tag in ("FNF", "FNH", "BRF", "BRH", "LF", "LH"), line
                cur[tag] = int(val)
    assert cur is None
    return files


def check_speedscope(doc: Any) -> None:
    """The required keys and types of https://www.speedscope.app/file-format-schema.json
    (FileFormat.File, Frame, SampledProfile/EventedProfile, ValueUnit)."""
    units = {"none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"}

    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    assert isinstance(doc, dict)
    assert {"$schema", "shared", "profiles"} <= doc.keys()
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert isinstance(doc["shared"], dict) and isinstance(doc["shared"].get("frames"), list)
    frames = doc["shared"]["frames"]
    for fr in frames:
        assert isinstance(fr, dict) and isinstance(fr.get("name"), str)
        assert set(fr) <= {"name", "file", "line", "col"}
        assert isinstance(fr.get("file", ""), str)
        assert number(fr.get("line", 0)) and number(fr.get("col", 0))
    assert isinstance(doc["profiles"], list) and doc["profiles"]
    for p in doc["profiles"]:
        assert p["type"] in ("sampled", "evented")
        assert {"type", "name", "unit", "startValue", "endValue"} <= p.keys()
        assert isinstance(p["name"], str) and p["unit"] in units
        assert number(p["startValue"]) and number(p["endValue"])
        if p["type"] == "sampled":
            assert {"samples", "weights"} <= p.keys()
            assert len(p["samples"]) == len(p["weights"])
            for stack in p["samples"]:
                assert all(isinstance(i, int) and 0 <= i < len(frames) for i in stack)
            assert all(number(w) for w in p["weights"])
        else:
            for ev in p["events"]:
                assert ev["type"] in ("O", "C") and number(ev["at"])
    for key, kind in (("name", str), ("exporter", str), ("activeProfileIndex", int)):
        if key in doc:
            assert isinstance(doc[key], kind)


def check_chrome(doc: Any) -> list[dict[str, Any]]:
    """The trace event format's JSON object form: events with name, ph, ts, pid,
    tid; B/E pairs matched per thread and properly nested; X with a dur."""
    assert isinstance(doc, dict) and isinstance(doc["traceEvents"], list)
    stacks: dict[tuple[int, int], list[str]] = {}
    last_ts: dict[tuple[int, int], float] = {}
    events = doc["traceEvents"]
    for ev in events:
        assert {"name", "ph", "pid", "tid"} <= ev.keys() and isinstance(ev["name"], str)
        assert ev["ph"] in ("B", "E", "X", "M", "i")
        if ev["ph"] == "M":
            continue
        key = (ev["pid"], ev["tid"])
        assert isinstance(ev["ts"], (int, float)) and ev["ts"] >= last_ts.get(key, 0)
        last_ts[key] = ev["ts"]
        if ev["ph"] == "B":
            stacks.setdefault(key, []).append(ev["name"])
        elif ev["ph"] == "E":
            assert stacks.get(key) and stacks[key].pop() == ev["name"]
        elif ev["ph"] == "X":
            assert ev["dur"] >= 0
    assert all(not s for s in stacks.values()), "unclosed B events"
    return events


@st.composite
def structured_code(draw: st.DrawFn, depth: int = 0, labels: int = 1) -> str:
    """Random structured control flow in WAT (blocks, loops, ifs, br, br_if,
    br_table to any enclosing label), for a function with one i32 parameter;
    every label takes no values, so any combination is valid."""
    parts = []
    for _ in range(draw(st.integers(0, 3 if depth < 4 else 1))):
        kind = draw(st.sampled_from(("nop", "block", "loop", "loop", "if", "br_if",
                                     "br_if", "br", "br_table")))
        if kind in ("block", "loop") and depth < 4:
            inner = draw(structured_code(depth + 1, labels + 1))
            parts.append(f"({kind} {inner})")
        elif kind == "if" and depth < 4:
            then = draw(structured_code(depth + 1, labels + 1))
            other = draw(structured_code(depth + 1, labels + 1))
            parts.append(f"(if (local.get 0) (then {then}) (else {other}))")
        elif kind == "br_if":
            parts.append(f"(br_if {draw(st.integers(0, labels - 1))} (local.get 0))")
        elif kind == "br" and draw(st.booleans()):
            parts.append(f"(br {draw(st.integers(0, labels - 1))})")
        elif kind == "br_table":
            targets = draw(st.lists(st.integers(0, labels - 1), min_size=1, max_size=4))
            parts.append(f"(br_table {' '.join(map(str, targets))} (local.get 0))")
        else:
            parts.append("(nop)")
    return " ".join(parts)
