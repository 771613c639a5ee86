"""Tensor-by-tensor comparison of real safetensors files."""

import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from compare_kit import WriteST, raw_safetensors
from safetensors.torch import save_file as save_torch

from bitwright.errors import VerificationFailed
from bitwright.rebuild import TensorDiff, Tolerance, compare_safetensors

EXACT = Tolerance()


def _by_name(diffs: tuple[TensorDiff, ...]) -> dict[str, TensorDiff]:
    return {d.name: d for d in diffs}


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "layer.0.weight": rng.standard_normal((16, 8)).astype(np.float32),
        "layer.0.bias": rng.standard_normal(8).astype(np.float32),
        "layer.1.weight": rng.standard_normal((8, 4)).astype(np.float64),
        "steps": np.array([1000], dtype=np.int64),
    }


def test_identical_files_are_bit_exact_everywhere(write_st: WriteST) -> None:
    a = write_st("a.safetensors", _weights())
    b = write_st("b.safetensors", _weights())
    diffs = compare_safetensors(a, b, tolerance=EXACT)
    assert [d.name for d in diffs] == list(_by_name(diffs))
    assert {d.name for d in diffs} == set(_weights())
    for d in diffs:
        assert d.bit_exact and d.within_tolerance
        assert (d.differing, d.max_abs, d.max_rel, d.max_ulp, d.note) == (0, 0.0, 0.0, 0, "")
    assert _by_name(diffs)["layer.0.weight"].total == 128
    assert _by_name(diffs)["layer.0.weight"].shape == (16, 8)


def test_one_element_one_ulp_away_is_found_and_named(write_st: WriteST) -> None:
    weights = _weights()
    changed = _weights()
    w = changed["layer.0.weight"]
    w[3, 5] = np.nextafter(w[3, 5], np.float32(np.inf))
    a = write_st("a.safetensors", weights)
    b = write_st("b.safetensors", changed)
    diffs = _by_name(compare_safetensors(a, b, tolerance=EXACT))
    hit = diffs["layer.0.weight"]
    assert not hit.bit_exact
    assert (hit.differing, hit.total, hit.max_ulp) == (1, 128, 1)
    assert hit.max_abs == pytest.approx(
        abs(float(w[3, 5]) - float(weights["layer.0.weight"][3, 5]))
    )
    assert hit.max_rel == pytest.approx(hit.max_abs / abs(float(weights["layer.0.weight"][3, 5])))
    assert not hit.within_tolerance  # zero tolerance admits nothing
    assert all(d.bit_exact for n, d in diffs.items() if n != "layer.0.weight")


@pytest.mark.parametrize(
    ("tolerance", "within"),
    [
        (Tolerance(atol=1e-3), True),
        (Tolerance(atol=1e-5), False),
        (Tolerance(rtol=1e-3), True),  # the changed element is 1.0: 1e-4 <= 1e-3 * 1.0
        (Tolerance(rtol=1e-5), False),
    ],
)
def test_within_tolerance_follows_atol_plus_rtol_times_original(
    write_st: WriteST, tolerance: Tolerance, within: bool
) -> None:
    original = np.ones(1000, dtype=np.float64)
    rebuilt = original.copy()
    rebuilt[500] += 1e-4
    a = write_st("a.safetensors", {"w": original})
    b = write_st("b.safetensors", {"w": rebuilt})
    (diff,) = compare_safetensors(a, b, tolerance=tolerance)
    assert diff.within_tolerance is within
    assert diff.differing == 1
    assert diff.max_abs == pytest.approx(1e-4)
    assert np.isclose(rebuilt, original, atol=tolerance.atol, rtol=tolerance.rtol).all() is (
        np.bool_(within)
    )


def test_bf16_and_f16_differences_are_measured_in_their_own_ulps(tmp_path: Path) -> None:
    base = torch.linspace(-4, 4, 64)
    bf, f16 = base.to(torch.bfloat16), base.to(torch.float16)
    bf2, f162 = bf.clone(), f16.clone()
    bf2.view(torch.int16)[10] += 1  # the next bf16 value away from zero
    f162.view(torch.int16)[20] += 3  # three f16 steps away from zero
    save_torch({"bf": bf, "h": f16}, str(tmp_path / "a.safetensors"))
    save_torch({"bf": bf2, "h": f162}, str(tmp_path / "b.safetensors"))
    diffs = _by_name(
        compare_safetensors(tmp_path / "a.safetensors", tmp_path / "b.safetensors", tolerance=EXACT)
    )
    assert diffs["bf"].dtype == "BF16" and diffs["h"].dtype == "F16"
    assert (diffs["bf"].differing, diffs["bf"].max_ulp) == (1, 1)
    assert (diffs["h"].differing, diffs["h"].max_ulp) == (1, 3)
    expected = abs(float(f162[20]) - float(f16[20]))
    assert diffs["h"].max_abs == pytest.approx(expected)


def test_tensor_on_one_side_only_is_reported_with_its_side(write_st: WriteST) -> None:
    original = _weights()
    rebuilt = _weights()
    del rebuilt["layer.0.bias"]
    rebuilt["extra"] = np.zeros(3, dtype=np.float32)
    a = write_st("a.safetensors", original)
    b = write_st("b.safetensors", rebuilt)
    diffs = compare_safetensors(a, b, tolerance=Tolerance(atol=1.0))
    by = _by_name(diffs)
    assert by["layer.0.bias"].note == "only in original"
    assert by["extra"].note == "only in rebuilt"
    assert diffs[-1].name == "extra"  # the rebuilt-only tensors come last
    for name in ("layer.0.bias", "extra"):
        assert not by[name].bit_exact and not by[name].within_tolerance
    assert by["layer.0.weight"].bit_exact


def test_dtype_and_shape_changes_are_named(write_st: WriteST) -> None:
    original = {"a": np.zeros((2, 3), np.float32), "b": np.zeros((2, 3), np.float32)}
    rebuilt = {"a": np.zeros((2, 3), np.float16), "b": np.zeros((3, 2), np.float32)}
    diffs = _by_name(
        compare_safetensors(
            write_st("a.safetensors", original),
            write_st("b.safetensors", rebuilt),
            tolerance=Tolerance(atol=1.0),
        )
    )
    assert diffs["a"].note == "dtype differs F32 != F16"
    assert diffs["b"].note == "shape differs [2, 3] != [3, 2]"
    assert not diffs["a"].within_tolerance and not diffs["b"].within_tolerance


def test_nan_with_equal_bits_is_equal_and_nan_against_a_number_is_not_within(
    write_st: WriteST,
) -> None:
    original = np.array([np.nan, 1.0, 2.0, np.inf], dtype=np.float32)
    rebuilt = np.array([np.nan, np.nan, 2.0, 3.0], dtype=np.float32)
    a = write_st("a.safetensors", {"w": original, "same": original})
    b = write_st("b.safetensors", {"w": rebuilt, "same": original.copy()})
    diffs = _by_name(compare_safetensors(a, b, tolerance=Tolerance(atol=1e9, rtol=1.0)))
    assert diffs["same"].bit_exact  # NaN == NaN bitwise
    w = diffs["w"]
    assert w.differing == 2
    assert not w.within_tolerance  # NaN vs 1.0, and inf vs 3.0
    assert w.note == "1 NaN vs number"
    assert math.isinf(w.max_abs)


def test_nan_payloads_differ_bitwise_but_are_within_tolerance(write_st: WriteST) -> None:
    quiet = np.array([0x7FC00000], dtype=np.uint32).view(np.float32)
    other = np.array([0x7FC00001], dtype=np.uint32).view(np.float32)
    a = write_st("a.safetensors", {"w": quiet})
    b = write_st("b.safetensors", {"w": other})
    (diff,) = compare_safetensors(a, b, tolerance=Tolerance(atol=1e-6))
    assert (diff.bit_exact, diff.differing, diff.within_tolerance) == (False, 1, True)
    assert (diff.max_abs, diff.max_ulp) == (0.0, 0)


def test_integers_differ_by_their_exact_difference(write_st: WriteST) -> None:
    a = write_st("a.safetensors", {"i": np.array([5, -7, 2**62], np.int64)})
    b = write_st("b.safetensors", {"i": np.array([5, 9, -(2**62)], np.int64)})
    (diff,) = compare_safetensors(a, b, tolerance=EXACT)
    assert diff.differing == 2
    assert diff.max_ulp == 2**63  # exact, beyond what float64 or int64 arithmetic gives
    assert diff.max_abs == float(2**63)


def test_differences_in_late_chunks_are_counted(write_st: WriteST) -> None:
    original = np.arange(10_000, dtype=np.float32)
    rebuilt = original.copy()
    rebuilt[[0, 4999, 9999]] += np.float32(0.5)
    a = write_st("a.safetensors", {"w": original})
    b = write_st("b.safetensors", {"w": rebuilt})
    for chunk in (8, 24, 4096, 8 << 20):
        (diff,) = compare_safetensors(a, b, tolerance=EXACT, chunk_bytes=chunk)
        assert diff.differing == 3 and diff.max_abs == 0.5, chunk


def test_8_bit_floats_are_compared_numerically(tmp_path: Path) -> None:
    base = torch.tensor([0.5, 1.0, -2.0]).to(torch.float8_e4m3fn)
    changed = base.clone()
    changed.view(torch.uint8)[1] += 1
    save_torch({"q": base}, str(tmp_path / "a.safetensors"))
    save_torch({"q": changed}, str(tmp_path / "b.safetensors"))
    (diff,) = compare_safetensors(
        tmp_path / "a.safetensors", tmp_path / "b.safetensors", tolerance=EXACT
    )
    assert (diff.dtype, diff.differing, diff.max_ulp, diff.max_abs) == ("F8_E4M3", 1, 1, 0.125)


def test_complex_tensors_are_compared_as_raw_bytes(write_st: WriteST) -> None:
    original = np.array([1 + 2j, 3 - 4j], dtype=np.complex64)
    rebuilt = original.copy()
    rebuilt[1] = 3 - 5j
    (diff,) = compare_safetensors(
        write_st("a.safetensors", {"c": original}),
        write_st("b.safetensors", {"c": rebuilt}),
        tolerance=Tolerance(atol=10.0),
    )
    assert "raw bytes" in diff.note
    assert diff.total == 16 and 0 < diff.differing <= 4
    assert not diff.within_tolerance


def _valid_header() -> dict[str, object]:
    return {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize(
    ("header", "data", "why"),
    [
        ("not an object", b"", "not a JSON object"),
        ({"w": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, "data_offsets"),
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "needs 12"),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, "starts at"),
        (_valid_header(), b"\0" * 12, "ends at"),
        ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "shape"),
        ({"__metadata__": {"k": 1}, **_valid_header()}, b"\0" * 8, "__metadata__"),
    ],
)
def test_malformed_header_is_refused_naming_the_file(
    tmp_path: Path, write_st: WriteST, header: object, data: bytes, why: str
) -> None:
    good = write_st("good.safetensors", {"w": np.zeros(2, np.float32)})
    bad = raw_safetensors(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(VerificationFailed, match=why) as info:
        compare_safetensors(good, bad, tolerance=EXACT)
    assert "bad.safetensors" in info.value.message
    assert info.value.hint


@pytest.mark.parametrize(
    "content",
    [b"", b"\1\0\0", struct.pack("<Q", 1 << 40) + b"{}", struct.pack("<Q", 4) + b"{no}"],
)
def test_truncated_or_garbage_files_are_malformed(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    with pytest.raises(VerificationFailed, match="bad.safetensors: malformed safetensors header"):
        compare_safetensors(bad, bad, tolerance=EXACT)


@pytest.mark.parametrize("chunk", [4096, 1 << 20, 8 << 20])
def test_streamed_statistics_match_a_whole_array_reference(write_st: WriteST, chunk: int) -> None:
    rng = np.random.default_rng(42)
    original = rng.standard_normal(300_000).astype(np.float32)  # spans several scan windows
    rebuilt = original.copy()
    hit = rng.choice(original.size, 5_000, replace=False)
    rebuilt[hit] += rng.standard_normal(hit.size).astype(np.float32) * np.float32(1e-3)
    changed = rebuilt != original
    a = write_st("a.safetensors", {"w": original})
    b = write_st("b.safetensors", {"w": rebuilt})
    (diff,) = compare_safetensors(a, b, tolerance=Tolerance(atol=2e-3), chunk_bytes=chunk)
    delta = np.abs(rebuilt.astype(np.float64) - original.astype(np.float64))

    def ordered(x: np.ndarray) -> np.ndarray:  # sign-magnitude bits -> ordered integers
        bits = x.view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)

    ulps = np.abs(ordered(rebuilt) - ordered(original))
    assert diff.differing == int(np.count_nonzero(changed))
    assert diff.max_abs == float(delta.max())
    assert diff.max_rel == float((delta / np.abs(original.astype(np.float64))).max())
    assert diff.max_ulp == int(ulps.max())
    wide = rebuilt.astype(np.float64), original.astype(np.float64)
    assert diff.within_tolerance is bool(np.isclose(*wide, atol=2e-3, rtol=0).all())


def test_unknown_dtypes_are_compared_as_raw_bytes(tmp_path: Path) -> None:
    def header(size: int) -> dict[str, object]:
        return {"q": {"dtype": "F4_FUTURE", "shape": [8], "data_offsets": [0, size]}}

    a = raw_safetensors(tmp_path / "a.safetensors", header(4), b"\x01\x02\x03\x04")
    b = raw_safetensors(tmp_path / "b.safetensors", header(4), b"\x01\x02\x09\x04")
    (diff,) = compare_safetensors(a, b, tolerance=Tolerance(atol=100.0))
    assert diff.note == "compared as raw bytes (F4_FUTURE has no numeric view)"
    assert (diff.differing, diff.total, diff.within_tolerance) == (1, 4, False)
    c = raw_safetensors(tmp_path / "c.safetensors", header(5), b"\x01\x02\x03\x04\x05")
    (resized,) = compare_safetensors(a, c, tolerance=EXACT)
    assert resized.note == "size differs 4 != 5 bytes"
