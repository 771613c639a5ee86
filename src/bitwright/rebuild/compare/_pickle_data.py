"""Read a pickle (or a joblib file) as data, never running any of its code.

A small pickle machine over :func:`pickletools.genops`: it keeps the stack, the marks and the
memo as :mod:`pickle` does, but every global the stream names must be on the allowlist
(:mod:`._pickle_allowlist`) and becomes a stand-in; calling it, ``NEWOBJ``, ``OBJ``, ``INST``
and ``BUILD`` only record arguments and state in an :class:`Record`. Nothing is imported and
nothing of the pickle is called. numpy arrays are rebuilt from their raw bytes with
``numpy.frombuffer`` (no object arrays), and joblib's arrays, whose bytes follow their wrapper
in the file, are read from the stream. Persistent ids, the extension registry and out-of-band
buffers are refused. The operations and the file size are bounded.

:func:`read_pickle_data` returns the value the pickle describes (its values and their
leaves: :mod:`._pickle_values`).
"""

from __future__ import annotations

import io
import pickletools
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from bitwright.rebuild.compare._pickle_allowlist import role_of
from bitwright.rebuild.compare._pickle_values import (
    DTypeStandIn,
    GlobalStandIn,
    PendingArray,
    PickleRefused,
    Record,
    array_from_state,
    as_dtype,
    bytes_of,
    dtype_from_state,
    joblib_array,
)

__all__ = ["MAX_OPERATIONS", "PickleRefused", "Record", "is_pickle", "read_pickle_data"]

MAX_OPERATIONS = 20_000_000
"""Pickle operations read at most (a forest of a few hundred trees takes a few thousand)."""

_MAX_INFLATED = 1 << 30
_ZLIB_MAGIC = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class _Machine:
    stream: _Bounded
    stack: list[Any] = field(default_factory=list)
    marks: list[list[Any]] = field(default_factory=list)
    memo: dict[int, Any] = field(default_factory=dict)


_MARK = object()


def is_pickle(head: bytes) -> bool:
    """Whether a file's first bytes start a pickle (protocol 2 to 5) or zlib/gzip data."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    return head[:2] in _ZLIB_MAGIC or head[:2] == _GZIP_MAGIC


def read_pickle_data(path: Path) -> Any:
    """Return the value the pickle (or joblib file) at ``path`` describes, as data.

    Raises:
        PickleRefused: a global off the allowlist, an operation this reader does not model,
            a malformed stream, or more than :data:`MAX_OPERATIONS` operations.
        OSError: the file cannot be read.
    """
    with path.open("rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        if head in _ZLIB_MAGIC:
            data = _inflate(raw, wbits=15)
        elif head == _GZIP_MAGIC:
            data = _inflate(raw, wbits=31)
        else:
            return _run(_Bounded(raw, path.stat().st_size))
        return _run(_Bounded(io.BytesIO(data), len(data)))


class _Bounded:
    """A stream that refuses a read past its end before allocating for it.

    A pickle may declare a value of 2**60 bytes; reading that much would fail only after
    trying to allocate it.
    """

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream = stream
        self._size = size

    def read(self, n: int = -1) -> bytes:
        remaining = self._size - self._stream.tell()
        if n is None or n < 0:
            n = remaining
        elif n > remaining:
            raise PickleRefused(f"a value of {n} bytes where {remaining} remain")
        return self._stream.read(n)

    def readline(self) -> bytes:
        return self._stream.readline()

    def tell(self) -> int:
        return self._stream.tell()


def _inflate(raw: IO[bytes], *, wbits: int) -> bytes:
    """Joblib's zlib or gzip files: the whole stream, decompressed with a cap."""
    inflater = zlib.decompressobj(wbits=wbits)
    chunks: list[bytes] = []
    size = 0
    while block := raw.read(1 << 20):
        chunk = inflater.decompress(block, _MAX_INFLATED - size + 1)
        size += len(chunk)
        if size > _MAX_INFLATED or inflater.unconsumed_tail:
            raise PickleRefused(f"decompresses to more than {_MAX_INFLATED} bytes")
        chunks.append(chunk)
    chunks.append(inflater.flush())
    return b"".join(chunks)


def _run(stream: _Bounded) -> Any:
    machine = _Machine(stream)
    try:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(stream)):  # type: ignore[arg-type]
            if count > MAX_OPERATIONS:
                raise PickleRefused(f"more than {MAX_OPERATIONS} operations")
            if opcode.name == "STOP":
                return _pop(machine)
            handler = _HANDLERS.get(opcode.name)
            if handler is None:
                raise PickleRefused(f"the operation {opcode.name} is not modelled")
            handler(machine, arg)
    except (IndexError, KeyError, TypeError, AttributeError) as exc:
        raise PickleRefused(f"inconsistent pickle stream ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        if isinstance(exc, PickleRefused):
            raise
        raise PickleRefused(f"malformed pickle stream ({exc})") from None
    raise PickleRefused("the stream ends without STOP")


def _pop(m: _Machine) -> Any:
    value = m.stack.pop()
    if value is _MARK:
        raise PickleRefused("a mark where a value belongs")
    return value


def _pop_mark(m: _Machine) -> list[Any]:
    items = m.stack
    m.stack = m.marks.pop()
    return items


def _push(value: Any) -> Callable[[_Machine, Any], None]:
    def handler(m: _Machine, arg: Any) -> None:
        m.stack.append(value() if callable(value) else value)

    return handler


def _push_arg(m: _Machine, arg: Any) -> None:
    m.stack.append(arg)


def _mark(m: _Machine, arg: Any) -> None:
    m.marks.append(m.stack)
    m.stack = []


def _tuple_n(n: int) -> Callable[[_Machine, Any], None]:
    def handler(m: _Machine, arg: Any) -> None:
        items = [_pop(m) for _ in range(n)]
        m.stack.append(tuple(reversed(items)))

    return handler


def _append(m: _Machine, arg: Any) -> None:
    value = _pop(m)
    _extend(m.stack[-1], [value])


def _appends(m: _Machine, arg: Any) -> None:
    items = _pop_mark(m)  # first: it changes which list m.stack is
    _extend(m.stack[-1], items)


def _additems(m: _Machine) -> None:
    items = _pop_mark(m)
    _extend(m.stack[-1], items)


def _collect(m: _Machine, make: Callable[[list[Any]], Any]) -> None:
    items = _pop_mark(m)
    m.stack.append(make(items))


def _extend(target: Any, items: list[Any]) -> None:
    if isinstance(target, list):
        target.extend(items)
    elif isinstance(target, set):
        target.update(map(_key, items))
    elif isinstance(target, Record):
        target.state = {**(target.state or {}), "__items__": [*_items_of(target), *items]}
    else:
        raise PickleRefused(f"APPEND to a {type(target).__name__}")


def _items_of(record: Record) -> list[Any]:
    state = record.state if isinstance(record.state, dict) else {}
    items = state.get("__items__", [])
    return list(items) if isinstance(items, list) else []


def _setitems(m: _Machine, items: list[Any]) -> None:
    target = m.stack[-1]
    if not isinstance(target, dict):
        raise PickleRefused(f"SETITEM on a {type(target).__name__}")
    for key, value in zip(items[::2], items[1::2], strict=True):
        target[_key(key)] = value


def _key(value: Any) -> Any:
    """A dict key or set member: hashable values as they are, anything else by its repr."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _memo_put(index_of: Callable[[_Machine, Any], int]) -> Callable[[_Machine, Any], None]:
    def handler(m: _Machine, arg: Any) -> None:
        if not m.stack or m.stack[-1] is _MARK:
            raise PickleRefused("memo of nothing")
        m.memo[index_of(m, arg)] = m.stack[-1]

    return handler


def _memo_get(m: _Machine, arg: Any) -> None:
    m.stack.append(m.memo[int(arg)])


def _global(m: _Machine, arg: Any) -> None:
    module, _, name = str(arg).partition(" ")
    m.stack.append(_allowed(module, name))


def _stack_global(m: _Machine, arg: Any) -> None:
    name, module = _pop(m), _pop(m)
    if not isinstance(module, str) or not isinstance(name, str):
        raise PickleRefused("STACK_GLOBAL of values that are not names")
    m.stack.append(_allowed(module, name))


def _allowed(module: str, name: str) -> GlobalStandIn:
    role = role_of(module, name)
    if role is None:
        raise PickleRefused(f"it names {module}.{name}, which is not on the allowlist")
    return GlobalStandIn(f"{module}.{name}", role)


def _reduce(m: _Machine, arg: Any) -> None:
    args = _pop(m)
    func = _pop(m)
    if not isinstance(func, GlobalStandIn) or not isinstance(args, tuple):
        raise PickleRefused("REDUCE of something that is not an allowed global")
    m.stack.append(_call(func, args))


def _newobj(m: _Machine, arg: Any) -> None:
    args = _pop(m)
    cls = _pop(m)
    m.stack.append(_instance(cls, args))


def _newobj_ex(m: _Machine, arg: Any) -> None:
    kwargs = _pop(m)
    args = _pop(m)
    cls = _pop(m)
    record = _instance(cls, args)
    if isinstance(record, Record) and kwargs:
        record.state = {"__kwargs__": kwargs}
    m.stack.append(record)


def _obj(m: _Machine, arg: Any) -> None:
    items = _pop_mark(m)
    m.stack.append(_instance(items[0], tuple(items[1:])))


def _inst(m: _Machine, arg: Any) -> None:
    module, _, name = str(arg).partition(" ")
    items = _pop_mark(m)
    m.stack.append(_instance(_allowed(module, name), tuple(items)))


def _instance(cls: Any, args: Any) -> Any:
    if not isinstance(cls, GlobalStandIn) or cls.role not in ("class", "joblib-array"):
        raise PickleRefused("an object of something that is not an allowed class")
    return Record(cls.name, tuple(args) if isinstance(args, tuple | list) else (args,))


def _call(func: GlobalStandIn, args: tuple[Any, ...]) -> Any:
    role = func.role
    if role in ("class", "joblib-array"):
        return Record(func.name, args)
    if role == "array":
        return PendingArray()
    if role == "dtype":
        return DTypeStandIn(args[0] if args else None)
    if role == "frombuffer":
        data, dtype, shape, order = args
        return array_from_state((1, shape, dtype, order == "F", data))
    if role == "scalar":
        dtype, data = args
        return np.frombuffer(bytes_of(data), dtype=as_dtype(dtype), count=1)[0].item()
    if role == "latin1":
        text, encoding = args
        if str(encoding).lower() not in ("latin1", "latin-1") or not isinstance(text, str):
            raise PickleRefused(f"_codecs.encode with {encoding!r}")
        return text.encode("latin-1")
    if role == "reconstructor":
        return Record(args[0].name if isinstance(args[0], GlobalStandIn) else "object")
    if role == "dict":
        return dict(args[0]) if args else {}
    if role in ("set", "frozenset"):
        return {_key(v) for v in args[0]} if args else set()
    if role == "bytearray":
        return bytes_of(args[0]) if args else b""
    if role == "complex":
        return complex(*args)
    raise PickleRefused(f"{func.name} cannot be called")


def _build(m: _Machine, arg: Any) -> None:
    state = _pop(m)
    target = m.stack[-1]
    if isinstance(target, PendingArray):
        target.value = array_from_state(state)
        m.stack[-1] = target.value
    elif isinstance(target, DTypeStandIn):
        target.built = dtype_from_state(target.spec, state)
    elif isinstance(target, Record):
        if target.cls == "joblib.numpy_pickle.NumpyArrayWrapper":
            m.stack[-1] = joblib_array(m.stream.read, state)
            return
        target.state = _merged_state(target.state, state)
    elif isinstance(target, dict) and isinstance(state, dict):
        target.update(state)
    else:
        raise PickleRefused(f"BUILD of a {type(target).__name__}")


def _merged_state(old: Any, state: Any) -> Any:
    if (
        isinstance(state, tuple)
        and len(state) == 2
        and all(isinstance(s, dict | None) for s in state)
    ):
        state = {**(state[0] or {}), **(state[1] or {})}
    if isinstance(old, dict) and isinstance(state, dict):
        return {**old, **state}
    return state


_HANDLERS: dict[str, Callable[[_Machine, Any], None]] = {
    "PROTO": lambda m, a: None,
    "FRAME": lambda m, a: None,
    "NONE": _push(None),
    "NEWTRUE": _push(True),
    "NEWFALSE": _push(False),
    "EMPTY_LIST": _push(list),
    "EMPTY_DICT": _push(dict),
    "EMPTY_SET": _push(set),
    "EMPTY_TUPLE": _push(()),
    "MARK": _mark,
    "POP": lambda m, a: _pop_one(m),
    "POP_MARK": lambda m, a: _drop_mark(m),
    "DUP": lambda m, a: m.stack.append(m.stack[-1]),
    "APPEND": _append,
    "APPENDS": _appends,
    "LIST": lambda m, a: _collect(m, list),
    "TUPLE": lambda m, a: _collect(m, tuple),
    "TUPLE1": _tuple_n(1),
    "TUPLE2": _tuple_n(2),
    "TUPLE3": _tuple_n(3),
    "DICT": lambda m, a: _dict(m),
    "SETITEM": lambda m, a: _setitems(m, list(reversed([_pop(m), _pop(m)]))),
    "SETITEMS": lambda m, a: _setitems(m, _pop_mark(m)),
    "ADDITEMS": lambda m, a: _additems(m),
    "FROZENSET": lambda m, a: _collect(m, lambda items: frozenset(map(_key, items))),
    "PUT": _memo_put(lambda m, a: int(a)),
    "BINPUT": _memo_put(lambda m, a: int(a)),
    "LONG_BINPUT": _memo_put(lambda m, a: int(a)),
    "MEMOIZE": _memo_put(lambda m, a: len(m.memo)),
    "GET": _memo_get,
    "BINGET": _memo_get,
    "LONG_BINGET": _memo_get,
    "GLOBAL": _global,
    "STACK_GLOBAL": _stack_global,
    "REDUCE": _reduce,
    "NEWOBJ": _newobj,
    "NEWOBJ_EX": _newobj_ex,
    "OBJ": _obj,
    "INST": _inst,
    "BUILD": _build,
    "BYTEARRAY8": lambda m, a: m.stack.append(bytes(a)),
}
for _name in (
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
    "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
):  # fmt: skip
    _HANDLERS[_name] = _push_arg


def _pop_one(m: _Machine) -> None:
    """POP: the top value, or the mark when the stack since it is empty (as pickle does)."""
    if m.stack:
        m.stack.pop()
    else:
        _pop_mark(m)


def _dict(m: _Machine) -> None:
    items = _pop_mark(m)
    m.stack.append({})
    _setitems(m, items)


def _drop_mark(m: _Machine) -> None:
    _pop_mark(m)
