"""speedscope JSON (https://www.speedscope.app/file-format-schema.json) from the
calling-context tree.

    >>> doc = speedscope_report(profile, module)
    >>> json.dump(doc, open("profile.speedscope.json", "w"))

One ``sampled`` profile: a sample per calling context that was sampled
(its stack of frame indices, root first), weighted by the time sampled in
that context (``self_ns``, unit ``nanoseconds``). Frames are functions,
with their source file and line when the module has DWARF::

    {"$schema": "https://www.speedscope.app/file-format-schema.json",
     "shared": {"frames": [{"name": "main", "file": "cov.c", "line": 51}, ...]},
     "profiles": [{"type": "sampled", "name": "...", "unit": "nanoseconds",
                   "startValue": 0, "endValue": 1234567,
                   "samples": [[0, 3], [0, 3, 4]], "weights": [1000, 2000]}],
     "name": "...", "activeProfileIndex": 0, "exporter": "probes 0.1.0"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._common import func_name

if TYPE_CHECKING:
    from ..ir import Module
    from ..profile import ProfileData
    from .sourcemap import SourceMap

__all__ = ["SCHEMA", "speedscope_report"]

SCHEMA = "https://www.speedscope.app/file-format-schema.json"
"""The ``$schema`` value speedscope recognises its files by."""


def speedscope_report(profile: ProfileData, module: Module | None = None,
                      sm: SourceMap | None = None) -> dict[str, Any]:
    """The speedscope document (a dict for ``json.dump``). Raises ValueError
    when the profile has no calling-context tree."""
    from .. import __version__

    if not profile.cct:
        raise ValueError("the profile has no calling-context tree: collect one with "
                         "the profile monitor (-m profile)")
    frames: list[dict[str, Any]] = []
    index: dict[int, int] = {}

    def frame(f: int) -> int:
        i = index.get(f)
        if i is None:
            i = index[f] = len(frames)
            fr: dict[str, Any] = {"name": func_name(module, f)}
            if sm is not None and sm.kind == "dwarf":
                p = sm.function_position(f)
                if p is not None:
                    fr["file"] = p.file
                    fr["line"] = p.line
            frames.append(fr)
        return i

    samples: list[list[int]] = []
    weights: list[float] = []
    ns_known = any("self_ns" in n for n in profile.cct.values())
    for path, node in sorted(profile.cct.items()):
        w = node.get("self_ns", 0.0) if ns_known else node.get("self_samples", 0)
        if not w:
            continue
        samples.append([frame(f) for f in path])
        weights.append(round(w, 3) if isinstance(w, float) else w)
    name = profile.program or "probes profile"
    return {
        "$schema": SCHEMA,
        "shared": {"frames": frames},
        "profiles": [{
            "type": "sampled", "name": name,
            "unit": "nanoseconds" if ns_known else "none",
            "startValue": 0, "endValue": round(sum(weights), 3),
            "samples": samples, "weights": weights,
        }],
        "name": name, "activeProfileIndex": 0, "exporter": f"probes {__version__}",
    }
