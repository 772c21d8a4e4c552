"""probes.ir: the program representation.

Decode, validate, inspect and re-encode WebAssembly modules. The IR knows
nothing of probes; everything above it reads these objects.
"""

from .decoder import decode
from .encoder import encode
from .errors import (
    DecodeError,
    LinkError,
    ProbeError,
    ProbesError,
    Trap,
    UnsupportedFeature,
    ValidationError,
)
from .loader import load, load_bytes
from .location import Location
from .module import Function, Instr, Module
from .opcodes import OPCODES, OpInfo
from .types import FuncType, ValType
from .validator import operand_stacks, validate

__all__ = [
    "decode", "encode", "validate", "operand_stacks", "load", "load_bytes",
    "Module", "Function", "Instr", "Location", "OpInfo", "OPCODES", "FuncType", "ValType",
    "ProbesError", "DecodeError", "ValidationError", "UnsupportedFeature", "LinkError", "Trap",
    "ProbeError",
]
