"""Safetensors headers: every way one can mislead a loader is refused; fuzzing never crashes."""

from __future__ import annotations

import contextlib
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitwright.scan import Severity, scan_path
from bitwright.scan.safetensors import MalformedSafetensors, check_safetensors


def _file(header: Any, data: bytes = b"", *, raw: bytes | None = None) -> bytes:
    text = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _check(blob: bytes) -> None:
    check_safetensors(io.BytesIO(blob), len(blob))


def _tensor(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def test_a_real_file_is_valid(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(3, 2), "b": torch.ones(4, dtype=torch.bfloat16)}, tmp_path / "m")
    with (tmp_path / "m").open("rb") as handle:
        summary = check_safetensors(handle, (tmp_path / "m").stat().st_size)

    assert (summary.tensors, summary.dtypes, summary.parameters) == (2, ("BF16", "F32"), 10)


@pytest.mark.parametrize(
    ("blob", "problem"),
    [
        (_file({"a": _tensor("F32", [2], 0, 8)}, b"\0" * 8 + b"x"), "trailing bytes"),
        (_file({"a": _tensor("F32", [2], 0, 8)}, b"\0" * 4), "end at byte 8 of a 4-byte"),
        (_file({"a": _tensor("F32", [3], 0, 8)}, b"\0" * 8), "needs 12"),
        (_file({"a": _tensor("F32", [2], 4, 12)}, b"\0" * 12), "4 bytes before"),
        (
            _file({"a": _tensor("U8", [4], 0, 4), "b": _tensor("U8", [4], 2, 6)}, b"\0" * 6),
            "overlaps",
        ),
        (_file({"a": _tensor("F33", [1], 0, 4)}, b"\0" * 4), "unknown dtype"),
        (_file({"a": _tensor("F32", [-1], 0, 4)}, b"\0" * 4), "not a list of counts"),
        (_file({"a": _tensor("F32", [True], 0, 4)}, b"\0" * 4), "not a list of counts"),
        (_file({"a": _tensor("F32", [1], 8, 4)}, b"\0" * 8), "ends before it begins"),
        (_file({"a": {"dtype": "F32", "shape": [1]}}, b"\0" * 4), "not exactly"),
        (_file({"__metadata__": {"k": 1}}), "__metadata__"),
        (_file(None, raw=b'{"a": 1, "a": 2}'), "duplicate key"),
        (_file(None, raw=b'{"a": NaN}'), "not JSON"),
        (_file(None, raw=b"[" * 10 + b"]" * 10), "does not start"),
        (_file(None, raw=b'{"a": [[[[[[1]]]]]]}'), "nested"),
        (_file(None, raw=b'{"a": "\xff"}'), "not JSON"),
        (struct.pack("<Q", 10**12) + b"{}", "more than"),
        (struct.pack("<Q", 50) + b"{}", "does not fit"),
        (b"\x01\x00", "shorter than the 8-byte length"),
        (_file({"a": _tensor("F4", [3], 0, 1)}, b"\0"), "needs 1.5"),
    ],
)
def test_malformed_headers_are_refused(blob: bytes, problem: str) -> None:
    with pytest.raises(MalformedSafetensors, match=problem):
        _check(blob)


def test_sub_byte_dtypes_count_bits() -> None:
    _check(_file({"a": _tensor("F4", [4], 0, 2), "b": _tensor("F6_E2M3", [4], 2, 5)}, b"\0" * 5))


def test_the_scan_reports_a_malformed_header_as_unsafe(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(
        _file({"a": _tensor("F32", [2], 0, 8)}, b"\0" * 8 + b"hidden pickle")
    )

    report = scan_path(tmp_path)

    (finding,) = report.findings
    assert finding.severity is Severity.UNSAFE
    assert "trailing bytes" in finding.message


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
_spec = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "U8", "F4", "BF16", "F8_E4M3", "X", ""]) | _json,
        "shape": st.lists(st.integers(-2, 2**40), max_size=4) | _json,
        "data_offsets": st.lists(st.integers(-5, 2**40), min_size=0, max_size=3) | _json,
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.dictionaries(st.text(max_size=6), _spec | _json, max_size=5),
    data=st.binary(max_size=64),
    length_delta=st.integers(-3, 3),
)
def test_fuzzed_headers_never_crash_the_scanner(
    header: dict[str, Any], data: bytes, length_delta: int
) -> None:
    text = json.dumps(header).encode()
    blob = struct.pack("<Q", max(0, len(text) + length_delta)) + text + data
    with contextlib.suppress(MalformedSafetensors):
        _check(blob)


@settings(max_examples=100, deadline=None)
@given(blob=st.binary(max_size=200))
def test_fuzzed_bytes_never_crash_the_scanner(blob: bytes, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)

    report = scan_path(path)

    assert len(report.files) == 1
