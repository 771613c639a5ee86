"""The opcodes of the pickle machine: one handler per opcode, as :mod:`pickle` runs it.

Each handler receives the machine, the opcode's name and its argument, and changes the
machine's stack and memo the way the unpickler would, with symbolic values
(:mod:`._symbols`). Whatever reaches code goes through the machine's ``use``/``callee``/
``call`` (the allowlist decides); what cannot be followed raises :class:`Unmodelled`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bitwright.scan._symbols import StorageRef, Unmodelled, Value, add_items, container
from bitwright.scan.allowlist import Use, python3_module

if TYPE_CHECKING:
    from bitwright.scan.pickle_machine import Machine

__all__ = ["HANDLERS"]

_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")


_Handler = Callable[["Machine", str, Any], None]
HANDLERS: dict[str, _Handler] = {}


def _handles(*names: str) -> Callable[[_Handler], _Handler]:
    def register(handler: _Handler) -> _Handler:
        for name in names:
            HANDLERS[name] = handler
        return handler

    return register


@_handles("PROTO")
def _proto(m: Machine, op: str, arg: Any) -> None:
    m.result.protocol = int(arg)


@_handles("FRAME")
def _frame(m: Machine, op: str, arg: Any) -> None:
    pass


@_handles("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4")
def _integer(m: Machine, op: str, arg: Any) -> None:
    number = int(arg) if isinstance(arg, int) else None
    m.push(Value("number", number=number))


@_handles("FLOAT", "BINFLOAT")
def _float(m: Machine, op: str, arg: Any) -> None:
    m.push(Value("number"))


@_handles("STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE")
@_handles("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8")
def _text(m: Machine, op: str, arg: Any) -> None:
    text = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
    m.push(Value("text", text=text))


@_handles("BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "NEXT_BUFFER")
def _bytes(m: Machine, op: str, arg: Any) -> None:
    m.push(Value("bytes"))


@_handles("READONLY_BUFFER")
def _readonly(m: Machine, op: str, arg: Any) -> None:
    m.top()


@_handles("NONE", "NEWTRUE", "NEWFALSE")
def _const(m: Machine, op: str, arg: Any) -> None:
    m.push(Value("const"))


@_handles("EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_DICT", "EMPTY_SET")
def _empty(m: Machine, op: str, arg: Any) -> None:
    kinds = {"EMPTY_LIST": "list", "EMPTY_TUPLE": "tuple", "EMPTY_DICT": "dict"}
    m.push(Value(kinds.get(op, "set")))


@_handles("MARK")
def _mark(m: Machine, op: str, arg: Any) -> None:
    m.metastack.append(m.stack)
    m.stack = []


@_handles("POP")
def _pop(m: Machine, op: str, arg: Any) -> None:
    if m.stack:
        m.pop()
    else:
        m.pop_mark()


@_handles("POP_MARK")
def _pop_mark(m: Machine, op: str, arg: Any) -> None:
    m.pop_mark()


@_handles("DUP")
def _dup(m: Machine, op: str, arg: Any) -> None:
    m.push(m.top())


@_handles("TUPLE", "LIST", "FROZENSET")
def _collect(m: Machine, op: str, arg: Any) -> None:
    kinds = {"TUPLE": "tuple", "LIST": "list"}
    m.push(container(kinds.get(op, "set"), m.pop_mark()))


@_handles("TUPLE1", "TUPLE2", "TUPLE3")
def _small_tuple(m: Machine, op: str, arg: Any) -> None:
    count = int(op[-1])
    items = [m.pop() for _ in range(count)][::-1]
    m.push(container("tuple", items))


@_handles("DICT")
def _dict(m: Machine, op: str, arg: Any) -> None:
    items = m.pop_mark()
    if len(items) % 2:
        raise Unmodelled("DICT of an odd number of items")
    m.push(container("dict", items))


@_handles("APPEND", "ADDITEMS", "APPENDS", "SETITEM", "SETITEMS")
def _extend(m: Machine, op: str, arg: Any) -> None:
    if op == "APPEND":
        items = [m.pop()]
    elif op == "SETITEM":
        value = m.pop()
        items = [m.pop(), value]
    else:
        items = m.pop_mark()
    if op.startswith("SETITEM") and len(items) % 2:
        raise Unmodelled(f"{op} of an odd number of items")
    target = m.top()
    m.mutate(target, op)
    add_items(target, items)


@_handles("GET", "BINGET", "LONG_BINGET")
def _get(m: Machine, op: str, arg: Any) -> None:
    value = m.memo.get(int(arg))
    if value is None:
        raise Unmodelled(f"{op} of memo entry {arg}, which was never stored")
    m.push(value)


@_handles("PUT", "BINPUT", "LONG_BINPUT")
def _put(m: Machine, op: str, arg: Any) -> None:
    index = int(arg)
    if index < 0:
        raise Unmodelled("a negative memo index")
    m.memo[index] = m.top()


@_handles("MEMOIZE")
def _memoize(m: Machine, op: str, arg: Any) -> None:
    m.memo[len(m.memo)] = m.top()


@_handles("GLOBAL")
def _global(m: Machine, op: str, arg: Any) -> None:
    module, _, name = str(arg).partition(" ")
    m.push(m.global_ref(module, name))


@_handles("STACK_GLOBAL")
def _stack_global(m: Machine, op: str, arg: Any) -> None:
    name, module = m.pop(), m.pop()
    if module.kind != "text" or name.kind != "text" or module.text is None or name.text is None:
        raise Unmodelled(
            "STACK_GLOBAL of a name that is not a plain string "
            f"({module.kind}, {name.kind}): it is computed when the file loads"
        )
    m.push(m.global_ref(module.text, name.text))


@_handles("INST")
def _inst(m: Machine, op: str, arg: Any) -> None:
    module, _, name = str(arg).partition(" ")
    cls = m.global_ref(module, name)
    args = container("tuple", m.pop_mark())
    m.push(m.call(m.callee(cls, Use.CALL, "INST"), args))


@_handles("OBJ")
def _obj(m: Machine, op: str, arg: Any) -> None:
    items = m.pop_mark()
    if not items:
        raise Unmodelled("OBJ without a class")
    callee = m.callee(items[0], Use.CALL, "OBJ")
    m.push(m.call(callee, container("tuple", items[1:])))


@_handles("REDUCE")
def _reduce(m: Machine, op: str, arg: Any) -> None:
    args = m.pop()
    func = m.pop()
    if args.kind != "tuple":
        raise Unmodelled(f"REDUCE with arguments that are not a tuple ({args.kind})")
    m.push(m.call(m.callee(func, Use.CALL, "REDUCE"), args))


@_handles("NEWOBJ", "NEWOBJ_EX")
def _newobj(m: Machine, op: str, arg: Any) -> None:
    kwargs = m.pop() if op == "NEWOBJ_EX" else Value("dict")
    args = m.pop()
    cls = m.callee(m.pop(), Use.CONSTRUCT, op)
    if args.kind != "tuple" or kwargs.kind != "dict":
        raise Unmodelled(f"{op} with arguments that are not a tuple and a dict")
    m.pass_refs(args)
    m.pass_refs(kwargs)
    m.push(Value("made", name=cls, args=args))


@_handles("BUILD")
def _build(m: Machine, op: str, arg: Any) -> None:
    state = m.pop()
    target = m.top()
    m.mutate(target, "BUILD")
    if target.kind != "made":
        raise Unmodelled(f"BUILD of a {target.kind}, which has no state to set")
    target.state = state
    if target.name is not None and (python3_module(target.name[0]), target.name[1]) == _WRAPPER:
        m.joblib_array(target)


@_handles("PERSID", "BINPERSID")
def _persid(m: Machine, op: str, arg: Any) -> None:
    pid = Value("text", text=str(arg)) if op == "PERSID" else m.pop()
    m.pass_refs(pid)
    storage = _storage(pid)
    if storage is None:
        raise Unmodelled("a persistent id that is not a torch storage reference")
    m.result.storages.append(storage)
    m.push(Value("made"))


@_handles("EXT1", "EXT2", "EXT4")
def _extension(m: Machine, op: str, arg: Any) -> None:
    m.result.reached_code = True
    raise Unmodelled(
        f"{op} {arg} names a global through the copyreg extension registry, "
        "which only the loading interpreter knows"
    )


def _storage(pid: Value) -> StorageRef | None:
    """A torch storage id: ('storage', StorageType, key, location, numel[, view])."""
    items = pid.items
    if pid.kind != "tuple" or len(items) not in (5, 6) or items[0].text != "storage":
        return None
    kind, key, numel = items[1], items[2], items[4]
    if kind.kind != "global" or kind.name is None or key.text is None or numel.number is None:
        return None
    return StorageRef(key=key.text, dtype=".".join(kind.name), numel=numel.number)
