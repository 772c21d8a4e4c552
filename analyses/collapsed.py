"""Collapsed stacks (the input of Brendan Gregg's flamegraph.pl and of
speedscope, inferno, ...) from the calling-context tree.

    >>> print(collapsed_report(profile, module))
    _start;__main_void;main;fib 1532
    _start;__main_void;main;fib;fib 1211

One line per sampled calling context: the frames root first, joined by
``;``, a space, and the samples taken in that context (its self samples).
Frame names have ``;`` and whitespace replaced, as the format requires.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._common import func_name

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData

__all__ = ["collapsed_report"]

_BAD = re.compile(r"[;\s]+")


def collapsed_report(profile: ProfileData, module: Module | None = None) -> str:
    """``frame;frame;frame count`` lines. Raises ValueError without a
    calling-context tree."""
    if not profile.cct:
        raise ValueError("the profile has no calling-context tree: collect one with "
                         "the profile monitor (-m profile)")
    names: dict[int, str] = {}

    def name(f: int) -> str:
        n = names.get(f)
        if n is None:
            n = names[f] = _BAD.sub("_", func_name(module, f)) or f"func{f}"
        return n

    lines = []
    for path, node in sorted(profile.cct.items()):
        n = int(node.get("self_samples", 0))
        if n > 0:
            lines.append(f"{';'.join(name(f) for f in path)} {n}")
    return "\n".join(lines) + ("\n" if lines else "")
