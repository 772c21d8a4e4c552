"""The Module model: an immutable-by-convention program plus lazy function bodies.

Values (types, imports, exports, ...) are frozen dataclasses. Functions and
instructions are identity-compared objects. Sections the decoder read keep
their original bytes; the encoder copies a section verbatim while its
contents are unchanged, and a function body verbatim while nobody replaced it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .location import Location
from .opcodes import OpInfo
from .types import FuncType, GlobalType, MemoryType, TableType, ValType

if TYPE_CHECKING:
    from .names import Names

__all__ = [
    "Instr", "Function", "Import", "Export", "Global", "Elem", "Data", "CustomSection",
    "Module", "ConstExpr", "SECTION_NAMES", "EXTERN_KINDS",
]

SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
    7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount",
}
"""Section id -> name."""

SECTION_ORDER = (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 10, 11)
"""The order standard sections must appear in."""

EXTERN_KINDS = ("func", "table", "memory", "global")
"""Import/export kind byte -> name."""


class Instr:
    """One instruction. Identity-compared; ``pc`` names it in the original body."""

    __slots__ = ("op", "imm", "pc")

    def __init__(self, op: OpInfo, imm: Any = None, pc: int = -1) -> None:
        self.op = op
        """The opcode table row."""
        self.imm = imm
        """Decoded immediate(s): None, a single value, or a tuple (see opcodes)."""
        self.pc = pc
        """Offset from the start of the function body, or -1 for new code."""

    @property
    def name(self) -> str:
        return self.op.name

    def __repr__(self) -> str:
        imm = "" if self.imm is None else f" {self.imm!r}"
        return f"<{self.pc}: {self.op.name}{imm}>"


ConstExpr = tuple  # tuple[Instr, ...] ending with `end`; kept loose for speed


class Function:
    """A function defined in the module (imports are `Import`s)."""

    __slots__ = ("index", "type_index", "_local_groups", "_instrs", "_raw", "body_offset",
                 "_decode", "_local_starts")

    def __init__(self, index: int, type_index: int, raw: bytes | None = None,
                 body_offset: int = 0,
                 decode: Callable[[Function], tuple[list[tuple[int, ValType]], list[Instr]]]
                 | None = None) -> None:
        self.index = index
        """Index in the function index space."""
        self.type_index = type_index
        """Index of its signature in the type section."""
        self._raw = raw
        self.body_offset = body_offset
        """Module offset of the body's first byte (its local declarations)."""
        self._decode = decode
        self._local_groups: list[tuple[int, ValType]] | None = None
        self._instrs: list[Instr] | None = None
        self._local_starts: list[int] | None = None

    # -- lazily decoded parts ------------------------------------------------
    def _ensure(self) -> None:
        if self._instrs is None:
            assert self._decode is not None
            self._local_groups, self._instrs = self._decode(self)

    @property
    def local_groups(self) -> list[tuple[int, ValType]]:
        """Declared locals as (count, type) runs, as in the binary."""
        self._ensure()
        assert self._local_groups is not None
        return self._local_groups

    @property
    def instrs(self) -> list[Instr]:
        """The body's instructions, ending with the final ``end``. Do not mutate:
        assign a new list with `replace_body` so the encoder knows."""
        self._ensure()
        assert self._instrs is not None
        return self._instrs

    @property
    def decoded(self) -> bool:
        """Whether the body has been decoded yet."""
        return self._instrs is not None

    @property
    def raw(self) -> bytes | None:
        """The original body bytes (locals + code), or None once replaced."""
        return self._raw

    def replace_body(self, instrs: list[Instr],
                     local_groups: list[tuple[int, ValType]] | None = None) -> None:
        """Give the function new code; the encoder will re-encode it."""
        if local_groups is None:
            local_groups = self.local_groups
        self._instrs = list(instrs)
        self._local_groups = list(local_groups)
        self._local_starts = None
        self._raw = None

    @property
    def num_locals(self) -> int:
        """Declared locals, excluding parameters."""
        return sum(n for n, _ in self.local_groups)

    def local_type(self, params: Sequence[ValType], i: int) -> ValType | None:
        """Type of local ``i`` (parameters first), or None when out of range."""
        if i < len(params):
            return params[i]
        i -= len(params)
        if self._local_starts is None:
            starts, total = [], 0
            for n, _ in self.local_groups:
                starts.append(total)
                total += n
            starts.append(total)
            self._local_starts = starts
        starts = self._local_starts
        if i >= starts[-1]:
            return None
        return self.local_groups[bisect.bisect_right(starts, i) - 1][1]

    def __repr__(self) -> str:
        return f"<Function {self.index} type {self.type_index}>"


@dataclass(frozen=True, slots=True)
class Import:
    """An imported function, table, memory or global."""

    module: str
    """Import module name."""
    name: str
    """Import field name."""
    kind: str
    """``func``, ``table``, ``memory`` or ``global``."""
    desc: int | TableType | MemoryType | GlobalType
    """Type index for functions, the type otherwise."""


@dataclass(frozen=True, slots=True)
class Export:
    """An exported item."""

    name: str
    """Export name."""
    kind: str
    """``func``, ``table``, ``memory`` or ``global``."""
    index: int
    """Index in that kind's index space."""


@dataclass(frozen=True, slots=True, eq=False)
class Global:
    """A global defined in the module."""

    type: GlobalType
    """Value type and mutability."""
    init: tuple[Instr, ...]
    """Constant initializer expression, ending with ``end``."""


@dataclass(frozen=True, slots=True, eq=False)
class Elem:
    """An element segment."""

    mode: str
    """``active``, ``passive`` or ``declarative``."""
    elem_type: ValType
    """``funcref`` or ``externref``."""
    funcs: tuple[int, ...] | None
    """Function indices, for the index-list encodings."""
    exprs: tuple[tuple[Instr, ...], ...] | None
    """Initializer expressions, for the expression encodings."""
    table: int = 0
    """Target table, for active segments."""
    offset: tuple[Instr, ...] | None = None
    """Offset expression, for active segments."""
    flags: int = 0
    """The binary encoding variant (0-7), kept so re-encoding is faithful."""

    def __len__(self) -> int:
        return len(self.funcs if self.funcs is not None else self.exprs or ())


@dataclass(frozen=True, slots=True, eq=False)
class Data:
    """A data segment."""

    mode: str
    """``active`` or ``passive``."""
    init: bytes
    """The bytes."""
    memory: int = 0
    """Target memory, for active segments."""
    offset: tuple[Instr, ...] | None = None
    """Offset expression, for active segments."""
    flags: int = 0
    """The binary encoding variant (0-2)."""


@dataclass(frozen=True, slots=True, eq=False)
class CustomSection:
    """A custom section, kept verbatim."""

    name: str
    """Section name (``name``, ``.debug_line``, ``producers`` ...)."""
    data: bytes
    """Payload after the name."""
    after: int = 0
    """Id of the standard section it followed (0: at the start), for placement."""
    lebs: tuple[bytes, bytes] = field(default=(b"", b""), compare=False, repr=False)
    """The section-size and name-length LEB128s as read (they may be padded)."""


@dataclass
class RawSection:
    """What the decoder saw of one standard section, for verbatim re-emission."""

    id: int
    """Section id."""
    payload: bytes
    """Payload bytes as read."""
    snapshot: tuple[Any, ...]
    """The model objects decoded from it; unchanged objects mean unchanged bytes."""
    size_leb: bytes = b""
    """The section-size LEB128 as read (it may be padded)."""


@dataclass(eq=False)
class Module:
    """A WebAssembly module."""

    types: list[FuncType] = field(default_factory=list)
    """The type section."""
    imports: list[Import] = field(default_factory=list)
    """Imports, in order."""
    functions: list[Function] = field(default_factory=list)
    """Functions defined here (their `index` counts imported functions first)."""
    tables: list[TableType] = field(default_factory=list)
    """Tables defined here."""
    memories: list[MemoryType] = field(default_factory=list)
    """Memories defined here."""
    globals: list[Global] = field(default_factory=list)
    """Globals defined here."""
    exports: list[Export] = field(default_factory=list)
    """Exports, in order."""
    start: int | None = None
    """The start function, if any."""
    elems: list[Elem] = field(default_factory=list)
    """Element segments."""
    datas: list[Data] = field(default_factory=list)
    """Data segments."""
    data_count: int | None = None
    """The data count section's value, when present."""
    customs: list[CustomSection] = field(default_factory=list)
    """Custom sections, in order."""
    raw_sections: dict[int, RawSection] = field(default_factory=dict)
    """Original bytes of decoded standard sections (id -> RawSection)."""
    code_offset: int = 0
    """Module offset of the code section's payload (DWARF addresses count from it)."""
    size: int = 0
    """Size in bytes of the binary this was decoded from."""
    _names: Names | None = field(default=None, repr=False)

    # -- index spaces -------------------------------------------------------------
    def imports_of(self, kind: str) -> list[Import]:
        return [i for i in self.imports if i.kind == kind]

    @property
    def num_imported_funcs(self) -> int:
        return sum(1 for i in self.imports if i.kind == "func")

    @property
    def num_funcs(self) -> int:
        return self.num_imported_funcs + len(self.functions)

    def func_type(self, func: int) -> FuncType:
        """Signature of function ``func`` (function index space)."""
        n = self.num_imported_funcs
        if func < n:
            desc = self.imports_of("func")[func].desc
            assert isinstance(desc, int)
            return self.types[desc]
        return self.types[self.functions[func - n].type_index]

    def function(self, func: int) -> Function:
        """The defined function at index ``func``; KeyError for imports."""
        n = self.num_imported_funcs
        if not n <= func < n + len(self.functions):
            raise KeyError(f"function {func} is not defined in this module")
        return self.functions[func - n]

    def all_tables(self) -> list[TableType]:
        """Tables in index-space order, imports first."""
        return [i.desc for i in self.imports if i.kind == "table"] + self.tables  # type: ignore

    def all_memories(self) -> list[MemoryType]:
        """Memories in index-space order, imports first."""
        return [i.desc for i in self.imports if i.kind == "memory"] + self.memories  # type: ignore

    def all_globals(self) -> list[GlobalType]:
        """Global types in index-space order, imports first."""
        return ([i.desc for i in self.imports if i.kind == "global"]  # type: ignore
                + [g.type for g in self.globals])

    def funcs_named_by_data(self) -> set[int]:
        """Functions that element segments or global initializers name (the
        ``ref.func`` in function bodies are not scanned here)."""
        out: set[int] = set()
        for el in self.elems:
            if el.funcs is not None:
                out.update(el.funcs)
            for expr in el.exprs or ():
                out.update(i.imm for i in expr if i.op.name == "ref.func")
        for gl in self.globals:
            out.update(i.imm for i in gl.init if i.op.name == "ref.func")
        return out

    # -- names and locations -------------------------------------------------------
    @property
    def names(self) -> Names:
        """Names from the ``name`` custom section (empty when absent or broken)."""
        if self._names is None:
            from .names import parse_names
            self._names = parse_names(self)
        return self._names

    def func_name(self, func: int) -> str | None:
        """The function's debug name, else its export or import name, else None."""
        name = self.names.functions.get(func)
        if name is not None:
            return name
        for e in self.exports:
            if e.kind == "func" and e.index == func:
                return e.name
        if func < self.num_imported_funcs:
            imp = self.imports_of("func")[func]
            return f"{imp.module}.{imp.name}"
        return None

    def resolve_func(self, spec: str) -> int:
        """A function index from a number, a debug name or an export name."""
        try:
            func = int(spec, 0)
        except ValueError:
            for idx, name in self.names.functions.items():
                if name == spec:
                    return idx
            for e in self.exports:
                if e.kind == "func" and e.name == spec:
                    return e.index
            raise KeyError(f"no function named {spec!r}") from None
        if not 0 <= func < self.num_funcs:
            raise KeyError(f"function index {func} out of range (module has {self.num_funcs})")
        return func

    def offset_of(self, loc: Location) -> int:
        """Module-relative byte offset of a location (what wasmtime reports)."""
        return self.function(loc.func).body_offset + loc.pc

    def location_at(self, offset: int) -> Location:
        """The Location whose instruction starts at module offset ``offset``."""
        starts = [f.body_offset for f in self.functions]
        i = bisect.bisect_right(starts, offset) - 1
        if i < 0:
            raise KeyError(f"offset 0x{offset:x} is not inside a function body")
        f = self.functions[i]
        raw = f.raw
        if raw is not None and offset >= f.body_offset + len(raw):
            raise KeyError(f"offset 0x{offset:x} is not inside a function body")
        return Location(f.index, offset - f.body_offset)

    def table_contents(self, table: int) -> dict[int, int]:
        """Slot -> function index that the active element segments of ``table``
        with constant offsets put there (what C toolchains emit; code may
        still change the table at run time)."""
        slots: dict[int, int] = {}
        for el in self.elems:
            if el.mode != "active" or el.table != table or not el.offset:
                continue
            off = el.offset[0]
            if off.op.name not in ("i32.const", "i64.const"):
                continue
            base = off.imm
            if el.funcs is not None:
                for k, fi in enumerate(el.funcs):
                    slots[base + k] = fi
            else:
                for k, expr in enumerate(el.exprs or ()):
                    if expr and expr[0].op.name == "ref.func":
                        slots[base + k] = expr[0].imm
        return slots

    def iter_instrs(self) -> Iterator[tuple[Function, Instr]]:
        """Every instruction of every defined function, decoding bodies as needed."""
        for f in self.functions:
            for ins in f.instrs:
                yield f, ins

    @property
    def code_size(self) -> int:
        """Bytes of the code section's payload (0 when absent)."""
        raw = self.raw_sections.get(10)
        if raw is not None:
            return len(raw.payload)
        return sum(len(f.raw or b"") for f in self.functions)


def section_key(m: Module, sid: int) -> tuple[Any, ...]:
    """What a standard section is made of in the model.

    The decoder snapshots this per section; while it compares equal (values by
    value, functions and segments by identity) the encoder reuses the bytes.
    """
    if sid == 1:
        return tuple(m.types)
    if sid == 2:
        return tuple(m.imports)
    if sid == 3:
        return tuple(f.type_index for f in m.functions)
    if sid == 4:
        return tuple(m.tables)
    if sid == 5:
        return tuple(m.memories)
    if sid == 6:
        return tuple(m.globals)
    if sid == 7:
        return tuple(m.exports)
    if sid == 8:
        return (m.start,)
    if sid == 9:
        return tuple(m.elems)
    if sid == 10:
        return tuple((f, f.raw) for f in m.functions)
    if sid == 11:
        return tuple(m.datas)
    if sid == 12:
        return (m.data_count,)
    raise ValueError(f"no section {sid}")
