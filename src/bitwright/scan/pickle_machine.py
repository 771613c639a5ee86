"""The symbolic pickle machine: what a pickle would import and call, found without loading it.

The opcode stream is read with :func:`pickletools.genops` and run on a stack and a memo of
symbolic values, as :mod:`pickle`'s unpickler would run it, except that nothing is imported
or called. Strings stay strings, so ``STACK_GLOBAL`` resolves a name built from memoized
strings; every global is recorded with how far it is used (:class:`~.allowlist.Use`):
named, constructed (``NEWOBJ``, ``copyreg._reconstructor``), or called (``REDUCE``,
``INST``, ``OBJ``, or passed to a call). A global the allowlist does not admit for that use
makes the file unsafe; so does anything the machine cannot model: a callee that is not a
global (the result of another call), ``STACK_GLOBAL`` of something computed, the extension
registry (``EXT1/2/4``), a mutation of a global (``BUILD``, ``SETITEM``... on an imported
object), an inconsistent stack, an unknown opcode or a truncated stream.

Two formats put bytes between opcodes, and the machine follows them: joblib writes each
array's bytes right after the ``BUILD`` of its ``NumpyArrayWrapper`` (a nested pickle for
object arrays), and torch's storages are persistent ids (``BINPERSID``) whose bytes live in
other archive members; those ids are returned so that the archive can be checked against
them.
"""

from __future__ import annotations

import math
import pickletools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, cast

from bitwright.scan.allowlist import (
    DEFAULT_FAMILIES,
    Use,
    allowed_use,
    constructor_uses,
    python3_module,
)

__all__ = [
    "MAX_LINE",
    "PickleAnalysis",
    "StorageRef",
    "analyse_pickle",
]

MAX_LINE = 64 << 10
"""The longest protocol 0 line (a name, a number) read; longer ones end the analysis."""

_MAX_ITEMS = 64  # items kept per container: enough to read a state, bounded for huge lists
_MAX_PROBLEMS = 20
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_DTYPE = ("numpy", "dtype")
_DESCR = re.compile(r"[<>|=]?([biufcmMOSUVa?])(\d*)")


@dataclass(frozen=True)
class StorageRef:
    """A torch storage a pickle refers to by persistent id.

    Attributes:
        key: the archive member name under ``data/``.
        dtype: the storage type's global name (``torch.FloatStorage``).
        numel: the number of elements it declares.
    """

    key: str
    dtype: str
    numel: int


@dataclass
class PickleAnalysis:
    """What one pickle stream would do when loaded.

    Attributes:
        globals: ``module.name`` -> the most it is used (as the allowlist maps names).
        problems: why the stream is unsafe, one line each (empty when it is safe).
        storages: torch storages referred to by persistent id.
        end: the offset after ``STOP`` (or where the analysis ended).
        stopped: whether the stream reached ``STOP``.
        protocol: the declared protocol (0 when there is no ``PROTO``).
        opcodes: how many opcodes were read.
    """

    globals: dict[str, Use] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    storages: list[StorageRef] = field(default_factory=list)
    end: int = 0
    stopped: bool = False
    protocol: int = 0
    opcodes: int = 0
    reached_code: bool = False

    @property
    def safe(self) -> bool:
        """Whether loading the stream reaches only what the allowlist admits."""
        return self.stopped and not self.problems


class _Unmodelled(Exception):  # noqa: N818  (a control-flow signal inside the machine)
    """The machine cannot follow the stream past this point."""


@dataclass(eq=False)
class _Value:
    """A symbolic value: what the unpickler would hold, as far as safety needs it."""

    kind: str  # global, text, number, bytes, const, list, tuple, dict, set, made, mark
    text: str | None = None
    number: int | None = None
    name: tuple[str, str] | None = None  # a global's (module, name); what made a "made"
    items: list[_Value] = field(default_factory=list)
    refs: frozenset[tuple[str, str]] = frozenset()  # globals in it, made objects excepted
    args: _Value | None = None  # the arguments a "made" value was called with
    state: _Value | None = None  # the state BUILD gave a "made" value


_MARK = _Value("mark")
_ANY = _Value("const")


class _Reader:
    """A forward-only view of a stream for :func:`pickletools.genops`: bounded, positioned."""

    def __init__(self, stream: IO[bytes], size: int, start: int = 0) -> None:
        self._stream = stream
        self._size = size
        self.pos = start

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        left = self._size - self.pos
        n = left if n < 0 else min(n, left)
        data = self._stream.read(max(n, 0))
        self.pos += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        cap = min(MAX_LINE, self._size - self.pos)
        data = self._stream.readline(cap if limit < 0 else min(limit, cap))
        self.pos += len(data)
        return data

    def skip(self, n: int) -> bool:
        """Skip ``n`` bytes; return whether they were there."""
        while n > 0:
            got = len(self.read(min(n, 1 << 20)))
            if not got:
                return False
            n -= got
        return True


def analyse_pickle(
    stream: IO[bytes],
    *,
    size: int,
    start: int = 0,
    families: frozenset[str] = DEFAULT_FAMILIES,
) -> PickleAnalysis:
    """Run the pickle at the current position of ``stream`` symbolically.

    Args:
        stream: a binary stream positioned at the pickle (it is read forward only).
        size: the offset where the stream's data ends (reads never go past it).
        start: the offset of the current position (for :attr:`PickleAnalysis.end`).
        families: the allowlist families that admit globals.

    Returns:
        What the stream imports, calls and refers to, and why it is unsafe, if it is.
    """
    reader = _Reader(stream, size, start)
    machine = _Machine(reader, families)
    machine.run()
    return machine.result


class _Machine:
    def __init__(self, reader: _Reader, families: frozenset[str], depth: int = 0) -> None:
        self.reader = reader
        self.families = families
        self.depth = depth
        self.stack: list[_Value] = []
        self.metastack: list[list[_Value]] = []
        self.memo: dict[int, _Value] = {}
        self.result = PickleAnalysis()

    # -- driving ---------------------------------------------------------------------------

    def run(self) -> None:
        ops = pickletools.genops(cast(IO[bytes], self.reader))  # genops needs read/readline/tell
        result = self.result
        while True:
            try:
                opcode, arg, _ = next(ops)
            except StopIteration:
                break
            except Exception as exc:  # hostile bytes: any parse error ends the analysis
                where = self.reader.tell()
                self._problem(f"malformed pickle at byte {where}: {_one_line(exc)}")
                break
            result.opcodes += 1
            if opcode.name == "STOP":
                if len(self.stack) != 1 or self.metastack:
                    self._problem("the stream stops with an inconsistent stack")
                result.stopped = True
                break
            try:
                self._step(opcode.name, arg)
            except _Unmodelled as why:
                self._problem(str(why))
                break
        result.end = self.reader.tell()

    def _problem(self, text: str) -> None:
        if len(self.result.problems) < _MAX_PROBLEMS:
            self.result.problems.append(text)

    def _step(self, name: str, arg: Any) -> None:
        handler = _HANDLERS.get(name)
        if handler is None:
            raise _Unmodelled(f"opcode {name} cannot be modelled")
        handler(self, name, arg)

    # -- stack -----------------------------------------------------------------------------

    def push(self, value: _Value) -> None:
        self.stack.append(value)

    def pop(self) -> _Value:
        if not self.stack:
            raise _Unmodelled("stack underflow: the stream pops what it never pushed")
        return self.stack.pop()

    def top(self) -> _Value:
        if not self.stack:
            raise _Unmodelled("stack underflow: the stream reads what it never pushed")
        return self.stack[-1]

    def pop_mark(self) -> list[_Value]:
        if not self.metastack:
            raise _Unmodelled("a MARK is missing: the stream pops to a mark it never set")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    # -- globals and calls -----------------------------------------------------------------

    def use(self, ref: tuple[str, str], use: Use) -> None:
        """Record that ``ref`` is used so far; flag it when the allowlist says no."""
        module, name = python3_module(ref[0]), ref[1]
        key = f"{module}.{name}"
        previous = self.result.globals.get(key)
        if previous is not None and previous >= use:
            return
        self.result.globals[key] = use
        self.result.reached_code = True
        admitted = allowed_use(module, name, self.families)
        if admitted is None:
            if previous is None:
                self._problem(f"imports {key}, which the allowlist does not admit")
        elif admitted < use:
            verb = "calls" if use is Use.CALL else "constructs"
            self._problem(
                f"{verb} {key}, which the allowlist admits only to "
                f"{'construct' if admitted is Use.CONSTRUCT else 'name'}"
            )

    def global_ref(self, module: str, name: str) -> _Value:
        if _NAME.fullmatch(module) is None or _NAME.fullmatch(name) is None:
            raise _Unmodelled(f"global {module!r} {name!r} is not a module and a name")
        ref = (module, name)
        self.use(ref, Use.REFERENCE)
        return _Value("global", name=ref, refs=frozenset([ref]))

    def callee(self, value: _Value, use: Use, opcode: str) -> tuple[str, str]:
        if value.kind != "global" or value.name is None:
            raise _Unmodelled(
                f"{opcode} of a value that is not a named global ({value.kind}): "
                "what it calls cannot be known without loading the file"
            )
        self.use(value.name, use)
        return value.name

    def call(self, callee: tuple[str, str], args: _Value) -> _Value:
        uses = constructor_uses(*callee)
        if uses and len(args.items) >= len(uses):
            label = ".".join(callee)
            for value, use in zip(args.items, uses, strict=False):
                self.callee(value, use, label)
            for inner in args.items[len(uses) :]:
                self.pass_refs(inner)
        else:
            self.pass_refs(args)
        return _Value("made", name=callee, args=args)

    def pass_refs(self, args: _Value) -> None:
        """Globals handed to a call may be called by it: they count as called."""
        for ref in sorted(args.refs):
            self.use(ref, Use.CALL)

    def mutate(self, target: _Value, opcode: str) -> None:
        if target.kind in ("global", "mark"):
            raise _Unmodelled(f"{opcode} changes an imported object, not one the stream built")

    # -- joblib ----------------------------------------------------------------------------

    def joblib_array(self, wrapper: _Value) -> None:
        """Follow the array bytes joblib writes after a NumpyArrayWrapper's BUILD."""
        state = _dict_items(wrapper.state)
        dtype = state.get("dtype")
        shape = state.get("shape")
        if dtype is None or shape is None or shape.kind != "tuple":
            raise _Unmodelled("a joblib array wrapper without a dtype and a shape")
        counts = [d.number for d in shape.items]
        if any(c is None or c < 0 for c in counts) or len(counts) != len(shape.items):
            raise _Unmodelled("a joblib array wrapper whose shape is not a tuple of counts")
        itemsize, has_object = _dtype_facts(dtype)
        if has_object:
            self._nested_pickle()
            return
        if "numpy_array_alignment_bytes" in state:
            padding = self.reader.read(1)
            if len(padding) != 1 or not self.reader.skip(padding[0]):
                raise _Unmodelled("a joblib array's padding runs past the end of the file")
        nbytes = math.prod(c for c in counts if c is not None) * itemsize
        if not self.reader.skip(nbytes):
            raise _Unmodelled(f"a joblib array of {nbytes} bytes runs past the end of the file")

    def _nested_pickle(self) -> None:
        if self.depth >= 4:
            raise _Unmodelled("joblib object arrays nested more than four deep")
        inner = _Machine(self.reader, self.families, self.depth + 1)
        inner.run()
        for key, use in inner.result.globals.items():
            module, _, name = key.rpartition(".")
            self.use((module, name), use)
        for problem in inner.result.problems:
            self._problem(f"in a joblib object array: {problem}")
        if not inner.result.stopped:
            raise _Unmodelled("a joblib object array's pickle does not stop")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _dict_items(value: _Value | None) -> dict[str, _Value]:
    if value is None or value.kind != "dict":
        return {}
    pairs = value.items
    return {k.text: v for k, v in zip(pairs[::2], pairs[1::2], strict=False) if k.text is not None}


def _dtype_facts(dtype: _Value) -> tuple[int, bool]:
    """(itemsize, has Python objects) of a symbolic ``numpy.dtype(descr, ...)`` after BUILD."""
    if dtype.kind != "made" or dtype.name is None or dtype.name != _DTYPE or dtype.args is None:
        raise _Unmodelled("a joblib array whose dtype is not a numpy.dtype")
    descr = dtype.args.items[0].text if dtype.args.items else None
    match = _DESCR.fullmatch(descr or "")
    if match is None:
        raise _Unmodelled(f"a joblib array of dtype {descr!r}, which cannot be modelled")
    kind, digits = match.groups()
    state = dtype.state.items if dtype.state is not None and dtype.state.kind == "tuple" else []
    numbers = [item.number for item in state]
    elsize = numbers[5] if len(numbers) > 5 else None
    flags = numbers[7] if len(numbers) > 7 else None
    has_object = kind == "O" or (flags is not None and flags & 1 == 1)
    if elsize is not None and elsize > 0:
        return elsize, has_object
    if not digits:
        raise _Unmodelled(f"a joblib array of dtype {descr!r} without a size")
    return int(digits) * (4 if kind == "U" else 1), has_object


# -- opcode handlers -----------------------------------------------------------------------

_Handler = Callable[[_Machine, str, Any], None]
_HANDLERS: dict[str, _Handler] = {}


def _handles(*names: str) -> Callable[[_Handler], _Handler]:
    def register(handler: _Handler) -> _Handler:
        for name in names:
            _HANDLERS[name] = handler
        return handler

    return register


@_handles("PROTO")
def _proto(m: _Machine, op: str, arg: Any) -> None:
    m.result.protocol = int(arg)


@_handles("FRAME")
def _frame(m: _Machine, op: str, arg: Any) -> None:
    pass


@_handles("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4")
def _integer(m: _Machine, op: str, arg: Any) -> None:
    number = int(arg) if isinstance(arg, int) else None
    m.push(_Value("number", number=number))


@_handles("FLOAT", "BINFLOAT")
def _float(m: _Machine, op: str, arg: Any) -> None:
    m.push(_Value("number"))


@_handles("STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE")
@_handles("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8")
def _text(m: _Machine, op: str, arg: Any) -> None:
    text = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
    m.push(_Value("text", text=text))


@_handles("BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "NEXT_BUFFER")
def _bytes(m: _Machine, op: str, arg: Any) -> None:
    m.push(_Value("bytes"))


@_handles("READONLY_BUFFER")
def _readonly(m: _Machine, op: str, arg: Any) -> None:
    m.top()


@_handles("NONE", "NEWTRUE", "NEWFALSE")
def _const(m: _Machine, op: str, arg: Any) -> None:
    m.push(_ANY)


@_handles("EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_DICT", "EMPTY_SET")
def _empty(m: _Machine, op: str, arg: Any) -> None:
    kinds = {"EMPTY_LIST": "list", "EMPTY_TUPLE": "tuple", "EMPTY_DICT": "dict"}
    m.push(_Value(kinds.get(op, "set")))


@_handles("MARK")
def _mark(m: _Machine, op: str, arg: Any) -> None:
    m.metastack.append(m.stack)
    m.stack = []


@_handles("POP")
def _pop(m: _Machine, op: str, arg: Any) -> None:
    if m.stack:
        m.pop()
    else:
        m.pop_mark()


@_handles("POP_MARK")
def _pop_mark(m: _Machine, op: str, arg: Any) -> None:
    m.pop_mark()


@_handles("DUP")
def _dup(m: _Machine, op: str, arg: Any) -> None:
    m.push(m.top())


@_handles("TUPLE", "LIST", "FROZENSET")
def _collect(m: _Machine, op: str, arg: Any) -> None:
    kinds = {"TUPLE": "tuple", "LIST": "list"}
    m.push(_container(kinds.get(op, "set"), m.pop_mark()))


@_handles("TUPLE1", "TUPLE2", "TUPLE3")
def _small_tuple(m: _Machine, op: str, arg: Any) -> None:
    count = int(op[-1])
    items = [m.pop() for _ in range(count)][::-1]
    m.push(_container("tuple", items))


@_handles("DICT")
def _dict(m: _Machine, op: str, arg: Any) -> None:
    items = m.pop_mark()
    if len(items) % 2:
        raise _Unmodelled("DICT of an odd number of items")
    m.push(_container("dict", items))


@_handles("APPEND", "ADDITEMS", "APPENDS", "SETITEM", "SETITEMS")
def _extend(m: _Machine, op: str, arg: Any) -> None:
    if op == "APPEND":
        items = [m.pop()]
    elif op == "SETITEM":
        value = m.pop()
        items = [m.pop(), value]
    else:
        items = m.pop_mark()
    if op.startswith("SETITEM") and len(items) % 2:
        raise _Unmodelled(f"{op} of an odd number of items")
    target = m.top()
    m.mutate(target, op)
    _add_items(target, items)


@_handles("GET", "BINGET", "LONG_BINGET")
def _get(m: _Machine, op: str, arg: Any) -> None:
    value = m.memo.get(int(arg))
    if value is None:
        raise _Unmodelled(f"{op} of memo entry {arg}, which was never stored")
    m.push(value)


@_handles("PUT", "BINPUT", "LONG_BINPUT")
def _put(m: _Machine, op: str, arg: Any) -> None:
    index = int(arg)
    if index < 0:
        raise _Unmodelled("a negative memo index")
    m.memo[index] = m.top()


@_handles("MEMOIZE")
def _memoize(m: _Machine, op: str, arg: Any) -> None:
    m.memo[len(m.memo)] = m.top()


@_handles("GLOBAL")
def _global(m: _Machine, op: str, arg: Any) -> None:
    module, _, name = str(arg).partition(" ")
    m.push(m.global_ref(module, name))


@_handles("STACK_GLOBAL")
def _stack_global(m: _Machine, op: str, arg: Any) -> None:
    name, module = m.pop(), m.pop()
    if module.kind != "text" or name.kind != "text" or module.text is None or name.text is None:
        raise _Unmodelled(
            "STACK_GLOBAL of a name that is not a plain string "
            f"({module.kind}, {name.kind}): it is computed when the file loads"
        )
    m.push(m.global_ref(module.text, name.text))


@_handles("INST")
def _inst(m: _Machine, op: str, arg: Any) -> None:
    module, _, name = str(arg).partition(" ")
    cls = m.global_ref(module, name)
    args = _container("tuple", m.pop_mark())
    m.push(m.call(m.callee(cls, Use.CALL, "INST"), args))


@_handles("OBJ")
def _obj(m: _Machine, op: str, arg: Any) -> None:
    items = m.pop_mark()
    if not items:
        raise _Unmodelled("OBJ without a class")
    callee = m.callee(items[0], Use.CALL, "OBJ")
    m.push(m.call(callee, _container("tuple", items[1:])))


@_handles("REDUCE")
def _reduce(m: _Machine, op: str, arg: Any) -> None:
    args = m.pop()
    func = m.pop()
    if args.kind != "tuple":
        raise _Unmodelled(f"REDUCE with arguments that are not a tuple ({args.kind})")
    m.push(m.call(m.callee(func, Use.CALL, "REDUCE"), args))


@_handles("NEWOBJ", "NEWOBJ_EX")
def _newobj(m: _Machine, op: str, arg: Any) -> None:
    kwargs = m.pop() if op == "NEWOBJ_EX" else _Value("dict")
    args = m.pop()
    cls = m.callee(m.pop(), Use.CONSTRUCT, op)
    if args.kind != "tuple" or kwargs.kind != "dict":
        raise _Unmodelled(f"{op} with arguments that are not a tuple and a dict")
    m.pass_refs(args)
    m.pass_refs(kwargs)
    m.push(_Value("made", name=cls, args=args))


@_handles("BUILD")
def _build(m: _Machine, op: str, arg: Any) -> None:
    state = m.pop()
    target = m.top()
    m.mutate(target, "BUILD")
    if target.kind != "made":
        raise _Unmodelled(f"BUILD of a {target.kind}, which has no state to set")
    target.state = state
    if target.name is not None and (python3_module(target.name[0]), target.name[1]) == _WRAPPER:
        m.joblib_array(target)


@_handles("PERSID", "BINPERSID")
def _persid(m: _Machine, op: str, arg: Any) -> None:
    pid = _Value("text", text=str(arg)) if op == "PERSID" else m.pop()
    m.pass_refs(pid)
    storage = _storage(pid)
    if storage is None:
        raise _Unmodelled("a persistent id that is not a torch storage reference")
    m.result.storages.append(storage)
    m.push(_Value("made"))


@_handles("EXT1", "EXT2", "EXT4")
def _extension(m: _Machine, op: str, arg: Any) -> None:
    m.result.reached_code = True
    raise _Unmodelled(
        f"{op} {arg} names a global through the copyreg extension registry, "
        "which only the loading interpreter knows"
    )


def _storage(pid: _Value) -> StorageRef | None:
    """A torch storage id: ('storage', StorageType, key, location, numel[, view])."""
    items = pid.items
    if pid.kind != "tuple" or len(items) not in (5, 6) or items[0].text != "storage":
        return None
    kind, key, numel = items[1], items[2], items[4]
    if kind.kind != "global" or kind.name is None or key.text is None or numel.number is None:
        return None
    return StorageRef(key=key.text, dtype=".".join(kind.name), numel=numel.number)


def _container(kind: str, items: list[_Value]) -> _Value:
    value = _Value(kind)
    _add_items(value, items)
    return value


def _add_items(target: _Value, items: list[_Value]) -> None:
    room = _MAX_ITEMS - len(target.items)
    if room > 0:
        target.items.extend(items[:room])
    refs = frozenset().union(*(item.refs for item in items)) if items else frozenset()
    if refs:
        target.refs = target.refs | refs
