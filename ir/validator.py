"""Validation: module-level checks and the type-checker for function bodies.

The body checker is the spec's algorithm (value stack + control frames, with
an "unknown" type in unreachable code). It can also record the operand-stack
types before every instruction, which the backends and `OperandProbe` use.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._gc import gc_paused
from .errors import ValidationError
from .module import Function, Instr, Module
from .opcodes import OPCODES, OpInfo
from .types import FUNCREF, I32, I64, V128, VALTYPES, FuncType, Limits, ValType

__all__ = ["validate", "validate_function", "operand_stacks", "Stack"]

Stack = tuple[ValType | None, ...]
"""Operand types bottom-first; None is the unknown type of unreachable code."""

_VT = {t.name: t for t in VALTYPES.values()}
_SIMPLE: dict[OpInfo, tuple[tuple[ValType, ...], tuple[ValType, ...]]] = {}
_MEMORY: dict[OpInfo, tuple[tuple[ValType, ...], tuple[ValType, ...], int]] = {}
_LANES = {"i8x16": 16, "i16x8": 8, "i32x4": 4, "i64x2": 2, "f32x4": 4, "f64x2": 2}
for _op in OPCODES:
    if _op.special:
        continue
    _sig = (tuple(_VT[t] for t in _op.pops), tuple(_VT[t] for t in _op.pushes))
    if _op.mem_bytes:
        _MEMORY[_op] = (*_sig, _op.mem_bytes)
    elif _op.imm in ("", "i32", "i64", "f32", "f64", "v128"):
        _SIMPLE[_op] = _sig

_MAX_PAGES = 65536
_CONST_OPS = frozenset(["i32.const", "i64.const", "f32.const", "f64.const", "v128.const",
                        "ref.null", "ref.func", "global.get", "end",
                        "i32.add", "i32.sub", "i32.mul", "i64.add", "i64.sub", "i64.mul"])


class _Frame:
    __slots__ = ("kind", "params", "results", "height", "unreachable")

    def __init__(self, kind: str, params: tuple[ValType, ...], results: tuple[ValType, ...],
                 height: int) -> None:
        self.kind = kind
        self.params = params
        self.results = results
        self.height = height
        self.unreachable = False

    @property
    def label_types(self) -> tuple[ValType, ...]:
        return self.params if self.kind == "loop" else self.results


class _ModuleContext:
    """Index spaces of a module, computed once per validation."""

    def __init__(self, m: Module) -> None:
        self.module = m
        self.types = m.types
        self.func_types: list[FuncType] = []
        for imp in m.imports:
            if imp.kind == "func":
                assert isinstance(imp.desc, int)
                if imp.desc >= len(m.types):
                    raise ValidationError(f"unknown type {imp.desc} in import "
                                          f"{imp.module}.{imp.name}")
                self.func_types.append(m.types[imp.desc])
        for f in m.functions:
            if f.type_index >= len(m.types):
                raise ValidationError(f"unknown type {f.type_index}", f.index)
            self.func_types.append(m.types[f.type_index])
        self.tables = m.all_tables()
        self.memories = m.all_memories()
        self.globals = m.all_globals()
        self.num_imported_globals = len(m.imports_of("global"))
        self.data_count = m.data_count
        self.elem_types = [e.elem_type for e in m.elems]
        self.refs = self._declared_refs(m)

    @staticmethod
    def _declared_refs(m: Module) -> set[int]:
        """C.refs: functions referenced outside function bodies (ref.func may use them)."""
        refs: set[int] = set()
        for e in m.exports:
            if e.kind == "func":
                refs.add(e.index)
        exprs: list[tuple[Instr, ...]] = [g.init for g in m.globals]
        for el in m.elems:
            if el.funcs is not None:
                refs.update(el.funcs)
            exprs.extend(el.exprs or ())
        for expr in exprs:
            for ins in expr:
                if ins.op.name == "ref.func":
                    refs.add(ins.imm)
        return refs


def validate(m: Module) -> None:
    """Validate the whole module; raises ValidationError (or DecodeError for a
    body that is not even well-formed, since bodies decode lazily)."""
    ctx = _ModuleContext(m)
    _validate_module_fields(m, ctx)
    with gc_paused():
        for f in m.functions:
            _check_body(ctx, f, record=False)


def validate_function(m: Module, func: int) -> None:
    """Type-check one function body."""
    ctx = _ModuleContext(m)
    _check_body(ctx, m.function(func), record=False)


def operand_stacks(m: Module, func: int | Function) -> list[Stack]:
    """Operand-stack types before each instruction of a function, bottom first.

    ``result[i]`` belongs to ``function.instrs[i]``; None marks the unknown type
    of unreachable code: in a block that became unreachable, one None sits under
    the values pushed since, for whatever an instruction pops beyond them.
    """
    ctx = _ModuleContext(m)
    f = func if isinstance(func, Function) else m.function(func)
    stacks = _check_body(ctx, f, record=True)
    assert stacks is not None
    return stacks


# -- module-level checks ---------------------------------------------------------

def _check_limits(lim: Limits, cap: int, what: str) -> None:
    if lim.min > cap:
        raise ValidationError(f"{what} size must be at most {cap}")
    if lim.max is not None:
        if lim.max > cap:
            raise ValidationError(f"{what} size must be at most {cap}")
        if lim.min > lim.max:
            raise ValidationError(f"size minimum must not be greater than maximum ({what})")


def _validate_module_fields(m: Module, ctx: _ModuleContext) -> None:
    for t in ctx.tables:
        _check_limits(t.limits, 0xFFFFFFFF, "table")
    for mem in ctx.memories:
        _check_limits(mem.limits, _MAX_PAGES, "memory")
    for i, g in enumerate(m.globals):
        _check_const(ctx, g.init, g.type.valtype, f"global {ctx.num_imported_globals + i}",
                     max_global=ctx.num_imported_globals + i)
    seen: set[str] = set()
    limits = {"func": len(ctx.func_types), "table": len(ctx.tables),
              "memory": len(ctx.memories), "global": len(ctx.globals)}
    for e in m.exports:
        if e.name in seen:
            raise ValidationError(f"duplicate export name {e.name!r}")
        seen.add(e.name)
        if e.index >= limits[e.kind]:
            raise ValidationError(f"unknown {e.kind} {e.index} in export {e.name!r}")
    if m.start is not None:
        if m.start >= len(ctx.func_types):
            raise ValidationError(f"unknown function {m.start} (start)")
        st = ctx.func_types[m.start]
        if st.params or st.results:
            raise ValidationError("start function must have type [] -> []")
    for i, el in enumerate(m.elems):
        if el.funcs is not None:
            for fi in el.funcs:
                if fi >= len(ctx.func_types):
                    raise ValidationError(f"unknown function {fi} in elem segment {i}")
        for expr in el.exprs or ():
            _check_const(ctx, expr, el.elem_type, f"elem segment {i}")
        if el.mode == "active":
            if el.table >= len(ctx.tables):
                raise ValidationError(f"unknown table {el.table} in elem segment {i}")
            if ctx.tables[el.table].elem is not el.elem_type:
                raise ValidationError(f"type mismatch: elem segment {i} of {el.elem_type} "
                                      f"for a table of {ctx.tables[el.table].elem}")
            assert el.offset is not None
            _check_const(ctx, el.offset, I32, f"elem segment {i} offset")
    for i, d in enumerate(m.datas):
        if d.mode == "active":
            if d.memory >= len(ctx.memories):
                raise ValidationError(f"unknown memory {d.memory} in data segment {i}")
            assert d.offset is not None
            _check_const(ctx, d.offset, I32, f"data segment {i} offset")


def _check_const(ctx: _ModuleContext, expr: Sequence[Instr], expected: ValType, what: str,
                 max_global: int | None = None) -> None:
    stack: list[ValType] = []
    nglobals = len(ctx.globals) if max_global is None else max_global
    for ins in expr:
        name = ins.op.name
        if name not in _CONST_OPS:
            raise ValidationError(f"constant expression required in {what} (found {name})")
        if name == "end":
            break
        if name == "global.get":
            if ins.imm >= nglobals:
                raise ValidationError(f"unknown global {ins.imm} in {what}")
            gt = ctx.globals[ins.imm]
            if gt.mutable:
                raise ValidationError(f"constant expression required in {what} "
                                      f"(mutable global)")
            stack.append(gt.valtype)
        elif name == "ref.null":
            stack.append(ins.imm)
        elif name == "ref.func":
            if ins.imm >= len(ctx.func_types):
                raise ValidationError(f"unknown function {ins.imm} in {what}")
            stack.append(FUNCREF)
        elif name.endswith(".const"):
            stack.append(_VT[name[:-6]] if name != "v128.const" else V128)
        else:  # extended-const arithmetic
            t = I32 if name.startswith("i32") else I64
            if len(stack) < 2 or stack[-1] is not t or stack[-2] is not t:
                raise ValidationError(f"type mismatch in {what}")
            stack.pop()
    if len(stack) != 1 or stack[0] is not expected:
        got = " ".join(map(str, stack)) or "nothing"
        raise ValidationError(f"type mismatch in {what}: expected {expected}, got {got}")


# -- function bodies ---------------------------------------------------------------

def _check_body(ctx: _ModuleContext, f: Function, record: bool) -> list[Stack] | None:
    m = ctx.module
    ftype = ctx.func_types[f.index]
    instrs = f.instrs
    params = ftype.params
    groups = f.local_groups
    local_types: list[ValType] = list(params)
    nlocals = len(params) + sum(n for n, _ in groups)
    if nlocals <= 50000:
        for n, t in groups:
            local_types.extend([t] * n)
    else:
        raise ValidationError(f"too many locals ({nlocals})", f.index, 0, f.body_offset)

    stack: list[ValType | None] = []
    frames = [_Frame("func", (), ftype.results, 0)]
    stacks: list[Stack] | None = [] if record else None
    simple = _SIMPLE
    memory_ops = _MEMORY
    nmem = len(ctx.memories)
    func_index = f.index
    pc = 0

    def fail(msg: str) -> ValidationError:
        return ValidationError(msg, func_index, pc, f.body_offset + pc)

    def pop(expected: ValType | None = None) -> ValType | None:
        frame = frames[-1]
        if len(stack) == frame.height:
            if frame.unreachable:
                return expected
            raise fail(f"type mismatch: expected {expected or 'a value'} but the stack is empty")
        actual = stack.pop()
        if expected is not None and actual is not None and actual is not expected:
            raise fail(f"type mismatch: expected {expected}, got {actual}")
        return actual if actual is not None else expected

    def pop_all(types: Sequence[ValType]) -> None:
        for t in reversed(types):
            pop(t)

    def label(depth: int) -> _Frame:
        if depth >= len(frames):
            raise fail(f"unknown label {depth}")
        return frames[-1 - depth]

    def set_unreachable() -> None:
        frame = frames[-1]
        del stack[frame.height:]
        frame.unreachable = True

    def block_sig(ins: Instr) -> FuncType:
        bt = ins.imm
        if bt.type_index is not None:
            if bt.type_index >= len(m.types):
                raise fail(f"unknown type {bt.type_index}")
            return m.types[bt.type_index]
        return bt.resolve(m.types)

    last = len(instrs) - 1
    for i, ins in enumerate(instrs):
        op = ins.op
        pc = ins.pc
        if stacks is not None:
            frame = frames[-1]
            if frame.unreachable:
                # Below the values this block pushed since it became unreachable, the
                # stack is polymorphic: an operand read that deep has no known type
                # (the enclosing blocks' values are not its operands).
                stacks.append((*stack[:frame.height], None, *stack[frame.height:]))
            else:
                stacks.append(tuple(stack))
        sig = simple.get(op)
        if sig is not None:
            pops, pushes = sig
            if pops:
                frame = frames[-1]
                for t in reversed(pops):
                    if len(stack) == frame.height:
                        if frame.unreachable:
                            continue
                        raise fail(f"type mismatch: {op.name} expected {t} but the stack "
                                   f"is empty")
                    actual = stack.pop()
                    if actual is not t and actual is not None:
                        raise fail(f"type mismatch: {op.name} expected {t}, got {actual}")
            stack.extend(pushes)
            continue
        msig = memory_ops.get(op)
        if msig is not None:
            imm = ins.imm
            if imm[2] >= nmem:
                raise fail(f"unknown memory {imm[2]}")
            if (1 << imm[0]) > msig[2]:
                raise fail("alignment must not be larger than natural")
            if len(imm) == 4 and imm[3] >= 16 // msig[2]:
                raise fail(f"invalid lane index {imm[3]}")
            pop_all(msig[0])
            stack.extend(msig[1])
            continue
        name = op.name
        if name == "local.get" or name == "local.set" or name == "local.tee":
            idx = ins.imm
            if idx >= nlocals:
                raise fail(f"unknown local {idx}")
            t = local_types[idx]
            if name == "local.get":
                stack.append(t)
            else:
                pop(t)
                if name == "local.tee":
                    stack.append(t)
        elif name == "block" or name == "loop" or name == "if":
            bsig = block_sig(ins)
            if name == "if":
                pop(I32)
            pop_all(bsig.params)
            frames.append(_Frame(name, bsig.params, bsig.results, len(stack)))
            stack.extend(bsig.params)
        elif name == "end":
            frame = frames[-1]
            pop_all(frame.results)
            if len(stack) != frame.height:
                raise fail(f"type mismatch: {len(stack) - frame.height} extra value(s) at the "
                           f"end of a block")
            if frame.kind == "if" and frame.params != frame.results:
                raise fail("type mismatch: if without else must leave its parameters as "
                           "its results")
            frames.pop()
            stack.extend(frame.results)
            if not frames:
                if i != last:
                    raise fail("operators remaining after the function's final end")
                break
        elif name == "else":
            frame = frames[-1]
            if frame.kind != "if":
                raise fail("else without a matching if")
            pop_all(frame.results)
            if len(stack) != frame.height:
                raise fail("type mismatch: extra values at the end of the then-arm")
            frame.kind = "else"
            frame.unreachable = False
            stack.extend(frame.params)
        elif name == "br":
            pop_all(label(ins.imm).label_types)
            set_unreachable()
        elif name == "br_if":
            pop(I32)
            types = label(ins.imm).label_types
            pop_all(types)
            stack.extend(types)
        elif name == "br_table":
            pop(I32)
            labels, default = ins.imm
            dtypes = label(default).label_types
            for lab in labels:
                ltypes = label(lab).label_types
                if len(ltypes) != len(dtypes):
                    raise fail("type mismatch: br_table targets have different arities")
                saved = list(stack)
                pop_all(ltypes)
                stack[:] = saved
            pop_all(dtypes)
            set_unreachable()
        elif name == "return":
            pop_all(ftype.results)
            set_unreachable()
        elif name == "unreachable":
            set_unreachable()
        elif name == "nop":
            pass
        elif name == "call":
            if ins.imm >= len(ctx.func_types):
                raise fail(f"unknown function {ins.imm}")
            ct = ctx.func_types[ins.imm]
            pop_all(ct.params)
            stack.extend(ct.results)
        elif name == "call_indirect":
            ti, tab = ins.imm
            if tab >= len(ctx.tables):
                raise fail(f"unknown table {tab}")
            if ctx.tables[tab].elem is not FUNCREF:
                raise fail("type mismatch: call_indirect on a table that is not funcref")
            if ti >= len(m.types):
                raise fail(f"unknown type {ti}")
            ct = m.types[ti]
            pop(I32)
            pop_all(ct.params)
            stack.extend(ct.results)
        elif name == "drop":
            pop()
        elif name == "select":
            pop(I32)
            if op.imm == "select_t":
                if len(ins.imm) != 1:
                    raise fail("invalid result arity for typed select")
                t = ins.imm[0]
                pop(t)
                pop(t)
                stack.append(t)
            else:
                t1 = pop()
                t2 = pop()
                for t in (t1, t2):
                    if t is not None and t.is_ref:
                        raise fail("type mismatch: select of reference types needs a type")
                if t1 is not None and t2 is not None and t1 is not t2:
                    raise fail(f"type mismatch: select of {t1} and {t2}")
                stack.append(t1 if t1 is not None else t2)
        elif name == "global.get" or name == "global.set":
            if ins.imm >= len(ctx.globals):
                raise fail(f"unknown global {ins.imm}")
            gt = ctx.globals[ins.imm]
            if name == "global.get":
                stack.append(gt.valtype)
            else:
                if not gt.mutable:
                    raise fail(f"global is immutable: global.set of global {ins.imm}")
                pop(gt.valtype)
        elif name == "memory.size" or name == "memory.grow":
            if ins.imm >= nmem:
                raise fail(f"unknown memory {ins.imm}")
            if name == "memory.grow":
                pop(I32)
            stack.append(I32)
        elif name == "ref.null":
            stack.append(ins.imm)
        elif name == "ref.is_null":
            t = pop()
            if t is not None and not t.is_ref:
                raise fail(f"type mismatch: ref.is_null of {t}")
            stack.append(I32)
        elif name == "ref.func":
            if ins.imm >= len(ctx.func_types):
                raise fail(f"unknown function {ins.imm}")
            if ins.imm not in ctx.refs:
                raise fail(f"undeclared function reference {ins.imm}")
            stack.append(FUNCREF)
        elif name.startswith("table."):
            _table_op(ctx, ins, name, pop, stack, fail)
        elif name in ("memory.init", "data.drop", "memory.copy", "memory.fill"):
            _memory_bulk_op(ctx, ins, name, pop, fail)
        elif name == "elem.drop":
            if ins.imm >= len(ctx.elem_types):
                raise fail(f"unknown elem segment {ins.imm}")
        elif op.imm in ("lane", "lanes16"):
            _lane_op(op, ins, pop_all, stack, fail)
        else:  # pragma: no cover - every special opcode is handled above
            raise AssertionError(f"validator has no rule for {name}")
    if frames:
        raise fail("unexpected end of function body")
    return stacks


def _table_op(ctx: _ModuleContext, ins: Instr, name: str, pop, stack, fail) -> None:  # type: ignore[no-untyped-def]
    if name in ("table.init", "table.copy"):
        a, b = ins.imm
        if name == "table.init":
            elem, tab = a, b
            if tab >= len(ctx.tables):
                raise fail(f"unknown table {tab}")
            if elem >= len(ctx.elem_types):
                raise fail(f"unknown elem segment {elem}")
            if ctx.elem_types[elem] is not ctx.tables[tab].elem:
                raise fail("type mismatch: table.init segment and table element types")
        else:
            for tab in (a, b):
                if tab >= len(ctx.tables):
                    raise fail(f"unknown table {tab}")
            if ctx.tables[a].elem is not ctx.tables[b].elem:
                raise fail("type mismatch: table.copy between tables of different types")
        pop(I32)
        pop(I32)
        pop(I32)
        return
    tab = ins.imm
    if tab >= len(ctx.tables):
        raise fail(f"unknown table {tab}")
    et = ctx.tables[tab].elem
    if name == "table.get":
        pop(I32)
        stack.append(et)
    elif name == "table.set":
        pop(et)
        pop(I32)
    elif name == "table.size":
        stack.append(I32)
    elif name == "table.grow":
        pop(I32)
        pop(et)
        stack.append(I32)
    elif name == "table.fill":
        pop(I32)
        pop(et)
        pop(I32)
    else:  # pragma: no cover
        raise AssertionError(name)


def _memory_bulk_op(ctx: _ModuleContext, ins: Instr, name: str, pop, fail) -> None:  # type: ignore[no-untyped-def]
    nmem = len(ctx.memories)
    if name in ("memory.init", "data.drop"):
        data = ins.imm[0] if name == "memory.init" else ins.imm
        if ctx.data_count is None or data >= ctx.data_count:
            raise fail(f"unknown data segment {data}")
        if name == "data.drop":
            return
        mems: tuple[int, ...] = (ins.imm[1],)
    elif name == "memory.copy":
        mems = ins.imm
    else:
        mems = (ins.imm,)
    for mem in mems:
        if mem >= nmem:
            raise fail(f"unknown memory {mem}")
    pop(I32)
    pop(I32)
    pop(I32)


def _lane_op(op: OpInfo, ins: Instr, pop_all, stack, fail) -> None:  # type: ignore[no-untyped-def]
    if op.imm == "lanes16":
        if any(b >= 32 for b in ins.imm):
            raise fail("invalid lane index in i8x16.shuffle")
    elif ins.imm >= _LANES[op.name.split(".")[0]]:
        raise fail(f"invalid lane index {ins.imm}")
    pops = tuple(_VT[t] for t in op.pops)
    pop_all(pops)
    stack.extend(_VT[t] for t in op.pushes)

