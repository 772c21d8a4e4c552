"""Where a trap that wasmtime reports at one instruction really happened.

Cranelift attributes some traps to an instruction other than the one the Wasm
semantics say trapped, because it fused, merged or deleted code around it:

* an arm or branch target that does nothing but ``unreachable`` becomes a
  conditional trap on the branch (``if``, ``br_if``): the trap carries the
  branch's offset; so does one that does nothing but a load or store into a
  memory of size 0, which cannot but trap;
* an ``unreachable`` may carry the offset of an instruction before it whose
  code was kept (a read or write of an ``externref`` global, ``table.grow``);
* a load whose value has a single use is folded into that use as a memory
  operand (``i32.load`` into ``i32.load8_u``'s address, ``f64.load`` into
  ``f64.ceil``, also through a local that is not read again): an
  out-of-bounds load carries the user's offset;
* an out-of-bounds access may carry the offset of another access or
  instruction in the same straight-line code: a later access whose address it
  loaded, a later store to the same address (the first store deleted as
  overwritten), or the instruction that computed its address.

Each function takes a function body and the index of the reported instruction
and returns the index of the instruction that trapped: the same index when the
body (and, for `memory_site`, the memories' sizes) shows no such case, or when
more than one instruction could be it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...ir.module import Instr

__all__ = ["folded_unreachable", "memory_site", "sunk_load"]

_FREE = frozenset(["nop", "block", "loop", "end"])
"""Instructions that compile to nothing on a straight path (``end`` falls through)."""

_OPENERS = frozenset(["block", "loop", "if"])


def _structure(instrs: Sequence[Instr], upto: int) -> tuple[list[int], dict[int, int],
                                                            dict[int, int]]:
    """The blocks open before ``upto`` (indices of their openers, outermost first), and
    for every opener its ``end`` index and for every ``if`` its ``else`` index."""
    ends: dict[int, int] = {}
    elses: dict[int, int] = {}
    stack: list[int] = []
    open_at_upto: list[int] = []
    for k, ins in enumerate(instrs):
        if k == upto:
            open_at_upto = list(stack)
        name = ins.op.name
        if name in _OPENERS:
            stack.append(k)
        elif name == "else" and stack:
            elses[stack[-1]] = k
        elif name == "end" and stack:
            ends[stack.pop()] = k
    return open_at_upto, ends, elses


def _runs_into_unreachable(instrs: Sequence[Instr], k: int, else_to_end: dict[int, int],
                           memory: bool = False,
                           passes: Callable[[Instr], bool] | None = None) -> int | None:
    """The ``unreachable`` (``memory``: the load or store) that control starting at
    ``k`` reaches through instructions that compile to nothing (``passes``: through
    instructions it accepts), if any."""
    passes = passes or _dead_at_trap
    last = len(instrs) - 1
    while 0 <= k < last:  # the final `end` returns
        name = instrs[k].op.name
        if name == "unreachable" if not memory else instrs[k].op.mem_bytes > 0:
            return k
        if name == "else":  # the end of a then-arm: on after the if
            k = else_to_end[k] + 1 if k in else_to_end else -1
            continue
        if name not in _FREE and not passes(instrs[k]):
            return None
        k += 1
    return None


def _dead_at_trap(ins: Instr) -> bool:
    """Whether nothing of ``ins`` can be seen once a trap follows it: constants,
    locals, global reads, drops, selects, references and arithmetic that cannot
    trap (Cranelift deletes them ahead of an ``unreachable`` and reports the
    branch before them)."""
    op = ins.op
    if op.name in ("local.get", "local.set", "local.tee", "drop", "global.get", "select",
                   "ref.null", "ref.is_null", "ref.func"):
        return True
    return (op.prefix is None and not op.special and not op.traps and not op.mem_bytes
            and op.name[:4] in ("i32.", "i64.", "f32.", "f64."))


def folded_unreachable(instrs: Sequence[Instr], index: int, memory: bool = False) -> int:
    """The ``unreachable`` an ``unreachable`` trap reported at ``instrs[index]`` came
    from, when that is a branch with exactly one way into an ``unreachable``.
    ``memory``: the same for an out-of-bounds trap and a load or store that
    Cranelift proved out of bounds (a memory of size 0), which it turns into a
    trap on the branch like an ``unreachable``."""
    name = instrs[index].op.name
    if name not in ("if", "br_if"):
        return index if memory else _unreachable_after(instrs, index)
    open_blocks, ends, elses = _structure(instrs, index)
    starts = [index + 1]  # the then-arm, or br_if's fall-through
    if name == "if":
        if index in elses:
            starts.append(elses[index] + 1)
        elif index in ends:
            starts.append(ends[index] + 1)
    else:
        depth = instrs[index].imm
        if depth < len(open_blocks):
            opener = open_blocks[-1 - depth]
            if instrs[opener].op.name == "loop":
                starts.append(opener + 1)
            elif opener in ends:
                starts.append(ends[opener] + 1)
    else_to_end = {e: ends[opener] for opener, e in elses.items() if opener in ends}
    found = {u for s in starts
             if (u := _runs_into_unreachable(instrs, s, else_to_end, memory)) is not None}
    return found.pop() if len(found) == 1 else index


def _unreachable_after(instrs: Sequence[Instr], index: int) -> int:
    """The ``unreachable`` an ``unreachable`` trap reported at ``instrs[index]``, an
    instruction that is not one, came from: the one control reaches from it in a
    straight line (any trap of the instructions between would have had another
    kind). Cranelift gives such a trap the location of an instruction before it
    whose code it kept: a read or write of an ``externref`` global, a
    ``table.grow``."""
    if not _straight(instrs[index]):
        return index
    _, ends, elses = _structure(instrs, index)
    else_to_end = {e: ends[opener] for opener, e in elses.items() if opener in ends}
    found = _runs_into_unreachable(instrs, index + 1, else_to_end, passes=_straight)
    return index if found is None else found


def _effect(ins: Instr) -> tuple[int, int] | None:
    """(values popped, values pushed), or None where a backward walk must stop
    (control flow and calls)."""
    op = ins.op
    if not op.special:
        return len(op.pops), len(op.pushes)
    name = op.name
    if name in ("local.get", "global.get"):
        return 0, 1
    if name in ("local.set", "global.set", "drop"):
        return 1, 0
    if name in ("select", "local.tee"):
        return (3, 1) if name == "select" else (1, 1)
    return None


def _producer(instrs: Sequence[Instr], index: int, depth: int,
              through_locals: bool = True) -> int | None:
    """The instruction that computed the value ``depth`` below the top of the stack just
    before ``instrs[index]``, found in straight-line code. Locals are seen through, as
    Cranelift sees them: a ``local.tee`` passes its value on, and a ``local.get`` gives
    the value of the last ``local.set``/``local.tee`` of that local (not
    ``through_locals``: the ``local.get`` or ``local.tee`` itself)."""
    j = index - 1
    while j >= 0:
        ins = instrs[j]
        effect = _effect(ins)
        if effect is None:
            return None
        pops, pushes = effect
        if depth < pushes:
            name = ins.op.name
            if not through_locals:
                return j
            if name == "local.tee":  # its operand is the value
                j -= 1
                continue
            if name != "local.get":
                return j
            j = _last_write(instrs, j, ins.imm)
            if j is None:
                return None
            depth = 0  # the value written, on top before the set
            j -= 1
            continue
        depth += pops - pushes
        j -= 1
    return None


def _last_write(instrs: Sequence[Instr], before: int, local: int) -> int | None:
    """The last ``local.set``/``local.tee`` of ``local`` before ``instrs[before]`` in
    straight-line code."""
    for j in range(before - 1, -1, -1):
        ins = instrs[j]
        if _effect(ins) is None:
            return None
        if ins.op.name in ("local.set", "local.tee") and ins.imm == local:
            return j
    return None


_CONDITIONS = {"if": 1, "br_if": 1, "br_table": 1, "select": 3}
"""Operands of the special instructions a load may be folded into (compared in place)."""


def sunk_load(instrs: Sequence[Instr], index: int) -> int:
    """The load an out-of-bounds trap reported at ``instrs[index]`` came from, when
    that instruction is no memory access and exactly one of its operands comes
    straight from a load. (A load whose address comes from a load stays: either may
    have trapped.)"""
    op = instrs[index].op
    if _touches_memory(instrs[index]):
        return index
    operands = _CONDITIONS.get(op.name, 0) if op.special else len(op.pops)
    loads = [j for d in range(operands)
             if (j := _producer(instrs, index, d)) is not None and instrs[j].op.is_load]
    return loads[0] if len(loads) == 1 else index


def memory_site(instrs: Sequence[Instr], index: int,
                size: Callable[[int], int | None]) -> int:
    """The access an out-of-bounds trap reported at ``instrs[index]`` came from, as
    far as the straight-line code around it and the memories' sizes at the trap
    (``size(memory index)``, None where unknown) show it:

    * the first access up to ``index`` to a memory of size 0, which cannot but trap
      (Cranelift may report a later access whose address it loaded there);
    * the first access before ``index`` to the same address in the same memory
      that reaches at least as far (Cranelift deletes a store that a later one
      overwrites);
    * when ``instrs[index]`` loads from an address that a load from a constant
      address gave, that load if the constant is out of bounds (Cranelift merges
      it into the address arithmetic of its user, whose offset it reports);
    * when ``instrs[index]`` accesses no memory, the first access after it
      (Cranelift may report an instruction that computed its address)."""
    j = index
    first = index
    while j >= 0 and _straight(instrs[j]):
        ins = instrs[j]
        if ins.op.mem_bytes and size(ins.imm[2]) == 0:
            first = j
        j -= 1
    if first != index:
        return first
    ins = instrs[index]
    if ins.op.mem_bytes:
        same = _same_address_before(instrs, index, j + 1)
        if same is not None:
            return same
        address = _producer(instrs, index, 1 if ins.op.is_store else 0)
        if address is not None and instrs[address].op.is_load:
            if _out_of_bounds(instrs, address, size):
                return address
        return index
    if _touches_memory(ins):
        return index
    for k in range(index + 1, len(instrs)):
        if not _straight(instrs[k]):
            break
        if _touches_memory(instrs[k]):
            return k if instrs[k].op.mem_bytes else index
    return index


def _same_address_before(instrs: Sequence[Instr], index: int, start: int) -> int | None:
    """The first access in ``instrs[start:index]`` to the address and memory of the
    access ``instrs[index]`` whose last byte is at or past its last byte: if the
    later one is out of bounds, so was that one."""
    _, offset, memory = instrs[index].imm
    key = _address_key(instrs, index)
    if key is None:
        return None
    end = offset + instrs[index].op.mem_bytes
    for k in range(start, index):
        ins = instrs[k]
        if (ins.op.mem_bytes and ins.imm[2] == memory
                and ins.imm[1] + ins.op.mem_bytes >= end and _address_key(instrs, k) == key
                and not (key[0] == "local" and any(
                    w.op.name in ("local.set", "local.tee") and w.imm == key[1]
                    for w in instrs[k:index]))):
            return k
    return None


def _address_key(instrs: Sequence[Instr], index: int) -> tuple[str, int] | None:
    """What two accesses in one straight line with the same key use as their
    address operand: the same constant, the value of the same instruction, or the
    same local (the caller checks it is not written between)."""
    depth = 1 if instrs[index].op.is_store else 0
    value = _producer(instrs, index, depth)
    if value is not None:
        ins = instrs[value]
        if ins.op.name == "i32.const":
            return "const", ins.imm & 0xFFFFFFFF
        return "value", value
    pusher = _producer(instrs, index, depth, through_locals=False)
    if pusher is not None and instrs[pusher].op.name == "local.get":
        return "local", instrs[pusher].imm
    return None


def _out_of_bounds(instrs: Sequence[Instr], load: int,
                   size: Callable[[int], int | None]) -> bool:
    """Whether the load ``instrs[load]`` reads out of bounds for certain: its address
    is a constant and its memory's size is known."""
    const = _producer(instrs, load, 0)
    if const is None or instrs[const].op.name != "i32.const":
        return False
    _, offset, memory = instrs[load].imm
    bytes_now = size(memory)
    return bytes_now is not None and \
        (instrs[const].imm & 0xFFFFFFFF) + offset + instrs[load].op.mem_bytes > bytes_now


def _straight(ins: Instr) -> bool:
    """Whether control always goes from ``ins`` to the next instruction, unless it
    traps (no label, branch or call)."""
    return not (ins.op.ends_block or ins.op.is_call)


def _touches_memory(ins: Instr) -> bool:
    return bool(ins.op.mem_bytes) or ins.op.name in ("memory.fill", "memory.copy",
                                                     "memory.init")
