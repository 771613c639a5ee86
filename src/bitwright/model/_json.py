"""The one JSON mechanism of the domain dataclasses: ``to_json()`` and ``from_json()``.

Every frozen dataclass of :mod:`bitwright.model` (and the few value classes of other layers
that travel as JSON) inherits :class:`JsonModel`. ``to_json`` keeps field names, turns enums
into their values, tuples into lists, sets into sorted lists and paths into POSIX strings;
``from_json`` rebuilds the dataclass from exactly that shape, driven by its type hints, and
refuses unknown fields, missing required fields and values of the wrong type (a JSON ``true``
is not an integer, nor ``1`` a flag).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from pathlib import PurePath
from typing import Any, Self

__all__ = ["JsonModel"]


class JsonModel:
    """A dataclass that turns into plain JSON data and back."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """Return this value as a JSON object (field name -> plain JSON value)."""
        data: dict[str, Any] = _dump(self)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Rebuild a value from :meth:`to_json` output.

        Raises:
            ValueError: ``data`` does not have the shape of this class (names the field).
        """
        try:
            return typing.cast(Self, _load(cls, data))
        except TypeError as exc:  # a field type this mechanism cannot rebuild: a model bug
            raise ValueError(str(exc)) from exc


def _dump(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return _dump(value.value)
    if isinstance(value, dict):
        return {str(k): _dump(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = [_dump(v) for v in value]
        return sorted(items) if isinstance(value, frozenset | set) else items
    if isinstance(value, PurePath):
        return value.as_posix()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot turn {type(value).__name__} into JSON")


def _load(tp: Any, data: Any) -> Any:
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _load_dataclass(tp, data)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _load_union(tp, data)
    if origin is tuple:
        return _load_tuple(tp, data)
    if origin is dict:
        key_t, val_t = typing.get_args(tp)
        if not isinstance(data, dict):
            raise ValueError(f"expected an object for {tp}, got {type(data).__name__}")
        return {_load(key_t, k): _load(val_t, v) for k, v in data.items()}
    if origin is list:
        (item_t,) = typing.get_args(tp)
        if not isinstance(data, list):
            raise ValueError(f"expected a list for {tp}, got {type(data).__name__}")
        return [_load(item_t, v) for v in data]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if tp is Any:
        return data
    supertype = getattr(tp, "__supertype__", None)  # NewType
    if supertype is not None:
        return _load(supertype, data)
    return _load_scalar(tp, data)


def _load_dataclass(tp: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{tp.__name__}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(tp)
    names = {f.name for f in dataclasses.fields(tp)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{tp.__name__}: unknown field(s) {sorted(unknown)}")
    values = {}
    for key, value in data.items():
        try:
            values[key] = _load(hints[key], value)
        except ValueError as exc:
            raise ValueError(f"{tp.__name__}.{key}: {exc}") from None
    try:
        return tp(**values)
    except TypeError as exc:  # a required field is missing
        raise ValueError(f"{tp.__name__}: {exc}") from None


def _load_union(tp: Any, data: Any) -> Any:
    args = typing.get_args(tp)
    if data is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _load(arg, data)
        except (ValueError, TypeError):
            continue
    raise ValueError(f"value {data!r} fits none of {tp}")


def _load_tuple(tp: Any, data: Any) -> tuple[Any, ...]:
    args = typing.get_args(tp)
    if not isinstance(data, list | tuple):
        raise ValueError(f"expected a list for {tp}, got {type(data).__name__}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_load(args[0], v) for v in data)
    if len(args) != len(data):
        raise ValueError(f"expected {len(args)} items for {tp}, got {len(data)}")
    return tuple(_load(a, v) for a, v in zip(args, data, strict=True))


def _load_scalar(tp: Any, data: Any) -> Any:
    if tp not in (str, int, float, bool):
        raise TypeError(f"cannot rebuild {tp}")
    if tp is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
        raise ValueError(f"expected {tp.__name__}, got {data!r}")
    return data
