"""Graphviz DOT for CFGs and call graphs, annotated with counts.

    >>> open("main.dot", "w").write(cfg_dot(cfg(module, "main", profile), module))
    >>> open("calls.dot", "w").write(callgraph_dot(callgraph(module, profile, dynamic=True)))

Render with ``dot -Tsvg file.dot -o file.svg``.

CFG: a box per block with its pc range, count and instructions; edges
styled by kind (fallthrough black, branch blue, br_table purple with the
table position, loop back edges bold red, returns dashed) and labelled
with their counts; the pen width grows with the count; blocks that never
ran are grey, blocks no path reaches dashed.

Call graph: a node per function (with its entry count), an edge per
caller -> callee labelled with calls; recursive groups are drawn in a
cluster; indirect-only edges are dashed; functions never entered grey.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import networkx as nx

from ..ir.printer import format_instr

if TYPE_CHECKING:
    from ..ir import Module

__all__ = ["cfg_dot", "callgraph_dot", "quote"]

_EDGE_STYLE = {
    "fallthrough": "color=black",
    "branch": "color=blue",
    "br_table": "color=purple",
    "loop": "color=red, style=bold",
    "return": "color=gray40, style=dashed",
}


def quote(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _left_lines(lines: list[str]) -> str:
    """A label of left-aligned lines."""
    body = "".join(s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + "\\l"
                   for s in lines)
    return f'"{body}"'


def _width(n: int | None, top: int) -> float:
    if not n or top <= 0:
        return 1.0
    return round(1.0 + 4.0 * math.log1p(n) / math.log1p(top), 2)


def cfg_dot(g: nx.MultiDiGraph, module: Module | None = None, *,
            max_instrs: int | None = 12) -> str:
    """DOT text for a CFG graph from `probes.analyses.cfg`."""
    title = f"func {g.graph.get('func')} {g.graph.get('name', '')}".strip()
    out = [f"digraph {quote(title)} {{",
           f"  graph [label={quote(title)}, labelloc=t, fontname=monospace];",
           "  node [shape=box, fontname=monospace, fontsize=10];",
           "  edge [fontname=monospace, fontsize=9];"]
    profiled = g.graph.get("profiled", False)
    counts = [d.get("count") or 0 for _, _, d in g.edges(data=True)]
    top = max(counts, default=0)
    entry = g.graph.get("entry")
    for n, d in g.nodes(data=True):
        if d.get("exit"):
            label = "exit"
            if profiled and d.get("count") is not None:
                label += f"  count={d['count']}"
            out.append(f"  b{n} [label={quote(label)}, shape=ellipse];")
            continue
        block = d["block"]
        head = f"B{n}  pc {d['start_pc']}..{d['end_pc']}"
        attrs = []
        if profiled:
            c = d.get("count")
            head += f"  count={'?' if c is None else c}"
            if c == 0 or (c is None and d.get("covered") is False):
                attrs.append('style=filled, fillcolor="#dddddd"')
        if not g.pred[n] and n != entry:
            attrs.append("style=dashed")
        instrs = block.instrs if max_instrs is None else block.instrs[:max_instrs]
        body = [f"{ins.pc}: {format_instr(ins, module)}" for ins in instrs]
        if len(instrs) < len(block.instrs):
            body.append(f"... {len(block.instrs) - len(instrs)} more")
        extra = "".join(", " + a for a in attrs)
        out.append(f"  b{n} [label={_left_lines([head, *body])}{extra}];")
    for u, v, d in g.edges(data=True):
        parts = [_EDGE_STYLE.get(d["kind"], "color=black")]
        tags: list[str] = []
        if d.get("index") is not None:
            tags.append(f"[{d['index']}]")
        if profiled:
            c = d.get("count")
            tags.append("?" if c is None else str(c))
            parts.append(f"penwidth={_width(c, top)}")
        if tags:
            parts.append(f"label={quote(' '.join(tags))}")
        out.append(f"  b{u} -> b{v} [{', '.join(parts)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def callgraph_dot(g: nx.DiGraph, *, title: str = "call graph",
                  only_called: bool = False) -> str:
    """DOT text for a call graph from `probes.analyses.callgraph`.

    ``only_called`` drops functions without any edge (a static graph of a big
    module is mostly libc that nothing reaches)."""
    out = [f"digraph {quote(title)} {{",
           f"  graph [label={quote(title)}, labelloc=t, fontname=monospace, rankdir=LR];",
           "  node [shape=box, fontname=monospace, fontsize=10];",
           "  edge [fontname=monospace, fontsize=9];"]
    counts = [d.get("count") or 0 for _, _, d in g.edges(data=True)]
    top = max(counts, default=0)
    nodes = [n for n in g.nodes if not only_called or g.degree(n)]
    in_scc: dict[Any, int] = {}
    for i, comp in enumerate(g.graph.get("sccs", [])):
        for n in comp:
            in_scc[n] = i

    def node_line(n: Any) -> str:
        d = g.nodes[n]
        label = [f"{d.get('name', n)}", f"#{n}"]
        if d.get("entries") is not None:
            label.append(f"entries={d['entries']}")
        attrs = []
        if d.get("imported"):
            attrs.append("shape=component")
        if d.get("entered") is False or d.get("entries") == 0:
            attrs.append('style=filled, fillcolor="#dddddd"')
        if d.get("recursive"):
            attrs.append("color=red")
        extra = "".join(", " + a for a in attrs)
        return f"    f{n} [label={quote(' '.join(label))}{extra}];"

    for i, comp in enumerate(g.graph.get("sccs", [])):
        members = [n for n in comp if n in nodes or not only_called]
        if not members:
            continue
        out.append(f"  subgraph cluster_scc{i} {{")
        out.append(f"    label={quote(f'recursive group {i}')}; color=red; style=dashed;")
        out.extend(node_line(n) for n in members)
        out.append("  }")
    out.extend(node_line(n)[2:] for n in nodes if n not in in_scc)
    for u, v, d in g.edges(data=True):
        parts = []
        if d.get("kind") == "indirect":
            parts.append("style=dashed")
        if "count" in d:
            parts.append(f"label={quote(str(d['count']))}")
            parts.append(f"penwidth={_width(d['count'], top)}")
            if not d["count"]:
                parts.append("color=gray60")
        out.append(f"  f{u} -> f{v}{' [' + ', '.join(parts) + ']' if parts else ''};")
    out.append("}")
    return "\n".join(out) + "\n"
