"""probes: compiler-style dynamic instrumentation and profiling of WebAssembly.

    >>> import probes
    >>> m = probes.load("examples/sort.wasm")
    >>> probes.validate(m)
"""

from __future__ import annotations

import os as _os

# In a source checkout the sibling folders (ir/, backends/, ...) are our
# subpackages; installed, they sit inside this package. Make both work.
_here = _os.path.dirname(__file__)
if not _os.path.isdir(_os.path.join(_here, "ir")):
    __path__.append(_os.path.dirname(_here))  # type: ignore[name-defined]  # noqa: F821

from .api import run  # noqa: E402
from .ir import (  # noqa: E402
    DecodeError,
    LinkError,
    Location,
    Module,
    ProbeError,
    ProbesError,
    Trap,
    UnsupportedFeature,
    ValidationError,
    decode,
    encode,
    load,
    validate,
)
from .probe import (  # noqa: E402
    CONTINUE,
    Action,
    CallbackProbe,
    CountProbe,
    CoverageProbe,
    DynamicLoc,
    FrameReads,
    OperandProbe,
    Probe,
    ShadowStackProbe,
    TraceProbe,
)
from .probeset import ProbeSet  # noqa: E402
from .profile import ProfileData  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "load", "decode", "encode", "validate", "run", "Module", "Location", "ProbeSet", "Probe",
    "CountProbe", "CoverageProbe", "OperandProbe", "TraceProbe", "ShadowStackProbe",
    "CallbackProbe", "FrameReads", "DynamicLoc", "Action", "CONTINUE", "ProfileData",
    "ProbesError", "DecodeError", "ValidationError", "UnsupportedFeature", "LinkError", "Trap",
    "ProbeError",
]
