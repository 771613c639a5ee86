"""Pickled and joblib models (scikit-learn, numpy) compared value by value, never executed.

Both files are read as data (:mod:`._pickle_data`: an allowlist of the classes scikit-learn,
numpy and joblib need, and nothing of them imported or called), flattened into named values,
and compared name by name: numpy arrays element by element as tensors are (max abs and
relative difference, ULPs, elements that differ), every other value as a JSON field is. A
pickle that names anything off the allowlist is not compared this way; the caller compares
its bytes and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bitwright.rebuild.compare._arrays import compare_arrays
from bitwright.rebuild.compare._pickle_data import PickleRefused, read_pickle_data
from bitwright.rebuild.compare._pickle_values import flatten
from bitwright.rebuild.compare._summary import summarize
from bitwright.rebuild.compare.json_diff import compare_values
from bitwright.rebuild.compare.model import FieldDiff, NumericSummary, TensorDiff, Tolerance

__all__ = ["PickleComparison", "PickleRefused", "compare_pickles"]

_ABSENT = object()


@dataclass(frozen=True)
class PickleComparison:
    """Two pickled models compared.

    Attributes:
        arrays: the arrays that differ (all of them measured).
        arrays_total: how many arrays were compared.
        fields: the worst differing values that are not arrays.
        summary: every value and array element, summed up.
    """

    arrays: tuple[TensorDiff, ...]
    arrays_total: int
    fields: tuple[FieldDiff, ...]
    summary: NumericSummary


def compare_pickles(original: Path, rebuilt: Path, *, tolerance: Tolerance) -> PickleComparison:
    """Compare two pickled (or joblib) models value by value.

    Raises:
        PickleRefused: a file is not a pickle this reader models or names a global that
            is not on the allowlist.
        OSError: a file cannot be read.
    """
    ours = dict(flatten(read_pickle_data(original)))
    theirs = dict(flatten(read_pickle_data(rebuilt)))
    arrays: list[TensorDiff] = []
    fields: list[FieldDiff] = []
    compared = 0
    for path in [*ours, *(p for p in theirs if p not in ours)]:
        a, b = ours.get(path, _ABSENT), theirs.get(path, _ABSENT)
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            arrays.append(compare_arrays(path, a, b, tolerance=tolerance))
            compared += int(a.size)
            continue
        compared += 1
        if a is _ABSENT or b is _ABSENT:
            note = "only in original" if b is _ABSENT else "only in rebuilt"
            fields.append(FieldDiff(path, _shown(a), _shown(b), False, note))
        elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            fields.append(FieldDiff(path, _shown(a), _shown(b), False, "array on one side"))
        else:
            for field in compare_values(_plain(a), _plain(b), tolerance=tolerance):
                fields.append(_at(path, field))
    differing = tuple(t for t in arrays if not t.bit_exact)
    summary, worst = summarize(fields, compared, differing)
    return PickleComparison(differing, len(arrays), worst, summary)


def _at(path: str, field: FieldDiff) -> FieldDiff:
    """compare_values names a scalar's difference ``$``: give it the value's path."""
    if field.path != "$":
        return field
    return FieldDiff(path, field.original, field.rebuilt, field.within_tolerance, field.note)


def _plain(value: Any) -> Any:
    """A leaf as JSON's types, for compare_values (complex numbers and tuples as text)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


def _shown(value: Any) -> Any:
    if value is _ABSENT:
        return None
    if isinstance(value, np.ndarray):
        return f"array {value.dtype.str} {list(value.shape)}"
    return _plain(value)
