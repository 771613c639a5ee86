"""One released file against its rebuilt counterpart: dispatch, verdict and a line for humans.

The bytes are compared first, in chunks (:func:`first_difference`); bit-identical files are
REPRODUCED without being parsed. Files that differ are compared by content: tensor by tensor
when both are safetensors (``.safetensors`` with a valid header); value by value when both
are pickles (protocol 2+ by their first bytes, or ``.pkl``/``.pickle``/``.joblib``: scikit-
learn and joblib models, read as data and never executed, see :mod:`.pickle_diff`); field by
field with a numeric summary when both are JSON or YAML (``.json``, ``.yaml``/``.yml``);
column by column when both are CSV or TSV tables (``.csv``, ``.tsv``); otherwise as opaque
bytes, with the first differing offset. A file that cannot be compared by content (it does
not parse, names a class off the allowlist, is too large) is compared by bytes, and the
detail says why.

A file that differs is REPRODUCED_WITHIN_TOLERANCE only when the tolerance is non-zero, every
tensor, field or cell is within it, and nothing else differs (a safetensors header, a JSON
file's formatting or key order). Otherwise it is DIFFERENT: a byte-level difference is a
difference, and the detail says where it lies (e.g. "tensors identical; header/metadata
differ").
"""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Sequence
from pathlib import Path

from bitwright.errors import OperationalError, VerificationFailed
from bitwright.rebuild.compare._pickle_data import is_pickle
from bitwright.rebuild.compare._safetensors_header import (
    SafetensorsHeader,
    read_safetensors_header,
)
from bitwright.rebuild.compare.bytes_diff import first_difference
from bitwright.rebuild.compare.documents import compare_documents, load_document
from bitwright.rebuild.compare.model import (
    FieldDiff,
    FileComparison,
    NumericSummary,
    TensorDiff,
    Tolerance,
    Verdict,
)
from bitwright.rebuild.compare.pickle_diff import PickleRefused, compare_pickles
from bitwright.rebuild.compare.safetensors_diff import compare_tensors
from bitwright.rebuild.compare.table_diff import compare_tables, read_table

__all__ = ["compare_files"]

_SHOWN = 3
"""How many names a detail line lists before it says "and N more"."""

_STRUCTURAL = (
    "only in original",
    "only in rebuilt",
    "dtype differs",
    "shape differs",
    "size differs",
)
"""Notes of tensors that could not be compared element by element (see compare_tensors)."""


def compare_files(
    original: Path | None, rebuilt: Path | None, *, path: str, tolerance: Tolerance
) -> FileComparison:
    """Compare a released file with the rebuilt one and judge it.

    Args:
        original: the released file; None (or a path that does not exist) when the release
            has no such file.
        rebuilt: the rebuilt file; None (or a path that does not exist) when the rebuild did
            not produce it.
        path: the file's name in the report (e.g. its release-relative POSIX path).
        tolerance: how far tensors and JSON numbers may differ; bytes never may.

    Returns:
        The comparison; kind "missing" and verdict DIFFERENT when a side is absent.

    Raises:
        OperationalError: a file exists but cannot be read or is not a regular file.
    """
    size_a, size_b = _size(original), _size(rebuilt)
    if original is None or rebuilt is None or size_a is None or size_b is None:
        return _missing(path, size_a, size_b)
    offset = first_difference(original, rebuilt)
    if offset is None:
        return FileComparison(
            path, _kind_by_suffix(path), Verdict.REPRODUCED, f"bit-identical ({size_a} bytes)",
            size_original=size_a, size_rebuilt=size_b,
        )  # fmt: skip
    differs = FileComparison(
        path, "bytes", Verdict.DIFFERENT, f"first difference at byte {offset} "
        f"(sizes {size_a} and {size_b} bytes)", size_original=size_a, size_rebuilt=size_b,
        first_difference=offset,
    )  # fmt: skip
    if _suffix(path) == ".safetensors":
        try:
            headers = read_safetensors_header(original), read_safetensors_header(rebuilt)
        except VerificationFailed as exc:
            return dataclasses.replace(differs, detail=f"{differs.detail}; {exc.message}")
        tensors = compare_tensors(*headers, tolerance=tolerance)
        verdict, detail = _judge_tensors(tensors, *headers, tolerance)
        return dataclasses.replace(
            differs, kind="safetensors", verdict=verdict, detail=detail, tensors=tensors
        )
    kind = _content_kind(path, original, rebuilt)
    try:
        if kind == "pickle":
            return _compare_pickles(differs, original, rebuilt, tolerance)
        if kind in ("json", "yaml"):
            return _compare_documents(differs, kind, original, rebuilt, tolerance)
        if kind in _DELIMITERS:
            return _compare_tables(differs, kind, original, rebuilt, tolerance)
    except OperationalError as exc:  # too large to read whole: the bytes have spoken
        return dataclasses.replace(differs, detail=f"{differs.detail}; {exc.message}")
    return differs


_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
_DOCUMENTS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}
_DELIMITERS = {"csv": ",", "tsv": "\t"}


def _content_kind(path: str, original: Path, rebuilt: Path) -> str:
    """How two differing files are compared: by their first bytes, else by the name."""
    suffix = _suffix(path)
    heads = [_head(original), _head(rebuilt)]
    if all(h[:1] == b"\x80" and is_pickle(h) for h in heads) or (
        suffix in _PICKLE_SUFFIXES and all(is_pickle(h) for h in heads)
    ):
        return "pickle"
    if suffix in _DOCUMENTS:
        return _DOCUMENTS[suffix]
    return suffix.lstrip(".") if suffix.lstrip(".") in _DELIMITERS else "bytes"


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(2)


def _compare_pickles(
    differs: FileComparison, original: Path, rebuilt: Path, tolerance: Tolerance
) -> FileComparison:
    try:
        found = compare_pickles(original, rebuilt, tolerance=tolerance)
    except PickleRefused as exc:
        return dataclasses.replace(
            differs, detail=f"{differs.detail}; not compared as a model ({exc}; never executed)"
        )
    if not found.arrays and not found.fields:
        return dataclasses.replace(
            differs, kind="pickle", detail="values identical; the pickle's bytes differ",
            summary=found.summary,
        )  # fmt: skip
    parts = []
    if found.arrays:
        elements = sum(t.differing for t in found.arrays)
        parts.append(
            f"{len(found.arrays)} of {found.arrays_total} arrays differ ({elements} elements; "
            f"max |Δ| {_g(max(t.max_abs for t in found.arrays))}, "
            f"max rel {_g(max(t.max_rel for t in found.arrays))}): "
            f"{_names([t.name for t in found.arrays])}"
        )
    if found.fields:
        parts.append(f"values differ: {_names([f.path for f in found.fields])}")
    parts += _tolerance_parts(
        [*found.arrays, *found.fields], tolerance, [*(t.name for t in found.arrays),
        *(f.path for f in found.fields)],
    )  # fmt: skip
    verdict = _within(found.summary.within_tolerance, tolerance, True)
    return dataclasses.replace(
        differs, kind="pickle", verdict=verdict, detail="; ".join(parts), tensors=found.arrays,
        fields=found.fields, summary=found.summary,
    )  # fmt: skip


def _compare_documents(
    differs: FileComparison, kind: str, original: Path, rebuilt: Path, tolerance: Tolerance
) -> FileComparison:
    try:
        documents = load_document(original, kind), load_document(rebuilt, kind)
    except ValueError as exc:
        name = kind.upper()
        return dataclasses.replace(differs, detail=f"{differs.detail}; not {name} ({exc})")
    summary, fields = compare_documents(*documents, tolerance=tolerance)
    verdict, detail = _judge_fields(fields, summary, tolerance)
    return dataclasses.replace(
        differs, kind=kind, verdict=verdict, detail=detail, fields=fields, summary=summary
    )


def _compare_tables(
    differs: FileComparison, kind: str, original: Path, rebuilt: Path, tolerance: Tolerance
) -> FileComparison:
    delimiter = _DELIMITERS[kind]
    try:
        tables = read_table(original, delimiter), read_table(rebuilt, delimiter)
    except ValueError as exc:
        return dataclasses.replace(differs, detail=f"{differs.detail}; not {kind.upper()} ({exc})")
    found = compare_tables(*tables, tolerance=tolerance)
    if not found.columns and not found.rows_note:
        return dataclasses.replace(
            differs, kind="csv", detail="cells identical; quoting or line ends differ",
            summary=found.summary,
        )  # fmt: skip
    parts = [found.rows_note] if found.rows_note else []
    numeric = [c for c in found.columns if c.kind == "number"]
    if found.columns:
        text = f"{len(found.columns)} column(s) differ: {_names([c.name for c in found.columns])}"
        if numeric:
            text += (
                f" ({found.summary.numeric_differing} numbers; max |Δ| "
                f"{_g(found.summary.max_abs)}, max rel {_g(found.summary.max_rel)})"
            )
        parts.append(text)
    if not tolerance.is_zero and found.columns:
        beyond = [c.name for c in found.columns if not c.within_tolerance]
        parts.append(
            f"beyond tolerance ({tolerance.describe()}): {_names(beyond)}"
            if beyond
            else f"all within tolerance ({tolerance.describe()})"
        )
    verdict = _within(found.summary.within_tolerance, tolerance, True)
    return dataclasses.replace(
        differs, kind="csv", verdict=verdict, detail="; ".join(parts), columns=found.columns,
        summary=found.summary,
    )  # fmt: skip


def _g(value: float) -> str:
    return f"{value:.2g}"


def _size(path: Path | None) -> int | None:
    """Return the size of the regular file ``path``, or None when it does not exist."""
    if path is None:
        return None
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise OperationalError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="check the permissions of the file and its directories",
        ) from exc
    if not stat.S_ISREG(info.st_mode):
        raise OperationalError(
            f"cannot compare {path}: not a regular file",
            hint="compare files, not directories or devices",
        )
    return info.st_size


def _suffix(path: str) -> str:
    return Path(path).suffix.lower()


def _kind_by_suffix(path: str) -> str:
    by_suffix = {
        ".safetensors": "safetensors",
        **dict.fromkeys(_PICKLE_SUFFIXES, "pickle"),
        **_DOCUMENTS,
        ".csv": "csv",
        ".tsv": "csv",
    }
    return by_suffix.get(_suffix(path), "bytes")


def _missing(path: str, size_a: int | None, size_b: int | None) -> FileComparison:
    if size_a is None and size_b is None:
        detail = "missing on both sides"
    elif size_b is None:
        detail = "missing in the rebuild"
    else:
        detail = "only in the rebuild, not in the release"
    return FileComparison(
        path, "missing", Verdict.DIFFERENT, detail, size_original=size_a, size_rebuilt=size_b
    )


def _within(all_within: bool, tolerance: Tolerance, rest_equal: bool) -> Verdict:
    if all_within and rest_equal and not tolerance.is_zero:
        return Verdict.REPRODUCED_WITHIN_TOLERANCE
    return Verdict.DIFFERENT


def _judge_tensors(
    tensors: Sequence[TensorDiff],
    original: SafetensorsHeader,
    rebuilt: SafetensorsHeader,
    tolerance: Tolerance,
) -> tuple[Verdict, str]:
    changed = [t for t in tensors if not t.bit_exact]
    reshaped = [t.name for t in changed if t.note.startswith(_STRUCTURAL)]
    header = _header_difference(original, rebuilt, tensors_moved=bool(reshaped))
    if not changed:
        return Verdict.DIFFERENT, f"tensors identical; {header or 'bytes differ'}"
    verdict = _within(all(t.within_tolerance for t in changed), tolerance, not header)
    parts = [f"{len(changed)} of {len(tensors)} tensors differ"]
    measured = [t for t in changed if t.max_abs or t.max_ulp]
    if measured:
        worst_abs = max(t.max_abs for t in measured)
        worst_ulp = max(t.max_ulp for t in measured)
        parts[0] += f" (max |Δ| {worst_abs:.2g}, max ULP {worst_ulp})"
    compared = [t for t in changed if not t.note.startswith(_STRUCTURAL)]
    parts += _tolerance_parts(compared, tolerance, [t.name for t in compared])
    for note in ("only in original", "only in rebuilt"):
        names = [t.name for t in tensors if t.note == note]
        if names:
            parts.append(f"{note}: {_names(names)}")
    resized = [t.name for t in changed if t.note.startswith(_STRUCTURAL[2:])]
    if resized:
        parts.append(f"dtype/shape differs: {_names(resized)}")
    if header:
        parts.append(header)
    return verdict, "; ".join(parts)


def _header_difference(
    original: SafetensorsHeader, rebuilt: SafetensorsHeader, *, tensors_moved: bool
) -> str:
    """Say how the headers differ beyond what missing or reshaped tensors already explain."""
    if original.raw == rebuilt.raw:
        return ""
    if original.metadata != rebuilt.metadata:
        keys = sorted(
            k
            for k in original.metadata.keys() | rebuilt.metadata.keys()
            if original.metadata.get(k) != rebuilt.metadata.get(k)
        )
        return f"header/metadata differ (__metadata__ keys: {_names(keys)})"
    return "" if tensors_moved else "header/metadata differ (tensor order, offsets or padding)"


def _judge_fields(
    fields: Sequence[FieldDiff], summary: NumericSummary, tolerance: Tolerance
) -> tuple[Verdict, str]:
    if not fields:
        return Verdict.DIFFERENT, "fields identical; formatting or key order differs"
    verdict = _within(summary.within_tolerance, tolerance, True)
    verb = "differs" if summary.differing == 1 else "differ"
    head = f"{summary.differing} of {summary.compared} fields {verb}"
    if summary.numeric_differing:
        head += (
            f" ({summary.numeric_differing} number(s): max |Δ| {_g(summary.max_abs)}, "
            f"max rel {_g(summary.max_rel)})"
        )
    parts = [f"{head}; worst: {_names([f.path for f in fields])}"]
    parts += _tolerance_parts(fields, tolerance, [f.path for f in fields])
    return verdict, "; ".join(parts)


def _tolerance_parts(
    diffs: Sequence[TensorDiff | FieldDiff], tolerance: Tolerance, names: Sequence[str]
) -> list[str]:
    if tolerance.is_zero or not diffs:
        return []
    beyond = [n for d, n in zip(diffs, names, strict=True) if not d.within_tolerance]
    if not beyond:
        return [f"all within tolerance ({tolerance.describe()})"]
    return [f"beyond tolerance ({tolerance.describe()}): {_names(beyond)}"]


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return f"{shown} and {more} more" if more > 0 else shown
