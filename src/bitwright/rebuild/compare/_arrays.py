"""Element-by-element measurement of two runs of raw elements of one dtype.

Shared by the safetensors comparison (tensors read chunk by chunk) and the comparison of
numpy arrays found in pickled models (:func:`compare_arrays`). Elements whose bits differ are
decoded block by block (:mod:`._dtypes`) to measure how far apart they are; equal elements
cost one vectorized comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
from bitwright.rebuild.compare.model import TensorDiff, Tolerance

__all__ = ["SCAN", "Stats", "compare_arrays", "scan"]

SCAN = 1 << 17
"""Elements searched for differences at a time (a 128 KiB mask, at most 2 MiB of copies)."""

_BLOCK = 1 << 13
"""Differing elements measured at a time: their float64 temporaries (64 KiB each) stay in
cache and in malloc's free lists; temporaries the size of a chunk cost more in page faults
than in arithmetic."""

_TINY = float(np.finfo(np.float64).tiny)
"""The floor of the relative difference's denominator (smallest normal float64)."""


# numpy's (kind, itemsize) -> the safetensors dtype name whose decoding it shares
_NUMPY_TO_DTYPE = {
    ("f", 8): "F64",
    ("f", 4): "F32",
    ("f", 2): "F16",
    ("i", 8): "I64",
    ("i", 4): "I32",
    ("i", 2): "I16",
    ("i", 1): "I8",
    ("u", 8): "U64",
    ("u", 4): "U32",
    ("u", 2): "U16",
    ("u", 1): "U8",
    ("b", 1): "BOOL",
}


@dataclass
class Stats:
    """Running extremes over the differing elements of one tensor."""

    differing: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: int = 0
    within: bool = True
    nan_vs_number: int = 0


def scan(
    dtype: DType, a_all: npt.NDArray[Any], b_all: npt.NDArray[Any], stats: Stats, tol: Tolerance
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
    dtype: DType, a_bits: npt.NDArray[Any], b_bits: npt.NDArray[Any], stats: Stats, tol: Tolerance
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


def compare_arrays(
    name: str, a: npt.NDArray[Any], b: npt.NDArray[Any], *, tolerance: Tolerance
) -> TensorDiff:
    """Compare two numpy arrays element by element, as the safetensors tensors are.

    Arrays of a dtype without a numeric view here (strings, objects, complex) count the
    elements that differ by equality, and the note says so. A dtype or shape change is one
    difference, with a note.
    """
    label = a.dtype.str.lstrip("<>|=")
    if a.dtype != b.dtype or a.shape != b.shape:
        notes = []
        if a.dtype != b.dtype:
            notes.append(f"dtype differs {a.dtype.str} != {b.dtype.str}")
        if a.shape != b.shape:
            notes.append(f"shape differs {list(a.shape)} != {list(b.shape)}")
        return TensorDiff(
            name, label, a.shape, False, 0.0, 0.0, 0, int(a.size), int(a.size), False,
            "; ".join(notes),
        )  # fmt: skip
    known = _NUMPY_TO_DTYPE.get((a.dtype.kind, a.dtype.itemsize))
    dtype = dtype_info(known) if known else None
    if dtype is None or dtype.category is Category.RAW:
        differing = int(np.count_nonzero(a.reshape(-1) != b.reshape(-1)))
        exact = differing == 0
        return TensorDiff(
            name, label, a.shape, exact, 0.0, 0.0, 0, differing, int(a.size), exact,
            f"compared by equality ({a.dtype} has no numeric view)",
        )  # fmt: skip
    bits_a = _bits(a, dtype)
    bits_b = _bits(b, dtype)
    stats = Stats()
    for start in range(0, bits_a.size, SCAN):
        scan(dtype, bits_a[start : start + SCAN], bits_b[start : start + SCAN], stats, tolerance)
    note = f"{stats.nan_vs_number} NaN vs number" if stats.nan_vs_number else ""
    return TensorDiff(
        name, label, a.shape, stats.differing == 0, stats.max_abs, stats.max_rel,
        stats.max_ulp, stats.differing, int(a.size), stats.within, note,
    )  # fmt: skip


def _bits(array: npt.NDArray[Any], dtype: DType) -> npt.NDArray[Any]:
    """The array's elements as little-endian raw bits, flat, in C order."""
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return little.reshape(-1).view(dtype.storage)
