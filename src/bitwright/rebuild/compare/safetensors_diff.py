"""Tensor-by-tensor comparison of two safetensors files, streaming with constant memory.

Headers are parsed here (:mod:`._safetensors_header`), never by loading the file. Each
tensor's byte range is then read from both files chunk by chunk into two reused buffers;
a chunk whose bytes are equal is skipped at memory speed, and only the elements whose bits
differ are decoded (:mod:`._dtypes`) to measure how far apart they are, a block of a few
thousand elements at a time. Working memory is the two buffers (``2 * chunk_bytes``) plus
at most a few MiB of temporaries, whatever the size of the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BufferedReader
from pathlib import Path

import numpy as np

from bitwright.rebuild.compare._arrays import SCAN, Stats, scan
from bitwright.rebuild.compare._dtypes import Category, dtype_info
from bitwright.rebuild.compare._io import buffers_equal, open_regular, read_exactly
from bitwright.rebuild.compare._safetensors_header import (
    SafetensorsHeader,
    TensorEntry,
    read_safetensors_header,
)
from bitwright.rebuild.compare.model import TensorDiff, Tolerance

__all__ = ["compare_safetensors", "compare_tensors"]


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


def _compare_data(
    entry: TensorEntry, other: TensorEntry, reader: _PairReader, tolerance: Tolerance
) -> TensorDiff:
    length = entry.end - entry.begin
    dtype = dtype_info(entry.dtype)
    stats = Stats()
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
        for start in range(0, n // size, SCAN):
            scan(dtype, a[start : start + SCAN], b[start : start + SCAN], stats, tolerance)
    note = f"{stats.nan_vs_number} NaN vs number" if stats.nan_vs_number else ""
    return TensorDiff(
        entry.name, entry.dtype, entry.shape, stats.differing == 0, stats.max_abs,
        stats.max_rel, stats.max_ulp, stats.differing, entry.numel, stats.within, note,
    )  # fmt: skip
