"""The ordering keys behind max ULP, and the decoding of every numeric safetensors dtype."""

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bitwright.rebuild.compare._dtypes import dtype_info, order_keys, ulp_distances, values


def _keys(name: str, array: npt.NDArray[np.generic]) -> npt.NDArray[np.int64]:
    info = dtype_info(name)
    assert info is not None
    return order_keys(info, array.view(info.storage))


def _ulp(name: str, a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> int:
    return int(ulp_distances(_keys(name, a), _keys(name, b))[0])


@pytest.mark.parametrize(("name", "dtype"), [("F16", np.float16), ("BF16", None)])
def test_every_16_bit_float_sorts_by_key_with_adjacent_values_one_apart(
    name: str, dtype: type[np.generic] | None
) -> None:
    bits = np.arange(1 << 16, dtype=np.uint16)
    info = dtype_info(name)
    assert info is not None
    vals = values(info, bits)
    finite = ~np.isnan(vals) & (bits != 0x8000)  # -0.0 shares +0.0's key
    keys = order_keys(info, bits)[finite]
    ordered = np.argsort(vals[finite], kind="stable")
    steps = np.diff(keys[ordered])
    assert (steps == 1).all()  # strictly increasing and consecutive: one key per value


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_f32_next_representable_value_is_one_ulp_away(x: float) -> None:
    a = np.array([x], dtype=np.float32)
    with np.errstate(over="ignore"):  # after the largest float comes infinity, 1 ULP away
        up = np.nextafter(a, np.float32(np.inf))
        down = np.nextafter(a, np.float32(-np.inf))
    assert _ulp("F32", a, up) == 1
    assert _ulp("F32", a, down) == 1
    assert _ulp("F32", a, a) == 0


@given(
    st.floats(allow_nan=False, allow_infinity=True),
    st.floats(allow_nan=False, allow_infinity=True),
)
def test_f64_keys_order_like_values(x: float, y: float) -> None:
    kx, ky = _keys("F64", np.array([x])), _keys("F64", np.array([y]))
    assert (kx[0] < ky[0]) == (x < y)
    assert (kx[0] == ky[0]) == (x == y)  # so -0.0 and 0.0 are 0 ULP apart


def test_zeros_of_both_signs_are_zero_ulp_and_smallest_subnormals_two_apart() -> None:
    assert _ulp("F32", np.array([0.0], np.float32), np.array([-0.0], np.float32)) == 0
    tiny = np.float32(1e-45)
    assert _ulp("F32", np.array([tiny]), np.array([-tiny])) == 2
    big = np.finfo(np.float64).max
    assert _ulp("F64", np.array([big]), np.array([-big])) == 2 * (0x7FEFFFFFFFFFFFFF)


@given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1))
def test_i64_distance_is_the_exact_difference(x: int, y: int) -> None:
    assert _ulp("I64", np.array([x], np.int64), np.array([y], np.int64)) == abs(x - y)


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_u64_distance_is_the_exact_difference(x: int, y: int) -> None:
    assert _ulp("U64", np.array([x], np.uint64), np.array([y], np.uint64)) == abs(x - y)


@given(st.integers(-128, 127), st.integers(-128, 127))
def test_i8_distance_is_the_exact_difference(x: int, y: int) -> None:
    assert _ulp("I8", np.array([x], np.int8), np.array([y], np.int8)) == abs(x - y)


@pytest.mark.parametrize(
    ("name", "torch_dtype"),
    [
        ("F8_E4M3", torch.float8_e4m3fn),
        ("F8_E5M2", torch.float8_e5m2),
        ("F8_E4M3FNUZ", torch.float8_e4m3fnuz),
        ("F8_E5M2FNUZ", torch.float8_e5m2fnuz),
        ("F8_E8M0", torch.float8_e8m0fnu),
    ],
)
def test_8_bit_floats_decode_as_torch_does(name: str, torch_dtype: torch.dtype) -> None:
    codes = torch.arange(256, dtype=torch.uint8)
    expected = codes.view(torch_dtype).double().numpy()
    info = dtype_info(name)
    assert info is not None
    got = values(info, codes.numpy())
    assert np.array_equal(got, expected, equal_nan=True)


def test_bf16_decodes_as_torch_does() -> None:
    bits = torch.arange(1 << 16, dtype=torch.int32).to(torch.int16)
    expected = bits.view(torch.bfloat16).double().numpy()
    info = dtype_info("BF16")
    assert info is not None
    assert np.array_equal(values(info, bits.numpy().view(np.uint16)), expected, equal_nan=True)
