"""The values a pickle describes, as :mod:`._pickle_data` rebuilds them, and their leaves.

Records of allowed classes, numpy arrays and dtypes rebuilt from raw bytes (never from code
of the pickle), joblib's arrays read from the bytes after their wrapper, and
:func:`flatten`, which names every leaf (``estimators_.3.tree_.nodes.threshold``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_LEAVES",
    "DTypeStandIn",
    "GlobalStandIn",
    "PendingArray",
    "PickleRefused",
    "Record",
    "array_from_state",
    "as_dtype",
    "bytes_of",
    "dtype_from_state",
    "flatten",
    "joblib_array",
]

MAX_LEAVES = 1_000_000
"""Named values a flattened model may have at most."""

_MAX_DEPTH = 100


class PickleRefused(ValueError):
    """The file is not a pickle this reader models, or names what it may not."""


@dataclass
class Record:
    """An object of an allowed class, as data: its class, arguments and state."""

    cls: str
    args: tuple[Any, ...] = ()
    state: Any = None


@dataclass
class GlobalStandIn:
    """An allowed global the pickle names: its dotted name and its role in the allowlist."""

    name: str
    role: str


@dataclass
class DTypeStandIn:
    """A ``numpy.dtype(spec, ...)`` waiting for its BUILD state."""

    spec: Any
    built: np.dtype[Any] | None = None

    def value(self) -> np.dtype[Any]:
        """The dtype, built from its spec alone when no BUILD state came."""
        if self.built is None:
            self.built = plain_dtype(self.spec)
        return self.built


@dataclass
class PendingArray:
    """An array from numpy's reconstructor, waiting for its BUILD state."""

    value: npt.NDArray[Any] | None = None


def bytes_of(value: Any) -> bytes:
    """Raw data as pickles hold it: bytes, or text of latin-1 characters (protocol 2)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("latin-1")
    raise PickleRefused(f"raw data of type {type(value).__name__}")


def as_dtype(value: Any) -> np.dtype[Any]:
    """A dtype stand-in (or dtype) as a numpy dtype; object dtypes are refused."""
    if isinstance(value, DTypeStandIn):
        dtype = value.value()
    elif isinstance(value, np.dtype):
        dtype = value
    else:
        raise PickleRefused(f"a dtype that is a {type(value).__name__}")
    if dtype.hasobject:
        raise PickleRefused("an object array (Python objects, not numbers)")
    return dtype


def plain_dtype(spec: Any) -> np.dtype[Any]:
    """``numpy.dtype(spec)`` of a short spec string (``"f8"``, ``"V56"``), nothing else."""
    if not isinstance(spec, str) or len(spec) > 32:
        raise PickleRefused(f"a dtype spec {spec!r}")
    try:
        return np.dtype(spec)
    except TypeError as exc:
        raise PickleRefused(f"the dtype {spec!r} ({exc})") from None


def dtype_from_state(spec: Any, state: Any) -> np.dtype[Any]:
    """Numpy's dtype state: (version, byte order, subarray, names, fields, itemsize, ...)."""
    if not isinstance(state, tuple) or len(state) < 8:
        raise PickleRefused("a dtype state of another shape")
    _, order, subarray, names, fields, itemsize = state[:6]
    if subarray is not None:
        base, shape = subarray
        return np.dtype((as_dtype(base), tuple(shape)))
    if names is None:
        dtype = plain_dtype(spec)
        return dtype.newbyteorder(order) if order in ("<", ">") else dtype
    formats = [as_dtype(fields[n][0]) for n in names]
    offsets = [int(fields[n][1]) for n in names]
    return np.dtype(
        {"names": list(names), "formats": formats, "offsets": offsets, "itemsize": itemsize}
    )


def array_from_state(state: Any) -> npt.NDArray[Any]:
    """Numpy's array state: (version, shape, dtype, is Fortran order, raw bytes)."""
    if not isinstance(state, tuple) or len(state) != 5:
        raise PickleRefused("an array state of another shape")
    _, shape, dtype_value, fortran, data = state
    dtype = as_dtype(dtype_value)
    shape = tuple(int(n) for n in shape)
    raw = bytes_of(data)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count * dtype.itemsize != len(raw):
        raise PickleRefused(f"an array of {count} elements with {len(raw)} bytes of data")
    array = np.frombuffer(raw, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def joblib_array(read: Callable[[int], bytes], state: Any) -> npt.NDArray[Any]:
    """Joblib writes an array's bytes right after its wrapper: read them from the stream."""
    if not isinstance(state, dict):
        raise PickleRefused("a joblib array wrapper without its attributes")
    dtype = as_dtype(state.get("dtype"))
    shape = tuple(int(n) for n in state.get("shape", ()))
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if state.get("numpy_array_alignment_bytes") is not None:
        padding = read(1)
        if len(padding) != 1 or len(read(padding[0])) != padding[0]:
            raise PickleRefused("a joblib array ends early")
    size = count * dtype.itemsize
    data = read(size)
    if len(data) != size:
        raise PickleRefused(f"a joblib array of {size} bytes ends after {len(data)}")
    array = np.frombuffer(data, dtype=dtype, count=count)
    if state.get("order") == "F":
        return array.reshape(shape[::-1]).transpose().copy()
    return array.reshape(shape).copy()


def flatten(value: Any) -> Iterator[tuple[str, Any]]:
    """Yield ``(path, leaf)`` for every value in the data a pickle describes.

    Leaves are numpy arrays (a structured array becomes one array per field), numbers,
    strings, bytes, booleans and None; a record's class is the leaf ``PATH.__class__``.
    A value reached twice (the memo shares it) is a leaf ``shared with PATH`` the second
    time, so cycles end.

    Raises:
        PickleRefused: more than :data:`MAX_LEAVES` leaves, or nesting deeper than 100.
    """
    seen: dict[int, str] = {}
    count = 0
    todo: list[tuple[str, Any, int]] = [("$", value, 0)]
    while todo:
        path, item, depth = todo.pop()
        if depth > _MAX_DEPTH:
            raise PickleRefused(f"data nested more than {_MAX_DEPTH} deep at {path}")
        if isinstance(item, list | dict | Record | np.ndarray):
            if id(item) in seen:
                yield path, f"shared with {seen[id(item)]}"
                continue
            seen[id(item)] = path
        children = _children(path, item)
        if children is _LEAF:
            count += 1
            if count > MAX_LEAVES:
                raise PickleRefused(f"more than {MAX_LEAVES} values")
            yield path, item
            continue
        todo.extend((child, sub, depth + 1) for child, sub in reversed(children))


_LEAF: list[tuple[str, Any]] = []


def _children(path: str, item: Any) -> list[tuple[str, Any]]:
    def at(key: Any) -> str:
        return str(key) if path == "$" else f"{path}.{key}"

    if isinstance(item, Record):
        found = [(at("__class__"), item.cls)]
        found += [(at(f"__args__.{i}"), a) for i, a in enumerate(item.args)]
        state = item.state
        if isinstance(state, dict):
            found += [(at(k), v) for k, v in state.items()]
        elif state is not None:
            found.append((at("__state__"), state))
        return found
    if isinstance(item, dict):
        return [(at(k), v) for k, v in item.items()]
    if isinstance(item, list | tuple):
        return [(at(i), v) for i, v in enumerate(item)]
    if isinstance(item, set | frozenset):
        return [(path, sorted(repr(v) for v in item))] if item else _LEAF
    if isinstance(item, np.ndarray) and item.dtype.names:
        return [(at(n), np.ascontiguousarray(item[n])) for n in item.dtype.names]
    if isinstance(item, GlobalStandIn):
        return [(path, item.name)]
    if isinstance(item, DTypeStandIn):
        return [(path, str(item.value()))]
    if isinstance(item, PendingArray):
        return [(path, "array without data")]
    return _LEAF
