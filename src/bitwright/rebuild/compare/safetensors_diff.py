"""Tensor-by-tensor comparison of two safetensors files, streaming with constant memory.

Headers are parsed here (:mod:`._safetensors_header`), never by loading the file. Each
tensor's byte range is then read from both files chunk by chunk into two reused buffers;
a chunk whose bytes are equal is skipped at memory speed, and only the elements whose bits
differ are decoded (:mod:`._dtypes`) to measure how far apart they are, a block of a few
thousand elements at a time. Working memory is the two buffers (``2 * chunk_bytes``) plus
at most a few MiB of temporaries, whatever the size of the checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bitwright.rebuild.compare._dtypes import (
    Category,
    DType,
    dtype_info,
    order_keys,
    ulp_distances,
    values,
)
from bitwright.rebuild.compare._io import buffers_equal, open_regular, read_exactly
from bitwright.rebuild.compare._safetensors_header import (
    SafetensorsHeader,
    TensorEntry,
    read_safetensors_header,
)
from bitwright.rebuild.compare.model import TensorDiff, Tolerance

__all__ = ["compare_safetensors", "compare_tensors"]

_SCAN = 1 << 17
"""Elements searched for differences at a time (a 128 KiB mask, at most 2 MiB of copies)."""

_BLOCK = 1 << 13
"""Differing elements measured at a time: their float64 temporaries (64 KiB each) stay in
cache and in malloc's free lists; temporaries the size of a chunk cost more in page faults
than in arithmetic."""

_TINY = float(np.finfo(np.float64).tiny)
"""The floor of the relative difference's denominator (smallest normal float64)."""


def compare_safetensors(
    original: Path, rebuilt: Path, *, tolerance: Tolerance, chunk_bytes: int = 8 << 20
) -> tuple[TensorDiff, ...]:
    """Compare every tensor of two safetensors files, streaming their data.

    Args:
        original: the released file.
        rebuilt: the file the rebuild produced.
        tolerance: how far numbers may differ and still count as within tolerance.
        chunk_bytes: the size of each read buffer; memory stays a small multiple of it.

    Returns:
        One :class:`TensorDiff` per tensor name, bit-exact ones included: the original's
        tensors in data order, then those only in the rebuilt file.

    Raises:
        VerificationFailed: a header is malformed (the message names the file).
        OperationalError: a file is missing or unreadable.
        ValueError: ``chunk_bytes`` is not positive.
    """
    return compare_tensors(
        read_safetensors_header(original),
        read_safetensors_header(rebuilt),
        tolerance=tolerance,
        chunk_bytes=chunk_bytes,
    )


def compare_tensors(
    original: SafetensorsHeader,
    rebuilt: SafetensorsHeader,
    *,
    tolerance: Tolerance,
    chunk_bytes: int = 8 << 20,
) -> tuple[TensorDiff, ...]:
    """Compare the tensors of two already parsed safetensors files (see compare_safetensors)."""
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    theirs = rebuilt.by_name()
    ours = original.by_name()
    diffs: list[TensorDiff] = []
    with open_regular(original.path) as fa, open_regular(rebuilt.path) as fb:
        reader = _PairReader(fa, fb, original.path, rebuilt.path, max(chunk_bytes, 8))
        for entry in original.tensors:
            other = theirs.get(entry.name)
            if other is None:
                diffs.append(_absent(entry, "only in original"))
            elif (entry.dtype, entry.shape, entry.end - entry.begin) != (
                other.dtype,
                other.shape,
                other.end - other.begin,
            ):
                diffs.append(_mismatch(entry, other))
            else:
                diffs.append(_compare_data(entry, other, reader, tolerance))
    diffs.extend(_absent(t, "only in rebuilt") for t in rebuilt.tensors if t.name not in ours)
    return tuple(diffs)


def _absent(entry: TensorEntry, note: str) -> TensorDiff:
    return TensorDiff(
        entry.name, entry.dtype, entry.shape, False, 0.0, 0.0, 0, entry.numel, entry.numel,
        False, note,
    )  # fmt: skip


def _mismatch(entry: TensorEntry, other: TensorEntry) -> TensorDiff:
    notes = []
    if entry.dtype != other.dtype:
        notes.append(f"dtype differs {entry.dtype} != {other.dtype}")
    if entry.shape != other.shape:
        notes.append(f"shape differs {list(entry.shape)} != {list(other.shape)}")
    if not notes:  # a dtype unknown here, so its size could not be checked against the shape
        notes.append(f"size differs {entry.end - entry.begin} != {other.end - other.begin} bytes")
    return TensorDiff(
        entry.name, entry.dtype, entry.shape, False, 0.0, 0.0, 0, entry.numel, entry.numel,
        False, "; ".join(notes),
    )  # fmt: skip


class _PairReader:
    """Reads the same byte range of two files side by side into two reused buffers."""

    def __init__(
        self, fa: BufferedReader, fb: BufferedReader, path_a: Path, path_b: Path, buffer_bytes: int
    ) -> None:
        self._files = (fa, fb)
        self._paths = (path_a, path_b)
        self.buffer_bytes = buffer_bytes
        self.buf_a = memoryview(bytearray(buffer_bytes))
        self.buf_b = memoryview(bytearray(buffer_bytes))

    def chunks(self, start_a: int, start_b: int, length: int, step: int) -> Iterator[int]:
        """Yield the byte count of each chunk of ``length`` bytes once both buffers hold it."""
        (fa, fb), (pa, pb) = self._files, self._paths
        fa.seek(start_a)
        fb.seek(start_b)
        done = 0
        while done < length:
            n = min(step, length - done)
            read_exactly(fa, self.buf_a[:n], path=pa)
            read_exactly(fb, self.buf_b[:n], path=pb)
            yield n
            done += n


@dataclass
class _Stats:
    """Running extremes over the differing elements of one tensor."""

    differing: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: int = 0
    within: bool = True
    nan_vs_number: int = 0


def _compare_data(
    entry: TensorEntry, other: TensorEntry, reader: _PairReader, tolerance: Tolerance
) -> TensorDiff:
    length = entry.end - entry.begin
    dtype = dtype_info(entry.dtype)
    stats = _Stats()
    if dtype is None or dtype.category is Category.RAW:
        for n in reader.chunks(entry.begin, other.begin, length, reader.buffer_bytes):
            if not buffers_equal(reader.buf_a, reader.buf_b, n):
                a = np.frombuffer(reader.buf_a, dtype=np.uint8, count=n)
                b = np.frombuffer(reader.buf_b, dtype=np.uint8, count=n)
                stats.differing += int(np.count_nonzero(a != b))
        exact = stats.differing == 0
        return TensorDiff(
            entry.name, entry.dtype, entry.shape, exact, 0.0, 0.0, 0, stats.differing, length,
            exact, f"compared as raw bytes ({entry.dtype} has no numeric view)",
        )  # fmt: skip
    size = dtype.bits // 8
    for n in reader.chunks(entry.begin, other.begin, length, reader.buffer_bytes // size * size):
        if buffers_equal(reader.buf_a, reader.buf_b, n):
            continue
        a = np.frombuffer(reader.buf_a, dtype=dtype.storage, count=n // size)
        b = np.frombuffer(reader.buf_b, dtype=dtype.storage, count=n // size)
        for start in range(0, n // size, _SCAN):
            _scan(dtype, a[start : start + _SCAN], b[start : start + _SCAN], stats, tolerance)
    note = f"{stats.nan_vs_number} NaN vs number" if stats.nan_vs_number else ""
    return TensorDiff(
        entry.name, entry.dtype, entry.shape, stats.differing == 0, stats.max_abs,
        stats.max_rel, stats.max_ulp, stats.differing, entry.numel, stats.within, note,
    )  # fmt: skip


def _scan(
    dtype: DType, a_all: npt.NDArray[Any], b_all: npt.NDArray[Any], stats: _Stats, tol: Tolerance
) -> None:
    """Count the elements of a span whose bits differ and measure them, block by block."""
    differs = a_all != b_all
    count = int(np.count_nonzero(differs))
    if not count:
        return
    stats.differing += count
    a_bits, b_bits = (a_all, b_all) if count == a_all.size else (a_all[differs], b_all[differs])
    for start in range(0, count, _BLOCK):
        end = start + _BLOCK
        _measure(dtype, a_bits[start:end], b_bits[start:end], stats, tol)


def _measure(
    dtype: DType, a_bits: npt.NDArray[Any], b_bits: npt.NDArray[Any], stats: _Stats, tol: Tolerance
) -> None:
    """Fold a block of elements whose bits differ into ``stats``."""
    a, b = values(dtype, a_bits), values(dtype, b_bits)
    if dtype.category is Category.FLOAT:
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if nan_a.any() or nan_b.any():  # NaN on either side: no distance to measure
            one_nan = int(np.count_nonzero(nan_a != nan_b))
            stats.nan_vs_number += one_nan
            stats.within = stats.within and not one_nan
            numbers = ~(nan_a | nan_b)
            a, b, a_bits, b_bits = a[numbers], b[numbers], a_bits[numbers], b_bits[numbers]
        del nan_a, nan_b
        if not a.size:
            return
    ulps = ulp_distances(order_keys(dtype, a_bits), order_keys(dtype, b_bits))
    stats.max_ulp = max(stats.max_ulp, int(ulps.max()))
    del ulps, a_bits, b_bits
    with np.errstate(all="ignore"):  # overflow to inf and inf / inf are expected
        delta = np.abs(np.subtract(a, b, out=b), out=b)
        magnitude = np.abs(a, out=a)
        if tol.rtol:
            bound = magnitude * tol.rtol
            bound += tol.atol
            close = bool((delta <= bound).all())
            del bound
        else:
            close = bool((delta <= tol.atol).all())
        max_abs = float(delta.max())
        rel = np.divide(delta, np.maximum(magnitude, _TINY, out=magnitude), out=magnitude)
        max_rel = float(rel.max())
    stats.max_abs = max(stats.max_abs, max_abs)
    stats.max_rel = max(stats.max_rel, math.inf if math.isnan(max_rel) else max_rel)
    # an infinite difference (an infinity on a side, or overflow) is never within tolerance
    stats.within = stats.within and close and math.isfinite(max_abs)
