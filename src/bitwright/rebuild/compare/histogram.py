"""How the differing elements of one tensor are spread: a histogram of ``|Δ|`` by decade.

A report draws it for the worst tensors: differences of 1e-7 everywhere (a reduction order)
look nothing like a handful of elements off by 0.25 (a forgery). The tensor's bytes are
streamed from both files as :mod:`.safetensors_diff` does; memory stays a few MiB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from bitwright.rebuild.compare._dtypes import Category, dtype_info, values
from bitwright.rebuild.compare._io import open_regular, read_exactly
from bitwright.rebuild.compare._safetensors_header import read_safetensors_header

__all__ = ["DECADES", "difference_histogram"]

DECADES = tuple(range(-12, 1))
"""The decades of ``|Δ|`` that get a bin of their own: [1e-12, 1e-11) ... [1, 10)."""

_CHUNK_ELEMENTS = 1 << 18


def _labels() -> list[str]:
    return [
        "same value",
        f"<1e{DECADES[0]}",
        *[f"1e{d}" for d in DECADES],
        f"≥1e{DECADES[-1] + 1}",
        "NaN/inf",
    ]


def difference_histogram(original: Path, rebuilt: Path, tensor: str) -> tuple[tuple[str, int], ...]:
    """Count the elements of ``tensor`` whose bits differ, by the decade of ``|Δ|``.

    Bins: "same value" (bits differ, values equal: ``-0.0`` and ``+0.0``), below the first
    decade, one bin per decade of :data:`DECADES` (labelled by its lower bound), above the
    last, and "NaN/inf" (a NaN or an infinity on a side).

    Returns:
        ``(label, count)`` per bin; empty when the tensor is missing, differs in dtype or
        shape, or has no numeric view.

    Raises:
        VerificationFailed: a header is malformed.
        OperationalError: a file cannot be read.
    """
    a_header, b_header = read_safetensors_header(original), read_safetensors_header(rebuilt)
    a_entry, b_entry = a_header.by_name().get(tensor), b_header.by_name().get(tensor)
    if a_entry is None or b_entry is None:
        return ()
    dtype = dtype_info(a_entry.dtype)
    if (
        dtype is None
        or dtype.category is Category.RAW
        or (a_entry.dtype, a_entry.shape) != (b_entry.dtype, b_entry.shape)
        or a_entry.end - a_entry.begin != b_entry.end - b_entry.begin
    ):
        return ()
    counts = np.zeros(len(DECADES) + 4, dtype=np.int64)
    size = dtype.bits // 8
    total = (a_entry.end - a_entry.begin) // size
    with open_regular(original) as fa, open_regular(rebuilt) as fb:
        fa.seek(a_entry.begin)
        fb.seek(b_entry.begin)
        done = 0
        while done < total:
            n = min(_CHUNK_ELEMENTS, total - done)
            buf_a, buf_b = bytearray(n * size), bytearray(n * size)
            read_exactly(fa, memoryview(buf_a), path=original)
            read_exactly(fb, memoryview(buf_b), path=rebuilt)
            a_bits = np.frombuffer(buf_a, dtype=dtype.storage)
            b_bits = np.frombuffer(buf_b, dtype=dtype.storage)
            differs = a_bits != b_bits
            if differs.any():
                _count(values(dtype, a_bits[differs]), values(dtype, b_bits[differs]), counts)
            done += n
    return tuple(zip(_labels(), (int(c) for c in counts), strict=True))


def _count(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], counts: npt.NDArray[np.int64]
) -> None:
    with np.errstate(all="ignore"):
        delta = np.abs(a - b)
    odd = ~np.isfinite(delta)
    counts[-1] += int(np.count_nonzero(odd))
    delta = delta[~odd]
    counts[0] += int(np.count_nonzero(delta == 0))
    delta = delta[delta > 0]
    if not delta.size:
        return
    decade = np.floor(np.log10(delta)).astype(np.int64)
    low, high = DECADES[0], DECADES[-1]
    counts[1] += int(np.count_nonzero(decade < low))
    counts[-2] += int(np.count_nonzero(decade > high))
    inside = decade[(decade >= low) & (decade <= high)] - low
    np.add.at(counts, inside + 2, 1)
