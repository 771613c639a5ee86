"""Reading and validating a safetensors header without touching the tensor data.

The format: 8 bytes little-endian ``N``, then ``N`` bytes of UTF-8 JSON (possibly padded with
spaces) mapping tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}`` plus an
optional ``"__metadata__"`` of string to string, then the data buffer. Offsets are relative to
the buffer. As the reference implementation does, the tensors must tile the buffer exactly:
no gaps, no overlaps, nothing after the last tensor; so once two headers are byte-identical,
every byte that differs lies inside some tensor.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwright.errors import VerificationFailed
from bitwright.rebuild.compare._dtypes import element_bits
from bitwright.rebuild.compare._io import open_regular, read_exactly

__all__ = ["MAX_HEADER_BYTES", "SafetensorsHeader", "TensorEntry", "read_safetensors_header"]

MAX_HEADER_BYTES = 100_000_000
"""The reference implementation refuses larger headers (a defence against memory bombs)."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as the header describes it; ``begin``/``end`` are absolute file offsets."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        """Number of elements (1 for a scalar)."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    """A parsed header: tensors in data order, metadata, and the header's raw bytes."""

    path: Path
    tensors: tuple[TensorEntry, ...]
    metadata: dict[str, str]
    raw: bytes
    file_size: int

    def by_name(self) -> dict[str, TensorEntry]:
        """Return the tensors keyed by name."""
        return {t.name: t for t in self.tensors}


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """Read and validate the header of the safetensors file ``path``.

    Raises:
        VerificationFailed: the header is malformed (bad length, not JSON, wrong field types,
            offsets that do not match the dtype and shape or do not tile the data buffer).
        OperationalError: the file is missing or unreadable.
    """
    with open_regular(path) as handle:
        file_size = os.fstat(handle.fileno()).st_size
        if file_size < 8:
            raise _malformed(path, f"only {file_size} bytes, shorter than the 8-byte length")
        prefix = memoryview(bytearray(8))
        read_exactly(handle, prefix, path=path)
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES or 8 + length > file_size:
            raise _malformed(path, f"header length {length} does not fit the file ({file_size} B)")
        raw = memoryview(bytearray(length))
        read_exactly(handle, raw, path=path)
    try:
        document = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _malformed(path, f"header is not UTF-8 JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise _malformed(path, "header is not a JSON object")
    metadata = _metadata(path, document.pop("__metadata__", {}))
    base = 8 + length
    tensors = sorted(
        (_entry(path, name, spec, base) for name, spec in document.items()),
        key=lambda t: (t.begin, t.end),
    )
    cursor = base
    for tensor in tensors:
        if tensor.begin != cursor:
            raise _malformed(path, f"tensor {tensor.name!r} starts at {tensor.begin}, not {cursor}")
        cursor = tensor.end
    if cursor != file_size:
        raise _malformed(path, f"tensor data ends at {cursor}, but the file has {file_size} bytes")
    return SafetensorsHeader(path, tuple(tensors), metadata, bytes(raw), file_size)


def _metadata(path: Path, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _malformed(path, "__metadata__ is not an object of strings")
    return value


def _entry(path: Path, name: str, spec: Any, base: int) -> TensorEntry:
    if not isinstance(spec, dict) or not {"dtype", "shape", "data_offsets"} <= spec.keys():
        raise _malformed(path, f"tensor {name!r} is not {{dtype, shape, data_offsets}}")
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if not isinstance(dtype, str):
        raise _malformed(path, f"tensor {name!r} has a non-string dtype")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise _malformed(path, f"tensor {name!r} has a shape that is not a list of counts")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise _malformed(path, f"tensor {name!r} has data_offsets that are not [begin, end]")
    entry = TensorEntry(name, dtype, tuple(shape), base + offsets[0], base + offsets[1])
    bits = element_bits(dtype)
    if bits is not None and entry.end - entry.begin != math.ceil(entry.numel * bits / 8):
        raise _malformed(
            path,
            f"tensor {name!r} holds {entry.end - entry.begin} bytes, "
            f"but {dtype} {list(shape)} needs {math.ceil(entry.numel * bits / 8)}",
        )
    return entry


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _malformed(path: Path, why: str) -> VerificationFailed:
    return VerificationFailed(
        f"{path}: malformed safetensors header: {why}",
        hint="the file is damaged or not a safetensors file; rebuild or re-download it",
    )
