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
from dataclasses import dataclass, field
from typing import IO, cast

from bitwright.scan._opcodes import HANDLERS
from bitwright.scan._symbols import StorageRef, Unmodelled, Value, dict_items
from bitwright.scan.allowlist import (
    DEFAULT_FAMILIES,
    Use,
    allowed_use,
    constructor_uses,
    python3_module,
)

__all__ = [
    "MAX_LINE",
    "Machine",
    "PickleAnalysis",
    "StorageRef",
    "analyse_pickle",
]

MAX_LINE = 64 << 10
"""The longest protocol 0 line (a name, a number) read; longer ones end the analysis."""

_MAX_PROBLEMS = 20
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_DTYPE = ("numpy", "dtype")
_DESCR = re.compile(r"[<>|=]?([biufcmMOSUVa?])(\d*)")


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


class _Reader:
    """A forward-only view of a stream for :func:`pickletools.genops`: bounded, positioned.

    Short reads (opcodes, small arguments: nearly all of them) go straight to the stream;
    a long one is first cut to what the data holds, so a declared length of 2**62 never
    asks the stream for that much memory.
    """

    _SHORT = 1 << 16

    def __init__(self, stream: IO[bytes], size: int, start: int = 0) -> None:
        self._stream = stream
        self._read = stream.read
        self._size = size
        self.pos = start

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        if 0 <= n <= self._SHORT and self.pos + n <= self._size:
            data = self._read(n)
        else:
            left = self._size - self.pos
            data = self._read(max(left if n < 0 else min(n, left), 0))
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
    machine = Machine(reader, families)
    machine.run()
    return machine.result


class Machine:
    """One pickle stream run symbolically; :attr:`result` says what it reached.

    The opcode handlers (:mod:`._opcodes`) drive it through the methods below, which keep
    the stack, the marks and the memo as :mod:`pickle` does and put every global past the
    allowlist.
    """

    def __init__(self, reader: _Reader, families: frozenset[str], depth: int = 0) -> None:
        self.reader = reader
        self.families = families
        self.depth = depth
        self.stack: list[Value] = []
        self.metastack: list[list[Value]] = []
        self.memo: dict[int, Value] = {}
        self.result = PickleAnalysis()

    # -- driving ---------------------------------------------------------------------------

    def run(self) -> None:
        """Read opcodes until STOP, the end of the data, or what cannot be modelled."""
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
            handler = HANDLERS.get(opcode.name)
            try:
                if handler is None:
                    raise Unmodelled(f"opcode {opcode.name} cannot be modelled")
                handler(self, opcode.name, arg)
            except Unmodelled as why:
                self._problem(str(why))
                break
        result.end = self.reader.tell()

    def _problem(self, text: str) -> None:
        if len(self.result.problems) < _MAX_PROBLEMS:
            self.result.problems.append(text)

    # -- stack -----------------------------------------------------------------------------

    def push(self, value: Value) -> None:
        """Push ``value``."""
        self.stack.append(value)

    def pop(self) -> Value:
        """Pop the top value; an empty stack cannot be modelled."""
        if not self.stack:
            raise Unmodelled("stack underflow: the stream pops what it never pushed")
        return self.stack.pop()

    def top(self) -> Value:
        """The top value, left in place."""
        if not self.stack:
            raise Unmodelled("stack underflow: the stream reads what it never pushed")
        return self.stack[-1]

    def pop_mark(self) -> list[Value]:
        """Pop everything above the last MARK, and the mark."""
        if not self.metastack:
            raise Unmodelled("a MARK is missing: the stream pops to a mark it never set")
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

    def global_ref(self, module: str, name: str) -> Value:
        """A global named by ``module`` and ``name``, recorded as named."""
        if _NAME.fullmatch(module) is None or _NAME.fullmatch(name) is None:
            raise Unmodelled(f"global {module!r} {name!r} is not a module and a name")
        ref = (module, name)
        self.use(ref, Use.REFERENCE)
        return Value("global", name=ref, refs=frozenset([ref]))

    def callee(self, value: Value, use: Use, opcode: str) -> tuple[str, str]:
        """The global ``value`` names, recorded as used so far; a non-global is unmodelled."""
        if value.kind != "global" or value.name is None:
            raise Unmodelled(
                f"{opcode} of a value that is not a named global ({value.kind}): "
                "what it calls cannot be known without loading the file"
            )
        self.use(value.name, use)
        return value.name

    def call(self, callee: tuple[str, str], args: Value) -> Value:
        """The result of calling ``callee``; globals among ``args`` count as called."""
        uses = constructor_uses(*callee)
        if uses and len(args.items) >= len(uses):
            label = ".".join(callee)
            for value, use in zip(args.items, uses, strict=False):
                self.callee(value, use, label)
            for inner in args.items[len(uses) :]:
                self.pass_refs(inner)
        else:
            self.pass_refs(args)
        return Value("made", name=callee, args=args)

    def pass_refs(self, args: Value) -> None:
        """Globals handed to a call may be called by it: they count as called."""
        for ref in sorted(args.refs):
            self.use(ref, Use.CALL)

    def mutate(self, target: Value, opcode: str) -> None:
        """Refuse ``opcode`` changing an imported object (monkeypatching) or a constant."""
        if target.kind == "global":
            raise Unmodelled(f"{opcode} changes an imported object, not one the stream built")
        if target.kind not in ("list", "dict", "set", "made"):
            raise Unmodelled(f"{opcode} of a {target.kind}, which cannot hold items")

    # -- joblib ----------------------------------------------------------------------------

    def joblib_array(self, wrapper: Value) -> None:
        """Follow the array bytes joblib writes after a NumpyArrayWrapper's BUILD."""
        state = dict_items(wrapper.state)
        dtype = state.get("dtype")
        shape = state.get("shape")
        if dtype is None or shape is None or shape.kind != "tuple":
            raise Unmodelled("a joblib array wrapper without a dtype and a shape")
        counts = [d.number for d in shape.items]
        if any(c is None or c < 0 for c in counts) or len(counts) != len(shape.items):
            raise Unmodelled("a joblib array wrapper whose shape is not a tuple of counts")
        itemsize, has_object = _dtype_facts(dtype)
        if has_object:
            self._nested_pickle()
            return
        if "numpy_array_alignment_bytes" in state:
            padding = self.reader.read(1)
            if len(padding) != 1 or not self.reader.skip(padding[0]):
                raise Unmodelled("a joblib array's padding runs past the end of the file")
        nbytes = math.prod(c for c in counts if c is not None) * itemsize
        if not self.reader.skip(nbytes):
            raise Unmodelled(f"a joblib array of {nbytes} bytes runs past the end of the file")

    def _nested_pickle(self) -> None:
        if self.depth >= 4:
            raise Unmodelled("joblib object arrays nested more than four deep")
        inner = Machine(self.reader, self.families, self.depth + 1)
        inner.run()
        for key, use in inner.result.globals.items():
            module, _, name = key.rpartition(".")
            self.use((module, name), use)
        for problem in inner.result.problems:
            self._problem(f"in a joblib object array: {problem}")
        if not inner.result.stopped:
            raise Unmodelled("a joblib object array's pickle does not stop")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _dtype_facts(dtype: Value) -> tuple[int, bool]:
    """(itemsize, has Python objects) of a symbolic ``numpy.dtype(descr, ...)`` after BUILD."""
    if dtype.kind != "made" or dtype.name is None or dtype.name != _DTYPE or dtype.args is None:
        raise Unmodelled("a joblib array whose dtype is not a numpy.dtype")
    descr = dtype.args.items[0].text if dtype.args.items else None
    match = _DESCR.fullmatch(descr or "")
    if match is None:
        raise Unmodelled(f"a joblib array of dtype {descr!r}, which cannot be modelled")
    kind, digits = match.groups()
    state = dtype.state.items if dtype.state is not None and dtype.state.kind == "tuple" else []
    numbers = [item.number for item in state]
    elsize = numbers[5] if len(numbers) > 5 else None
    flags = numbers[7] if len(numbers) > 7 else None
    has_object = kind == "O" or (flags is not None and flags & 1 == 1)
    if elsize is not None and elsize > 0:
        return elsize, has_object
    if not digits:
        raise Unmodelled(f"a joblib array of dtype {descr!r} without a size")
    return int(digits) * (4 if kind == "U" else 1), has_object
