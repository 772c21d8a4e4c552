"""LEB128 reading and writing with the spec's limits on length and unused bits."""

from __future__ import annotations

from .errors import DecodeError

__all__ = ["read_u32", "read_s32", "read_s33", "read_s64", "read_u64", "u32", "s32", "s64",
           "s33"]


def _unsigned(data: bytes, pos: int, end: int, bits: int) -> tuple[int, int]:
    result = 0
    shift = 0
    last_shift = (bits - 1) // 7 * 7  # shift of the last byte allowed
    while True:
        if pos >= end:
            raise DecodeError("unexpected end of section or function", pos)
        b = data[pos]
        pos += 1
        if shift == last_shift:
            if b & 0x80:
                raise DecodeError("integer representation too long", pos - 1)
            if b >> (bits - shift):
                raise DecodeError("integer too large", pos - 1)
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _signed(data: bytes, pos: int, end: int, bits: int) -> tuple[int, int]:
    result = 0
    shift = 0
    last_shift = (bits - 1) // 7 * 7
    while True:
        if pos >= end:
            raise DecodeError("unexpected end of section or function", pos)
        b = data[pos]
        pos += 1
        if shift == last_shift:
            if b & 0x80:
                raise DecodeError("integer representation too long", pos - 1)
            # Bits above the value's width must all copy its sign bit.
            used = bits - shift
            rest = (b & 0x7F) >> (used - 1)
            if rest not in (0, (0x7F >> (used - 1))):
                raise DecodeError("integer too large", pos - 1)
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, pos


def read_u32(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(value, next position) of a u32 at ``pos``; a one-byte fast path."""
    if pos < end:
        b = data[pos]
        if b < 0x80:
            return b, pos + 1
    return _unsigned(data, pos, end, 32)


def read_u64(data: bytes, pos: int, end: int) -> tuple[int, int]:
    return _unsigned(data, pos, end, 64)


def read_s32(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end:
        b = data[pos]
        if b < 0x40:
            return b, pos + 1
    return _signed(data, pos, end, 32)


def read_s33(data: bytes, pos: int, end: int) -> tuple[int, int]:
    return _signed(data, pos, end, 33)


def read_s64(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end:
        b = data[pos]
        if b < 0x40:
            return b, pos + 1
    return _signed(data, pos, end, 64)


def u32(value: int) -> bytes:
    """Minimal unsigned LEB128 encoding."""
    if 0 <= value < 0x80:
        return bytes((value,))
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def s64(value: int) -> bytes:
    """Minimal signed LEB128 encoding (any width)."""
    if -0x40 <= value < 0x40:
        return bytes((value & 0x7F,))
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if (value == 0 and not b & 0x40) or (value == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


s32 = s64
s33 = s64
