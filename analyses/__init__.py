"""probes.analyses: graph analyses and reports over the IR and a ProfileData.

Analyses only read; they never run code.

    >>> from probes import analyses
    >>> g = analyses.cfg(module, "main", profile)        # networkx.MultiDiGraph
    >>> analyses.dominators(g), analyses.post_dominators(g)
    >>> analyses.loops(g)                                 # LoopForest
    >>> analyses.callgraph(module, profile)               # networkx.DiGraph
    >>> analyses.hot_paths(module, "main", profile)       # [HotPath]
    >>> analyses.dead_code(module, profile)               # DeadCode
    >>> analyses.source_map(module).position(loc)         # SourcePos (DWARF)

Reports, one module per format: `textreport`, `lcovreport`, `speedscope`,
`collapsed`, `chrometrace`, `dotreport`, `jsonreport`.
"""

from .calls import callgraph
from .deadcode import DeadCode, dead_code
from .dominance import dominators, post_dominators
from .flowgraph import cfg
from .hotpaths import HotPath, hot_call_paths, hot_paths
from .loopforest import Loop, LoopForest, loops
from .sourcemap import SourceMap, SourcePos, source_map

__all__ = [
    "cfg", "dominators", "post_dominators", "loops", "callgraph", "hot_paths",
    "hot_call_paths", "dead_code", "source_map",
    "Loop", "LoopForest", "HotPath", "DeadCode", "SourceMap", "SourcePos",
]
