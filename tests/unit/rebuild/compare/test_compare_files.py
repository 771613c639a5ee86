"""One released file against the rebuilt one: dispatch by content, verdict, detail line."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from compare_kit import WriteST, raw_safetensors

from bitwright.errors import OperationalError
from bitwright.rebuild import Tolerance, Verdict, compare_files

EXACT = Tolerance()
LOOSE = Tolerance(atol=1e-3)


def _model(scale: float = 0.0, nudge: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    tensors = {
        name: np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
        for name in ("w0", "w1", "w2", "w3")
    }
    for name in nudge:
        tensors[name][2, 2] += np.float32(scale)
    return tensors


def test_bit_identical_files_are_reproduced_without_parsing(tmp_path: Path) -> None:
    # not a valid safetensors file: a parser would refuse it, the byte check does not need one
    a = raw_safetensors(tmp_path / "a.safetensors", ["garbage"])
    b = raw_safetensors(tmp_path / "b.safetensors", ["garbage"])
    result = compare_files(a, b, path="artifacts/model.safetensors", tolerance=EXACT)
    assert result.verdict is Verdict.REPRODUCED
    assert result.kind == "safetensors"
    assert result.detail == f"bit-identical ({a.stat().st_size} bytes)"
    assert result.first_difference is None and result.tensors == ()


def test_tensors_that_differ_name_the_count_and_the_worst_distance(write_st: WriteST) -> None:
    a = write_st("a.safetensors", _model())
    b = write_st("b.safetensors", _model(0.03125, ("w1", "w3")))
    result = compare_files(a, b, path="model.safetensors", tolerance=EXACT)
    assert result.verdict is Verdict.DIFFERENT
    assert result.kind == "safetensors"
    assert result.detail.startswith("2 of 4 tensors differ (max |Δ| 0.031, max ULP ")
    assert [t.name for t in result.tensors if not t.bit_exact] == ["w1", "w3"]
    assert result.first_difference is not None and result.first_difference > 8


def test_small_differences_within_a_nonzero_tolerance(write_st: WriteST) -> None:
    a = write_st("a.safetensors", _model())
    b = write_st("b.safetensors", _model(1e-5, ("w2",)))
    within = compare_files(a, b, path="m.safetensors", tolerance=LOOSE)
    assert within.verdict is Verdict.REPRODUCED_WITHIN_TOLERANCE
    assert "all within tolerance (atol=0.001, rtol=0)" in within.detail
    exact = compare_files(a, b, path="m.safetensors", tolerance=EXACT)
    assert exact.verdict is Verdict.DIFFERENT  # a zero tolerance admits nothing
    beyond = compare_files(a, b, path="m.safetensors", tolerance=Tolerance(atol=1e-7))
    assert beyond.verdict is Verdict.DIFFERENT
    assert "beyond tolerance (atol=1e-07, rtol=0): w2" in beyond.detail


def test_equal_tensors_with_other_metadata_are_different(write_st: WriteST) -> None:
    a = write_st("a.safetensors", _model(), metadata={"built": "monday", "format": "np"})
    b = write_st("b.safetensors", _model(), metadata={"built": "tuesday", "format": "np"})
    result = compare_files(a, b, path="m.safetensors", tolerance=LOOSE)
    assert result.verdict is Verdict.DIFFERENT
    assert result.detail == "tensors identical; header/metadata differ (__metadata__ keys: built)"
    assert all(t.bit_exact for t in result.tensors)


def test_tolerable_tensors_do_not_excuse_a_changed_header(write_st: WriteST) -> None:
    a = write_st("a.safetensors", _model(), metadata={"built": "monday"})
    b = write_st("b.safetensors", _model(1e-5, ("w0",)), metadata={"built": "tuesday"})
    result = compare_files(a, b, path="m.safetensors", tolerance=LOOSE)
    assert result.verdict is Verdict.DIFFERENT
    assert result.detail.endswith("header/metadata differ (__metadata__ keys: built)")


def test_missing_and_reshaped_tensors_are_listed(write_st: WriteST) -> None:
    rebuilt = _model()
    del rebuilt["w0"]
    rebuilt["w1"] = rebuilt["w1"].reshape(4, 16)
    a = write_st("a.safetensors", _model())
    b = write_st("b.safetensors", rebuilt)
    result = compare_files(a, b, path="m.safetensors", tolerance=LOOSE)
    assert result.verdict is Verdict.DIFFERENT
    assert result.detail == "2 of 4 tensors differ; only in original: w0; dtype/shape differs: w1"


def test_a_malformed_rebuilt_model_is_compared_as_bytes(tmp_path: Path, write_st: WriteST) -> None:
    a = write_st("a.safetensors", _model())
    b = tmp_path / "b.safetensors"
    b.write_bytes(a.read_bytes()[:-4])  # truncated: the header no longer fits
    result = compare_files(a, b, path="m.safetensors", tolerance=LOOSE)
    assert (result.kind, result.verdict) == ("bytes", Verdict.DIFFERENT)
    assert result.first_difference == b.stat().st_size
    assert "malformed safetensors header" in result.detail and "b.safetensors" in result.detail


def test_json_metrics_are_compared_field_by_field(tmp_path: Path) -> None:
    a, b = tmp_path / "metrics.json", tmp_path / "rebuilt.json"
    a.write_text(json.dumps({"accuracy": 0.91, "per_class": [{"f1": 0.5}] * 4, "tag": "x"}))
    b.write_text(json.dumps({"accuracy": 0.9100004, "per_class": [{"f1": 0.5}] * 4, "tag": "x"}))
    within = compare_files(a, b, path="metrics.json", tolerance=LOOSE)
    assert (within.kind, within.verdict) == ("json", Verdict.REPRODUCED_WITHIN_TOLERANCE)
    assert within.detail.startswith(
        "1 of 6 fields differs (1 number(s): max |Δ| 4e-07, max rel 4.4e-07); worst: accuracy"
    )
    b.write_text(json.dumps({"accuracy": 0.91, "per_class": [{"f1": 0.5}] * 4, "tag": "y"}))
    changed = compare_files(a, b, path="metrics.json", tolerance=LOOSE)
    assert changed.verdict is Verdict.DIFFERENT
    assert [f.path for f in changed.fields] == ["tag"]


def test_json_with_only_formatting_changes_is_different(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('{"a": 1, "b": 2}')
    b.write_text('{"b": 2,\n "a": 1}')
    result = compare_files(a, b, path="metrics.json", tolerance=LOOSE)
    assert result.verdict is Verdict.DIFFERENT
    assert result.detail == "fields identical; formatting or key order differs"


def test_json_that_does_not_parse_is_compared_as_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('{"a": 1}')
    b.write_text('{"a": 1')
    result = compare_files(a, b, path="metrics.json", tolerance=LOOSE)
    assert (result.kind, result.verdict, result.first_difference) == ("bytes", "DIFFERENT", 7)
    assert "not JSON" in result.detail


def test_opaque_bytes_never_reproduce_within_tolerance(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"\0" * 100)
    b.write_bytes(b"\0" * 42 + b"\1" + b"\0" * 60)
    result = compare_files(a, b, path="card.md", tolerance=Tolerance(atol=1e9))
    assert (result.kind, result.verdict) == ("bytes", Verdict.DIFFERENT)
    assert result.detail == "first difference at byte 42 (sizes 100 and 103 bytes)"
    assert (result.size_original, result.size_rebuilt, result.first_difference) == (100, 103, 42)


def test_missing_on_either_side(tmp_path: Path) -> None:
    present = tmp_path / "model.bin"
    present.write_bytes(b"x")
    lost = compare_files(present, tmp_path / "absent", path="model.bin", tolerance=EXACT)
    assert (lost.kind, lost.verdict, lost.detail) == (
        "missing",
        Verdict.DIFFERENT,
        "missing in the rebuild",
    )
    assert (lost.size_original, lost.size_rebuilt) == (1, None)
    extra = compare_files(None, present, path="model.bin", tolerance=EXACT)
    assert (extra.kind, extra.verdict) == ("missing", Verdict.DIFFERENT)
    assert extra.detail == "only in the rebuild, not in the release"


def test_a_directory_is_an_operational_error(tmp_path: Path) -> None:
    present = tmp_path / "model.bin"
    present.write_bytes(b"x")
    with pytest.raises(OperationalError, match=re.escape(str(tmp_path)) + "(:|$| )"):
        compare_files(present, tmp_path, path="model.bin", tolerance=EXACT)


def test_comparison_serialises_to_strict_json(write_st: WriteST) -> None:
    a = write_st("a.safetensors", _model())
    b = write_st("b.safetensors", _model(1e-5, ("w2",)))
    data = compare_files(a, b, path="m.safetensors", tolerance=LOOSE).to_json()
    back = json.loads(json.dumps(data, allow_nan=False))
    assert back["verdict"] == "REPRODUCED_WITHIN_TOLERANCE"
    assert [t["name"] for t in back["tensors"]] == ["w0", "w1", "w2", "w3"]


def test_equal_tensors_in_a_reordered_header_are_different(tmp_path: Path) -> None:
    x = {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}
    y = {"dtype": "U8", "shape": [1], "data_offsets": [2, 3]}
    a = raw_safetensors(tmp_path / "a.safetensors", {"x": x, "y": y}, b"\1\2\3")
    b = raw_safetensors(tmp_path / "b.safetensors", {"y": y, "x": x}, b"\1\2\3")
    result = compare_files(a, b, path="m.safetensors", tolerance=LOOSE)
    assert result.verdict is Verdict.DIFFERENT
    assert result.detail == (
        "tensors identical; header/metadata differ (tensor order, offsets or padding)"
    )
