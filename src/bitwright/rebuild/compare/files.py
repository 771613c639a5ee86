"""One released file against its rebuilt counterpart: dispatch, verdict and a line for humans.

The bytes are compared first, in chunks (:func:`first_difference`); bit-identical files are
REPRODUCED without being parsed. Files that differ are compared by content: tensor by tensor
when both are safetensors (``.safetensors`` with a valid header), field by field when both
are JSON (``.json`` that parses), otherwise as opaque bytes.

A file that differs is REPRODUCED_WITHIN_TOLERANCE only when the tolerance is non-zero, every
tensor or field is within it, and nothing else differs (a safetensors header, a JSON file's
formatting or key order). Otherwise it is DIFFERENT: a byte-level difference is a difference,
and the detail says where it lies (e.g. "tensors identical; header/metadata differ").
"""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Sequence
from pathlib import Path

from bitwright.errors import OperationalError, VerificationFailed
from bitwright.rebuild.compare._safetensors_header import (
    SafetensorsHeader,
    read_safetensors_header,
)
from bitwright.rebuild.compare.bytes_diff import first_difference
from bitwright.rebuild.compare.json_diff import compare_values, load_json
from bitwright.rebuild.compare.model import (
    FieldDiff,
    FileComparison,
    TensorDiff,
    Tolerance,
    Verdict,
)
from bitwright.rebuild.compare.safetensors_diff import compare_tensors

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
    if _suffix(path) == ".json":
        try:
            documents = load_json(original), load_json(rebuilt)
        except ValueError as exc:
            return dataclasses.replace(differs, detail=f"{differs.detail}; not JSON ({exc})")
        fields = compare_values(*documents, tolerance=tolerance)
        verdict, detail = _judge_fields(fields, tolerance)
        return dataclasses.replace(
            differs, kind="json", verdict=verdict, detail=detail, fields=fields
        )
    return differs


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
    return {".safetensors": "safetensors", ".json": "json"}.get(_suffix(path), "bytes")


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


def _judge_fields(fields: Sequence[FieldDiff], tolerance: Tolerance) -> tuple[Verdict, str]:
    if not fields:
        return Verdict.DIFFERENT, "fields identical; formatting or key order differs"
    verdict = _within(all(f.within_tolerance for f in fields), tolerance, True)
    noun = "field differs" if len(fields) == 1 else "fields differ"
    parts = [f"{len(fields)} {noun}: {_names([f.path for f in fields])}"]
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
