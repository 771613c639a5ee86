"""Field-by-field comparison of two JSON documents (metrics, model cards, configs).

Both documents are walked together. Objects are compared key by key (order does not
matter), arrays index by index; a key or index on one side only, or a value whose JSON type
changed, is one :class:`FieldDiff` for the whole subtree. Numbers (not booleans) may differ
within the tolerance; an integer and a float of equal value differ (the text changed) but
are within any tolerance. Every other value must be equal, type included.

Paths name a field by its keys and indices joined with dots, as in ``per_class.3.f1``.
A key that is all digits, empty, starts with ``$`` or holds a dot, quote, backslash,
bracket or white space is written as a JSON string (``a."3"`` is key "3", ``a.3`` index 3),
so no two fields of a document share a path. The document itself is ``$``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bitwright.errors import OperationalError
from bitwright.rebuild.compare.model import FieldDiff, Tolerance

__all__ = ["ROOT", "compare_json", "compare_values", "field_path", "flatten_json", "load_json"]

ROOT = "$"
"""The path of the whole document."""

_BARE_KEY = re.compile(r'[^\s."\\\[\]$][^\s."\\\[\]]*')


def field_path(parent: str, segment: str | int) -> str:
    """Return the path of ``segment`` (a key or an index) under ``parent``."""
    if isinstance(segment, int):
        text = str(segment)
    elif _BARE_KEY.fullmatch(segment) and not segment.isdigit():
        text = segment
    else:
        text = json.dumps(segment, ensure_ascii=False)
    return text if parent == ROOT else f"{parent}.{text}"


def flatten_json(value: Any, path: str = ROOT) -> dict[str, Any]:
    """Return every leaf of a JSON value keyed by its path.

    Leaves are scalars and empty objects or arrays (so that they are not lost).
    """
    return dict(_leaves(value, path))


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, field_path(path, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, field_path(path, index))
    else:
        yield path, value


def load_json(path: Path) -> Any:
    """Parse the JSON file ``path``.

    Raises:
        OperationalError: the file cannot be read.
        ValueError: the file is not UTF-8 JSON.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OperationalError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="check that the file exists and is readable",
        ) from exc
    return json.loads(data.decode("utf-8"))


def compare_json(original: Path, rebuilt: Path, *, tolerance: Tolerance) -> tuple[FieldDiff, ...]:
    """Compare two JSON files field by field.

    Args:
        original: the released file.
        rebuilt: the file the rebuild produced.
        tolerance: how far numbers may differ and still count as within tolerance.

    Returns:
        The differing fields only, in document order (the original's keys first).

    Raises:
        OperationalError: a file cannot be read.
        ValueError: a file is not UTF-8 JSON (``json.JSONDecodeError`` or
            ``UnicodeDecodeError``).
    """
    return compare_values(load_json(original), load_json(rebuilt), tolerance=tolerance)


def compare_values(original: Any, rebuilt: Any, *, tolerance: Tolerance) -> tuple[FieldDiff, ...]:
    """Compare two parsed JSON values field by field (see :func:`compare_json`)."""
    return tuple(_walk(original, rebuilt, ROOT, tolerance))


def _walk(a: Any, b: Any, path: str, tol: Tolerance) -> Iterator[FieldDiff]:
    kind_a, kind_b = _kind(a), _kind(b)
    if kind_a != kind_b:
        yield FieldDiff(path, a, b, False, f"type differs {kind_a} != {kind_b}")
    elif isinstance(a, dict):
        for key, value in a.items():
            if key in b:
                yield from _walk(value, b[key], field_path(path, key), tol)
            else:
                yield FieldDiff(field_path(path, key), value, None, False, "only in original")
        for key, value in b.items():
            if key not in a:
                yield FieldDiff(field_path(path, key), None, value, False, "only in rebuilt")
    elif isinstance(a, list):
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            yield from _walk(x, y, field_path(path, index), tol)
        for index in range(len(b), len(a)):
            yield FieldDiff(field_path(path, index), a[index], None, False, "only in original")
        for index in range(len(a), len(b)):
            yield FieldDiff(field_path(path, index), None, b[index], False, "only in rebuilt")
    elif kind_a == "number":
        yield from _compare_numbers(a, b, path, tol)
    elif a != b:
        yield FieldDiff(path, a, b, False)


def _compare_numbers(
    a: int | float, b: int | float, path: str, tol: Tolerance
) -> Iterator[FieldDiff]:
    if type(a) is type(b) and (a == b if isinstance(a, int) else repr(a) == repr(b)):
        return  # repr tells -0.0 from 0.0 and lets NaN equal NaN
    note = f"{type(a).__name__} != {type(b).__name__}" if type(a) is not type(b) else ""
    yield FieldDiff(path, a, b, _close(a, b, tol), note)


def _close(a: int | float, b: int | float, tol: Tolerance) -> bool:
    """``|a - b| <= atol + rtol * |a|`` with numpy.isclose's rules for NaN and infinities."""
    if isinstance(a, float) and math.isnan(a) or isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    if isinstance(a, float) and math.isinf(a) or isinstance(b, float) and math.isinf(b):
        return a == b
    try:
        return abs(a - b) <= tol.atol + tol.rtol * abs(a)
    except OverflowError:  # integers beyond float range: only exact equality is close
        return a == b


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else type(value).__name__
