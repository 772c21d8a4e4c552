"""Value types and the other immutable type-level values of a module."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ValType", "I32", "I64", "F32", "F64", "V128", "FUNCREF", "EXTERNREF", "VALTYPES",
    "FuncType", "Limits", "TableType", "MemoryType", "GlobalType", "BlockType",
]


@dataclass(frozen=True, slots=True)
class ValType:
    """A value type. There is one instance per type, so `is` compares them."""

    name: str
    """Text-format name: ``i32``, ``funcref``, ..."""
    code: int
    """Binary encoding byte."""

    @property
    def is_ref(self) -> bool:
        return self.code in (0x70, 0x6F)

    @property
    def is_num(self) -> bool:
        return self.code in (0x7F, 0x7E, 0x7D, 0x7C)

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__


I32 = ValType("i32", 0x7F)
I64 = ValType("i64", 0x7E)
F32 = ValType("f32", 0x7D)
F64 = ValType("f64", 0x7C)
V128 = ValType("v128", 0x7B)
FUNCREF = ValType("funcref", 0x70)
EXTERNREF = ValType("externref", 0x6F)

VALTYPES: dict[int, ValType] = {t.code: t for t in (I32, I64, F32, F64, V128, FUNCREF, EXTERNREF)}
"""Binary byte -> ValType."""
BY_NAME: dict[str, ValType] = {t.name: t for t in VALTYPES.values()}
"""Text name -> ValType."""


@dataclass(frozen=True, slots=True)
class FuncType:
    """A function signature."""

    params: tuple[ValType, ...]
    """Parameter types, in order."""
    results: tuple[ValType, ...]
    """Result types, in order."""

    def __str__(self) -> str:
        p = " ".join(map(str, self.params))
        r = " ".join(map(str, self.results))
        return f"[{p}] -> [{r}]"


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of a memory (in 64 KiB pages) or table (in elements)."""

    min: int
    """Initial size."""
    max: int | None = None
    """Maximum size, or None for unbounded."""


@dataclass(frozen=True, slots=True)
class TableType:
    """A table: element reference type and limits."""

    elem: ValType
    """``funcref`` or ``externref``."""
    limits: Limits
    """Size in elements."""


@dataclass(frozen=True, slots=True)
class MemoryType:
    """A linear memory's limits in 64 KiB pages."""

    limits: Limits
    """Size in pages."""


@dataclass(frozen=True, slots=True)
class GlobalType:
    """A global's value type and mutability."""

    valtype: ValType
    """The stored value's type."""
    mutable: bool
    """Whether ``global.set`` is allowed."""


@dataclass(frozen=True, slots=True)
class BlockType:
    """The type of a block/loop/if: empty, one result, or a function type index."""

    result: ValType | None = None
    """The single result type, for the short forms."""
    type_index: int | None = None
    """Index into the type section, for the multi-value form."""

    def resolve(self, types: list[FuncType] | tuple[FuncType, ...]) -> FuncType:
        """The block's full signature."""
        if self.type_index is not None:
            return types[self.type_index]
        return FuncType((), (self.result,) if self.result is not None else ())

    def __str__(self) -> str:
        if self.type_index is not None:
            return f"(type {self.type_index})"
        return "" if self.result is None else f"(result {self.result})"


EMPTY_BLOCK = BlockType()
"""The ``[] -> []`` block type, shared."""
