"""JSON and YAML documents (metrics, params, reports) compared field by field, summed up.

Both files are read as untrusted input: regular files only, at most
:data:`~bitwright.fileio.MAX_DOCUMENT_BYTES`, JSON nested at most 64 deep, YAML parsed with
safe types only and refused when it holds more than :data:`MAX_VALUES` values or nests deeper
than 64 (an alias bomb expands into far more than that). The fields are compared as
:mod:`.json_diff` does; the comparison keeps the numeric summary and the worst fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bitwright.errors import VerificationFailed
from bitwright.fileio import MAX_JSON_DEPTH, load_json, read_regular
from bitwright.pipeline._yaml import strict_load
from bitwright.rebuild.compare._summary import summarize
from bitwright.rebuild.compare.json_diff import compare_values
from bitwright.rebuild.compare.model import FieldDiff, NumericSummary, Tolerance

__all__ = ["MAX_VALUES", "compare_documents", "load_document"]

MAX_VALUES = 1_000_000
"""Values a document may hold to be compared field by field."""


def load_document(path: Path, kind: str) -> Any:
    """Parse the ``kind`` (``"json"`` or ``"yaml"``) document at ``path``.

    Raises:
        ValueError: it is not such a document, or is too large, deep or wide to compare.
        OperationalError: the file cannot be read, is not a regular file or is too large.
    """
    data = read_regular(path)
    if kind == "json":
        try:
            return load_json(data, source=str(path), hint="", what="JSON")
        except VerificationFailed as exc:
            raise ValueError(exc.message) from None
    try:
        document = strict_load(data.decode("utf-8"))
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"not YAML ({type(exc).__name__})") from None
    except Exception as exc:  # yaml.YAMLError and what a hostile document provokes
        raise ValueError(f"not YAML ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    _check_shape(document)
    return _plain(document)


def _plain(value: Any) -> Any:
    """YAML's values as JSON's: keys that are not strings or integers, and dates, as text."""
    if isinstance(value, dict):
        return {
            k if isinstance(k, str | int) and not isinstance(k, bool) else str(k): _plain(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _check_shape(document: Any) -> None:
    """Refuse a document with more than MAX_VALUES values or nested deeper than 64."""
    count = 0
    todo: list[tuple[Any, int]] = [(document, 0)]
    while todo:
        value, depth = todo.pop()
        count += 1
        if count > MAX_VALUES:
            raise ValueError(f"more than {MAX_VALUES} values")
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested more than {MAX_JSON_DEPTH} deep")
        if isinstance(value, dict):
            todo.extend((v, depth + 1) for v in value.values())
            todo.extend((k, depth + 1) for k in value)
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in value)


def compare_documents(
    original: Any, rebuilt: Any, *, tolerance: Tolerance
) -> tuple[NumericSummary, tuple[FieldDiff, ...]]:
    """Compare two parsed documents: the summary, and the worst fields (see ``_summary``)."""
    fields = compare_values(original, rebuilt, tolerance=tolerance)
    return summarize(fields, _leaves(original))


def _leaves(document: Any) -> int:
    count = 0
    todo = [document]
    while todo:
        value = todo.pop()
        if isinstance(value, dict) and value:
            todo.extend(value.values())
        elif isinstance(value, list) and value:
            todo.extend(value)
        else:
            count += 1
    return count
