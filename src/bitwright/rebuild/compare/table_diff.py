"""CSV and TSV tables (predictions, dvclive plots) compared column by column, as numbers.

A first row that is the same on both sides and is not all numbers is the header, and names
the columns; otherwise columns are named by their index. Each column is compared cell by cell:
a column whose cells are all numbers on both sides is measured (max abs and relative
difference, cells that differ, whether they are within the tolerance), any other column is
compared as text. Rows present on one side only are said once. Files are read as untrusted
input: regular files only, at most :data:`~bitwright.fileio.MAX_DOCUMENT_BYTES` each.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bitwright.fileio import read_regular
from bitwright.rebuild.compare.model import ColumnDiff, NumericSummary, Tolerance

__all__ = ["TableComparison", "compare_tables", "read_table"]

_TINY = 2.2250738585072014e-308
_MAX_CELL = 1 << 20


@dataclass(frozen=True)
class TableComparison:
    """Two tables compared: the differing columns, a summary, and a note on the rows."""

    columns: tuple[ColumnDiff, ...]
    summary: NumericSummary
    rows_note: str


def read_table(path: Path, delimiter: str) -> list[list[str]]:
    """The rows of a CSV (comma) or TSV (tab) file, ``delimiter`` being that character.

    Raises:
        ValueError: it is not UTF-8 text or not a table the csv module reads.
        OperationalError: the file cannot be read, is not a regular file or is too large.
    """
    try:
        text = read_regular(path).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    csv.field_size_limit(_MAX_CELL)
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise ValueError(f"not a table ({exc})") from None


def compare_tables(
    original: Sequence[Sequence[str]], rebuilt: Sequence[Sequence[str]], *, tolerance: Tolerance
) -> TableComparison:
    """Compare two tables column by column (see the module docstring)."""
    header = _header(original, rebuilt)
    body_a = original[1:] if header else original
    body_b = rebuilt[1:] if header else rebuilt
    rows = min(len(body_a), len(body_b))
    width = max((len(r) for r in (*body_a, *body_b)), default=0)
    columns: list[ColumnDiff] = []
    compared = 0
    for index in range(width):
        name = header[index] if header and index < len(header) else str(index)
        cells = [(_cell(body_a[r], index), _cell(body_b[r], index)) for r in range(rows)]
        compared += len(cells)
        columns.append(_column(name, cells, tolerance))
    differing = [c for c in columns if c.differing]
    numeric = [c for c in differing if c.kind == "number"]
    note = ""
    if len(body_a) != len(body_b):
        note = f"{len(body_a)} rows in the original, {len(body_b)} in the rebuild"
    summary = NumericSummary(
        compared=compared,
        differing=sum(c.differing for c in differing),
        numeric_differing=sum(c.differing for c in numeric),
        max_abs=max((c.max_abs for c in numeric), default=0.0),
        max_rel=max((c.max_rel for c in numeric), default=0.0),
        within_tolerance=all(c.within_tolerance for c in differing) and not note,
    )
    return TableComparison(tuple(differing), summary, note)


def _header(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> list[str] | None:
    if not a or not b or list(a[0]) != list(b[0]):
        return None
    return list(a[0]) if not all(_number(c) is not None for c in a[0]) else None


def _cell(row: Sequence[str], index: int) -> str | None:
    return row[index] if index < len(row) else None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _column(
    name: str, cells: Sequence[tuple[str | None, str | None]], tolerance: Tolerance
) -> ColumnDiff:
    pairs = [(_number(a), _number(b)) for a, b in cells]
    if all(x is not None and y is not None for x, y in pairs):
        return _numeric_column(name, pairs, tolerance)  # type: ignore[arg-type]
    differing = sum(1 for a, b in cells if a != b)
    return ColumnDiff(name, "text", differing, len(cells), 0.0, 0.0, differing == 0)


def _numeric_column(
    name: str, pairs: Sequence[tuple[float, float]], tolerance: Tolerance
) -> ColumnDiff:
    differing = 0
    max_abs = max_rel = 0.0
    within = True
    for a, b in pairs:
        if a == b or (math.isnan(a) and math.isnan(b)):
            continue
        differing += 1
        delta = abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf
        max_abs = max(max_abs, delta)
        max_rel = max(max_rel, delta / max(abs(a), _TINY) if math.isfinite(delta) else delta)
        within = within and delta <= tolerance.atol + tolerance.rtol * abs(a)
    return ColumnDiff(name, "number", differing, len(pairs), max_abs, max_rel, within)
