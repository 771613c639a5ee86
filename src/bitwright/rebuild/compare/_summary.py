"""A numeric summary of many differing values, and the worst of them worth showing.

A metrics file or a model with thousands of values must not report thousands of lines: the
summary counts what differs and how far, and :func:`summarize` keeps the worst
:data:`WORST` numbers (largest relative, then absolute difference) and the first
:data:`WORST` values that differ otherwise (text, type, presence).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bitwright.rebuild.compare.model import FieldDiff, NumericSummary, TensorDiff

__all__ = ["WORST", "distance", "summarize"]

WORST = 10
"""How many differing numbers (and other values) a comparison keeps to show."""

_TINY = 2.2250738585072014e-308


def distance(field: FieldDiff) -> tuple[float, float] | None:
    """``(|a - b|, |a - b| / |a|)`` of a field whose two sides are numbers, else None."""
    a, b = field.original, field.rebuilt
    if not _number(a) or not _number(b):
        return None
    try:
        delta = abs(float(a) - float(b))
        rel = delta / max(abs(float(a)), _TINY)
    except OverflowError:
        return math.inf, math.inf
    if math.isnan(delta):
        return math.inf, math.inf
    return delta, rel


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def summarize(
    fields: Sequence[FieldDiff], compared: int, arrays: Sequence[TensorDiff] = ()
) -> tuple[NumericSummary, tuple[FieldDiff, ...]]:
    """Sum up differing values and array elements; return the summary and what to show.

    Args:
        fields: every differing value.
        compared: how many values (and array elements) were compared in all.
        arrays: compared arrays (their differing elements count as numbers).
    """
    measured = [(f, d) for f in fields if (d := distance(f)) is not None]
    numeric = len(measured) + sum(t.differing for t in arrays if not t.note.startswith("compared"))
    max_abs = max([d[0] for _, d in measured] + [t.max_abs for t in arrays], default=0.0)
    max_rel = max([d[1] for _, d in measured] + [t.max_rel for t in arrays], default=0.0)
    summary = NumericSummary(
        compared=compared,
        differing=len(fields) + sum(t.differing for t in arrays),
        numeric_differing=numeric,
        max_abs=max_abs,
        max_rel=max_rel,
        within_tolerance=all(f.within_tolerance for f in fields)
        and all(t.within_tolerance for t in arrays),
    )
    worst = sorted(measured, key=lambda pair: (pair[1][1], pair[1][0]), reverse=True)[:WORST]
    others = [f for f in fields if distance(f) is None][:WORST]
    return summary, tuple(f for f, _ in worst) + tuple(others)
