"""The safetensors dtypes as numbers: element width, decoding to float64, ordering keys.

Every element is handled through its raw bits (an unsigned integer of the element's width),
so bitwise equality is exact, NaN payloads included. Two views are derived from the bits:

- ``values``: the element as float64 (exact for every float dtype here, and for integers up
  to 2**53; wider integers only feed the relative difference and the tolerance test).
- ``order_keys``: a 64-bit key that sorts like the value, so ``|key_a - key_b|``
  (:func:`ulp_distances`) is the distance in representable values: ULPs for floats, the
  exact difference for integers. Floats use sign-magnitude: ``-0.0`` and ``+0.0`` share a
  key (0 ULP apart) and the smallest negative and positive subnormals are 2 ULP apart.

8-bit floats (E4M3, E5M2 and their FNUZ variants, E8M0) decode through 256-entry tables
built from their definitions. Complex and sub-byte dtypes, and any dtype this module does
not know, have no numeric view: they are compared as raw bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Category",
    "DType",
    "dtype_info",
    "element_bits",
    "order_keys",
    "ulp_distances",
    "values",
]

Bits = npt.NDArray[Any]
"""An array of unsigned integers holding raw element bits."""
Floats = npt.NDArray[np.float64]
Keys = npt.NDArray[np.int64]


class Category(Enum):
    """How elements of a dtype are compared."""

    FLOAT = "float"
    INT = "int"
    RAW = "raw"


@dataclass(frozen=True)
class DType:
    """A safetensors dtype: its width, how it compares and how it decodes."""

    name: str
    bits: int
    category: Category
    signed: bool = True
    decode: Callable[[Bits], Floats] | None = None

    @property
    def storage(self) -> np.dtype[Any]:
        """The unsigned integer dtype that holds one element's bits."""
        return np.dtype(f"<u{self.bits // 8}")


def _view(float_type: str) -> Callable[[Bits], Floats]:
    def decode(bits: Bits) -> Floats:
        return bits.view(float_type).astype(np.float64)

    return decode


def _bf16(bits: Bits) -> Floats:
    # bfloat16 is the upper half of a float32
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)


def _int_view(int_type: str) -> Callable[[Bits], Floats]:
    def decode(bits: Bits) -> Floats:
        return bits.view(int_type).astype(np.float64)

    return decode


def minifloat_table(
    exp_bits: int, man_bits: int, bias: int, *, variant: str, signed: bool = True
) -> Floats:
    """Return the 256 values of an 8-bit float format, indexed by its bit pattern.

    Args:
        exp_bits: exponent width.
        man_bits: mantissa width.
        bias: exponent bias.
        variant: ``"ieee"`` (top exponent is inf/NaN), ``"fn"`` (no inf; all ones is NaN),
            ``"fnuz"`` (no inf, no -0; the pattern 0x80 is NaN) or ``"e8m0"`` (exponent
            only, unsigned, no zero or subnormals; 0xFF is NaN).
        signed: whether the top bit is a sign bit.
    """
    table = np.empty(256, dtype=np.float64)
    e_max, m_max = (1 << exp_bits) - 1, (1 << man_bits) - 1
    for code in range(256):
        negative = signed and bool(code & 0x80)
        e, m = (code >> man_bits) & e_max, code & m_max
        if (
            (variant == "ieee" and e == e_max and m)
            or (variant == "fn" and e == e_max and m == m_max)
            or (variant == "fnuz" and code == 0x80)
            or (variant == "e8m0" and code == 0xFF)
        ):
            value = math.nan
        elif variant == "ieee" and e == e_max:
            value = math.inf
        elif e == 0 and variant != "e8m0":
            value = m / (1 << man_bits) * 2.0 ** (1 - bias)
        else:
            value = (1 + m / (1 << man_bits)) * 2.0 ** (e - bias)
        table[code] = -value if negative else value
    return table


def _table(table: Floats) -> Callable[[Bits], Floats]:
    def decode(bits: Bits) -> Floats:
        return table[bits]

    return decode


_KNOWN: dict[str, DType] = {
    d.name: d
    for d in (
        DType("F64", 64, Category.FLOAT, decode=_view("<f8")),
        DType("F32", 32, Category.FLOAT, decode=_view("<f4")),
        DType("F16", 16, Category.FLOAT, decode=_view("<f2")),
        DType("BF16", 16, Category.FLOAT, decode=_bf16),
        DType(
            "F8_E5M2", 8, Category.FLOAT, decode=_table(minifloat_table(5, 2, 15, variant="ieee"))
        ),
        DType("F8_E4M3", 8, Category.FLOAT, decode=_table(minifloat_table(4, 3, 7, variant="fn"))),
        DType(
            "F8_E5M2FNUZ",
            8,
            Category.FLOAT,
            decode=_table(minifloat_table(5, 2, 16, variant="fnuz")),
        ),
        DType(
            "F8_E4M3FNUZ",
            8,
            Category.FLOAT,
            decode=_table(minifloat_table(4, 3, 8, variant="fnuz")),
        ),
        DType(
            "F8_E8M0",
            8,
            Category.FLOAT,
            signed=False,
            decode=_table(minifloat_table(8, 0, 127, variant="e8m0", signed=False)),
        ),
        DType("I64", 64, Category.INT, decode=_int_view("<i8")),
        DType("I32", 32, Category.INT, decode=_int_view("<i4")),
        DType("I16", 16, Category.INT, decode=_int_view("<i2")),
        DType("I8", 8, Category.INT, decode=_int_view("i1")),
        DType("U64", 64, Category.INT, signed=False, decode=_int_view("<u8")),
        DType("U32", 32, Category.INT, signed=False, decode=_int_view("<u4")),
        DType("U16", 16, Category.INT, signed=False, decode=_int_view("<u2")),
        DType("U8", 8, Category.INT, signed=False, decode=_int_view("u1")),
        DType("BOOL", 8, Category.INT, signed=False, decode=_int_view("u1")),
        DType("C64", 64, Category.RAW),
    )
}


def dtype_info(name: str) -> DType | None:
    """Return what is known about the safetensors dtype ``name`` (None if unknown)."""
    return _KNOWN.get(name)


def element_bits(name: str) -> int | None:
    """Return the width in bits of one element of ``name``, or None if it is not known."""
    info = _KNOWN.get(name)
    return None if info is None else info.bits


def values(dtype: DType, bits: Bits) -> Floats:
    """Decode raw element bits of ``dtype`` (FLOAT or INT) into float64."""
    if dtype.decode is None:
        raise ValueError(f"{dtype.name} has no numeric view")
    with np.errstate(invalid="ignore"):  # widening a signalling NaN raises the invalid flag
        return dtype.decode(bits)


def order_keys(dtype: DType, bits: Bits) -> Keys:
    """Map raw element bits of ``dtype`` (FLOAT or INT) to int64 keys ordered like the values.

    The returned array is a fresh copy that :func:`ulp_distances` may reuse.
    """
    width = dtype.bits
    if not dtype.signed:
        if width < 64:
            return bits.astype(np.int64)
        # U64: flipping the sign bit maps unsigned order onto signed order
        flipped: Keys = bits.view(np.int64) ^ np.int64(-(1 << 63))
        return flipped
    keys: Keys = bits.view(f"<i{width // 8}").astype(np.int64)
    if dtype.category is Category.FLOAT:
        # sign-magnitude -> ordered: a negative pattern -m (sign bit set) becomes -magnitude
        np.subtract(np.int64(-(1 << (width - 1))), keys, out=keys, where=keys < 0)
    return keys


def ulp_distances(keys_a: Keys, keys_b: Keys) -> npt.NDArray[np.uint64]:
    """Return ``|keys_a - keys_b|`` exactly, as uint64 (64-bit keys may be 2**64 - 1 apart).

    Both arrays are consumed (overwritten).
    """
    high = np.maximum(keys_a, keys_b)
    np.minimum(keys_a, keys_b, out=keys_a)
    distance = high.view(np.uint64)
    distance -= keys_a.view(np.uint64)  # modular subtraction of ordered values is exact
    return distance
