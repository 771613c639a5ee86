"""Field-by-field comparison of JSON files, and the paths that name the fields."""

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitwright.rebuild import FieldDiff, Tolerance, compare_json, flatten_json
from bitwright.rebuild.compare.json_diff import compare_values

EXACT = Tolerance()

METRICS = {
    "accuracy": 0.9125,
    "loss": 0.25,
    "model": "mlp-small",
    "epochs": 3,
    "per_class": [{"f1": 0.9, "support": 10} for _ in range(4)],
}


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


def _by_path(fields: tuple[FieldDiff, ...]) -> dict[str, FieldDiff]:
    return {f.path: f for f in fields}


def test_metrics_with_a_changed_float_and_a_changed_string(tmp_path: Path) -> None:
    rebuilt = json.loads(json.dumps(METRICS))
    rebuilt["per_class"][3]["f1"] = 0.9000001
    rebuilt["model"] = "mlp-large"
    a, b = _write(tmp_path / "a.json", METRICS), _write(tmp_path / "b.json", rebuilt)
    fields = _by_path(compare_json(a, b, tolerance=Tolerance(atol=1e-6)))
    assert set(fields) == {"per_class.3.f1", "model"}
    assert fields["per_class.3.f1"] == FieldDiff("per_class.3.f1", 0.9, 0.9000001, True)
    assert fields["model"] == FieldDiff("model", "mlp-small", "mlp-large", False)
    tight = _by_path(compare_json(a, b, tolerance=Tolerance(atol=1e-8)))
    assert not tight["per_class.3.f1"].within_tolerance


def test_identical_content_has_no_differing_fields(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.json", METRICS)
    b = tmp_path / "b.json"
    b.write_text(json.dumps(dict(reversed(METRICS.items()))))  # other order and spacing
    assert compare_json(a, b, tolerance=EXACT) == ()


def test_missing_extra_and_retyped_fields() -> None:
    original = {"a": 1, "b": [1, 2, 3], "c": {"x": True}, "d": None}
    rebuilt = {"a": 1, "b": [1, 2], "c": {"x": 1}, "e": "new", "d": {}}
    fields = _by_path(compare_values(original, rebuilt, tolerance=Tolerance(atol=5)))
    assert fields["b.2"] == FieldDiff("b.2", 3, None, False, "only in original")
    assert fields["e"] == FieldDiff("e", None, "new", False, "only in rebuilt")
    assert fields["c.x"].note == "type differs boolean != number"  # True is not 1
    assert fields["d"].note == "type differs null != object"
    assert not any(f.within_tolerance for f in fields.values())
    assert len(fields) == 4


def test_int_and_float_of_equal_value_differ_but_within_any_tolerance() -> None:
    (field,) = compare_values({"n": 1}, {"n": 1.0}, tolerance=EXACT)
    assert (field.path, field.within_tolerance, field.note) == ("n", True, "int != float")


def test_nan_and_infinities_follow_isclose() -> None:
    tol = Tolerance(atol=1e9)
    assert compare_values([math.nan], [math.nan], tolerance=EXACT) == ()
    (nan_vs_number,) = compare_values([math.nan], [1.0], tolerance=tol)
    assert not nan_vs_number.within_tolerance
    (inf_vs_number,) = compare_values([math.inf], [1e300], tolerance=Tolerance(rtol=1.0))
    assert not inf_vs_number.within_tolerance
    (signed_zero,) = compare_values([0.0], [-0.0], tolerance=tol)
    assert signed_zero.within_tolerance


def test_huge_integers_compare_exactly() -> None:
    (field,) = compare_values([10**400], [10**400 + 1], tolerance=Tolerance(rtol=0.5))
    assert not field.within_tolerance


def test_root_and_awkward_keys_have_unambiguous_paths() -> None:
    flat = flatten_json({"a.b": 1, "a": {"b": 2, "3": 4, "": 5}, "$": [7], "l": [[], {}]})
    assert flat == {
        '"a.b"': 1,
        "a.b": 2,
        'a."3"': 4,
        'a.""': 5,
        '"$".0': 7,
        "l.0": [],
        "l.1": {},
    }
    assert flatten_json(3) == {"$": 3}
    (root,) = compare_values([1], {"x": 1}, tolerance=EXACT)
    assert root.path == "$" and root.note == "type differs array != object"


def test_a_file_that_is_not_json_raises_value_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError):
        compare_json(bad, bad, tolerance=EXACT)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _count_leaves(value: Any) -> int:
    if isinstance(value, dict) and value:
        return sum(_count_leaves(v) for v in value.values())
    if isinstance(value, list) and value:
        return sum(_count_leaves(v) for v in value)
    return 1


@given(json_values)
def test_every_leaf_gets_its_own_path(value: Any) -> None:
    assert len(flatten_json(value)) == _count_leaves(value)


@given(json_values)
def test_a_document_equals_itself(value: Any) -> None:
    assert compare_values(value, json.loads(json.dumps(value)), tolerance=EXACT) == ()


def _replace(value: Any, target: int, new: Any, counter: list[int]) -> Any:
    """Return ``value`` with its leaf number ``target`` (in flatten order) set to ``new``."""
    if isinstance(value, dict) and value:
        return {k: _replace(v, target, new, counter) for k, v in value.items()}
    if isinstance(value, list) and value:
        return [_replace(v, target, new, counter) for v in value]
    counter[0] += 1
    return new if counter[0] - 1 == target else value


@given(json_values, st.data())
def test_changing_one_leaf_reports_exactly_its_path(value: Any, data: st.DataObject) -> None:
    paths = list(flatten_json(value))
    target = data.draw(st.integers(0, len(paths) - 1))
    old = flatten_json(value)[paths[target]]
    new = data.draw(json_scalars.filter(lambda x: type(x) is not type(old) or x != old))
    changed = _replace(value, target, new, [0])
    (field,) = compare_values(value, changed, tolerance=EXACT)
    assert field.path == paths[target]
    assert field.rebuilt == new


@given(st.floats(-1e6, 1e6), st.floats(0, 1e-3))
def test_numbers_within_atol_are_within_tolerance(x: float, delta: float) -> None:
    fields = compare_values({"m": x}, {"m": x + delta}, tolerance=Tolerance(atol=2e-3))
    assert all(f.within_tolerance for f in fields)
