"""Validating a safetensors header without loading a tensor.

The format: 8 bytes little-endian ``N``, ``N`` bytes of UTF-8 JSON (padded with spaces),
then the data buffer. The JSON maps each tensor name to ``{"dtype", "shape",
"data_offsets": [begin, end]}`` (offsets relative to the buffer), plus an optional
``"__metadata__"`` of strings. A header is accepted only when a loader could not be led
astray by it: ``N`` within the cap and the file, a JSON object without duplicate keys or deep
nesting, known dtypes, shapes of counts whose size in bytes is exactly the tensor's span,
spans that tile the buffer from its start to the file's end (no gap, no overlap, no trailing
bytes). Nothing here raises on hostile bytes except :class:`MalformedSafetensors`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import IO, Any

from bitwright.fileio import json_depth, loads_strict

__all__ = [
    "DTYPE_BITS",
    "MAX_HEADER_BYTES",
    "MalformedSafetensors",
    "SafetensorsSummary",
    "check_safetensors",
    "looks_like_safetensors",
]

MAX_HEADER_BYTES = 100_000_000
"""The largest header accepted (the reference implementation's cap)."""

DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E5M2FNUZ": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
}
"""Bits per element of every dtype the safetensors format defines."""

_MAX_DEPTH = 4  # {tensor: {shape: [..]}} is three deep


class MalformedSafetensors(ValueError):
    """The header does not describe the file safely; the message says how (one line)."""


@dataclass(frozen=True)
class SafetensorsSummary:
    """A valid header, summarized.

    Attributes:
        tensors: how many tensors.
        dtypes: the dtypes used, sorted.
        parameters: the elements of all tensors together.
        metadata: the ``__metadata__`` strings.
    """

    tensors: int
    dtypes: tuple[str, ...]
    parameters: int
    metadata: dict[str, str]


def looks_like_safetensors(head: bytes, size: int) -> bool:
    """Whether the first bytes of a file of ``size`` bytes start a safetensors header."""
    if len(head) < 9 or size < 10:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= size - 8 and head[8:9] == b"{"


def check_safetensors(
    stream: IO[bytes], size: int, *, max_header: int = MAX_HEADER_BYTES
) -> SafetensorsSummary:
    """Check the header of the safetensors file read from ``stream`` (at its start).

    Args:
        stream: the file, positioned at byte 0 (read forward only, header bytes only).
        size: the file's size in bytes.
        max_header: the largest header accepted.

    Raises:
        MalformedSafetensors: the header is malformed or does not tile the file.
    """
    prefix = stream.read(8)
    if len(prefix) != 8:
        raise MalformedSafetensors(f"only {len(prefix)} bytes, shorter than the 8-byte length")
    (length,) = struct.unpack("<Q", prefix)
    if length > max_header:
        raise MalformedSafetensors(f"header of {length} bytes, more than the {max_header} allowed")
    if 8 + length > size:
        raise MalformedSafetensors(f"header of {length} bytes does not fit a {size}-byte file")
    raw = stream.read(length)
    if len(raw) != length:
        raise MalformedSafetensors("the file ends inside its header")
    header = _parse(raw)
    metadata = _metadata(header.pop("__metadata__", {}))
    spans: list[tuple[int, int, str]] = []
    dtypes: set[str] = set()
    parameters = 0
    for name, spec in header.items():
        begin, end, dtype, numel = _tensor(name, spec)
        spans.append((begin, end, name))
        dtypes.add(dtype)
        parameters += numel
    _tiles(spans, size - 8 - length)
    return SafetensorsSummary(len(spans), tuple(sorted(dtypes)), parameters, metadata)


def _parse(raw: bytes) -> dict[str, Any]:
    if raw[:1] != b"{":
        raise MalformedSafetensors("the header does not start with '{'")
    depth = json_depth(raw)
    if depth > _MAX_DEPTH:
        raise MalformedSafetensors(f"the header is nested {depth} levels deep")
    try:
        document = loads_strict(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedSafetensors(f"the header is not JSON ({_short(exc)})") from None
    if not isinstance(document, dict):
        raise MalformedSafetensors("the header is not a JSON object")
    return document


def _metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise MalformedSafetensors("__metadata__ is not an object of strings")
    return value


def _tensor(name: str, spec: Any) -> tuple[int, int, str, int]:
    label = f"tensor {name[:80]!r}"
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise MalformedSafetensors(f"{label} is not exactly {{dtype, shape, data_offsets}}")
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise MalformedSafetensors(f"{label} has an unknown dtype {str(dtype)[:40]!r}")
    if not isinstance(shape, list) or not all(_count(d) for d in shape):
        raise MalformedSafetensors(f"{label} has a shape that is not a list of counts")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_count(o) for o in offsets):
        raise MalformedSafetensors(f"{label} has data_offsets that are not [begin, end]")
    begin, end = offsets
    if begin > end:
        raise MalformedSafetensors(f"{label} ends before it begins")
    numel = math.prod(shape)
    bits = numel * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != end - begin:
        raise MalformedSafetensors(
            f"{label} spans {end - begin} bytes, but {dtype} {shape[:8]} needs {bits / 8:g}"
        )
    return begin, end, dtype, numel


def _tiles(spans: list[tuple[int, int, str]], buffer: int) -> None:
    cursor = 0
    for begin, end, name in sorted(spans):
        if begin < cursor:
            raise MalformedSafetensors(f"tensor {name[:80]!r} overlaps the one before it")
        if begin > cursor:
            raise MalformedSafetensors(f"{begin - cursor} bytes before tensor {name[:80]!r}")
        cursor = end
    if cursor < buffer:
        raise MalformedSafetensors(f"{buffer - cursor} trailing bytes after the last tensor")
    if cursor > buffer:
        raise MalformedSafetensors(
            f"the tensors end at byte {cursor} of a {buffer}-byte data buffer"
        )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:120]
