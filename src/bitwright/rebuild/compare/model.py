"""The values a comparison produces: verdicts, tolerances and per-tensor / per-field diffs.

Pure data: nothing here reads files. :class:`FileComparison.to_json` gives strict JSON (no
``NaN`` or ``Infinity`` literals, which JSON and RFC 8785 refuse): a non-finite float becomes
the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bitwright.errors import UsageError
from bitwright.model import JsonModel

__all__ = [
    "ColumnDiff",
    "FieldDiff",
    "FileComparison",
    "NumericSummary",
    "TensorDiff",
    "Tolerance",
    "Verdict",
]


class Verdict(StrEnum):
    """How a rebuilt file (or stage, or release) relates to the original."""

    REPRODUCED = "REPRODUCED"
    """Bit-identical."""
    REPRODUCED_WITHIN_TOLERANCE = "REPRODUCED_WITHIN_TOLERANCE"
    """Bytes differ, but every tensor / number is within the declared non-zero tolerance."""
    DIFFERENT = "DIFFERENT"
    """Bytes differ and the difference is not covered by the tolerance."""
    FAILED = "FAILED"
    """The rebuild could not produce the file at all (a stage failed)."""

    @staticmethod
    def combine(verdicts: Iterable[Verdict]) -> Verdict:
        """Return the worst of ``verdicts``: FAILED > DIFFERENT > WITHIN_TOLERANCE > REPRODUCED.

        An empty iterable combines to REPRODUCED (nothing disagreed); callers that must
        refuse an empty comparison check for it themselves.
        """
        return max(verdicts, key=_RANK.__getitem__, default=Verdict.REPRODUCED)


_RANK = {
    Verdict.REPRODUCED: 0,
    Verdict.REPRODUCED_WITHIN_TOLERANCE: 1,
    Verdict.DIFFERENT: 2,
    Verdict.FAILED: 3,
}


@dataclass(frozen=True)
class Tolerance:
    """How far a rebuilt number may stray from the original and still count as reproduced.

    A rebuilt value ``b`` is within tolerance of the original ``a`` when
    ``|a - b| <= atol + rtol * |a|``: the original is the reference, exactly
    ``numpy.isclose(b, a, rtol=rtol, atol=atol, equal_nan=True)``. Two NaNs are close to
    each other, a NaN is never close to a number, and an infinity only to the same infinity.
    The default (both zero) admits no difference at all.

    Raises:
        UsageError: ``atol`` or ``rtol`` is negative, NaN or infinite.
    """

    atol: float = 0.0
    rtol: float = 0.0

    def __post_init__(self) -> None:
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise UsageError(
                    f"tolerance {name}={value!r} is not a finite number >= 0",
                    hint=f"pass --{name} as a number such as 1e-6, or 0 for exact comparison",
                )

    @property
    def is_zero(self) -> bool:
        """Whether this tolerance admits no difference (then nothing is "within tolerance")."""
        return self.atol == 0 and self.rtol == 0

    def describe(self) -> str:
        """Return the tolerance as a human reads it, e.g. ``atol=1e-06, rtol=0``."""
        return f"atol={self.atol:g}, rtol={self.rtol:g}"


@dataclass(frozen=True)
class TensorDiff:
    """One tensor of a safetensors file, compared element by element.

    ``max_abs`` and ``max_rel`` (``|a - b| / max(|a|, tiny)``, ``a`` the original) and
    ``max_ulp`` (distance in representable values of the dtype; for integers the plain
    difference) cover the elements whose bits differ and that are not NaN on either side.
    ``differing`` counts elements whose bits differ (NaNs with equal bits are equal;
    ``-0.0`` and ``+0.0`` differ, 0 ULP apart). Elements of a dtype without a numeric view
    are compared as raw bytes: then ``differing`` and ``total`` count bytes and ``note`` says
    so. ``note`` also names tensors present on one side only and dtype or shape changes.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    bit_exact: bool
    max_abs: float
    max_rel: float
    max_ulp: int
    differing: int
    total: int
    within_tolerance: bool
    note: str = ""


@dataclass(frozen=True)
class FieldDiff:
    """One differing field of a JSON file; ``path`` as :func:`flatten_json` names it.

    A field present on one side only has ``None`` on the other and a ``note`` saying so.
    """

    path: str
    original: Any
    rebuilt: Any
    within_tolerance: bool
    note: str = ""


@dataclass(frozen=True)
class NumericSummary:
    """How far the values of two documents, tables or pickled models are apart, in numbers.

    Attributes:
        compared: values compared (numbers, strings, array elements...).
        differing: values that differ.
        numeric_differing: of those, numbers (or array elements) whose value differs.
        max_abs: the largest ``|a - b|`` over the differing numbers (0 when none).
        max_rel: the largest ``|a - b| / |a|`` over them (``a`` the original).
        within_tolerance: whether every differing number is within the tolerance.
    """

    compared: int
    differing: int
    numeric_differing: int
    max_abs: float
    max_rel: float
    within_tolerance: bool


@dataclass(frozen=True)
class ColumnDiff:
    """One column of a CSV or TSV table, compared cell by cell.

    ``kind`` is ``"number"`` when every cell of the column is a number on both sides (then
    ``max_abs`` and ``max_rel`` measure the differing cells), else ``"text"``.
    """

    name: str
    kind: str
    differing: int
    total: int
    max_abs: float
    max_rel: float
    within_tolerance: bool
    note: str = ""


@dataclass(frozen=True)
class FileComparison(JsonModel):
    """The comparison of one released file with its rebuilt counterpart.

    ``kind`` says how the file was compared: ``"safetensors"`` (tensor by tensor),
    ``"pickle"`` (a pickled or joblib model read as data: its arrays as ``tensors``, its
    other values as ``fields``), ``"json"`` and ``"yaml"`` (field by field), ``"csv"``
    (column by column), ``"bytes"`` (opaque) or ``"missing"`` (absent on a side).
    Bit-identical files are not parsed; their kind follows the file name's suffix.
    ``first_difference`` is the first differing byte offset (None when identical).
    ``summary`` sums up the numbers that differ; ``fields`` then holds the worst of them
    (and the values that differ otherwise), not every one.
    """

    path: str
    kind: str
    verdict: Verdict
    detail: str
    tensors: tuple[TensorDiff, ...] = ()
    fields: tuple[FieldDiff, ...] = ()
    size_original: int | None = None
    size_rebuilt: int | None = None
    first_difference: int | None = None
    summary: NumericSummary | None = None
    columns: tuple[ColumnDiff, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return this comparison as strict JSON data (non-finite floats become strings)."""
        data: dict[str, Any] = _strict_json(super().to_json())
        return data


def _strict_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict_json(v) for v in value]
    return value
