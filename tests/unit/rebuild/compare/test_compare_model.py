import json
import math

import pytest

from bitwright.errors import UsageError
from bitwright.rebuild import FieldDiff, FileComparison, TensorDiff, Tolerance, Verdict


def test_combine_takes_the_worst_verdict() -> None:
    r, w, d, f = (
        Verdict.REPRODUCED,
        Verdict.REPRODUCED_WITHIN_TOLERANCE,
        Verdict.DIFFERENT,
        Verdict.FAILED,
    )
    assert Verdict.combine([r, w, r]) is w
    assert Verdict.combine([w, d, r]) is d
    assert Verdict.combine([d, f, w]) is f
    assert Verdict.combine(iter([r, r])) is r


def test_combine_of_nothing_is_reproduced() -> None:
    assert Verdict.combine([]) is Verdict.REPRODUCED


@pytest.mark.parametrize("bad", [-1e-9, math.nan, math.inf, True, "0.1"])
@pytest.mark.parametrize("field", ["atol", "rtol"])
def test_tolerance_refuses_what_is_not_a_finite_non_negative_number(
    field: str, bad: object
) -> None:
    with pytest.raises(UsageError, match=field) as info:
        Tolerance(**{field: bad})  # type: ignore[arg-type]
    assert info.value.hint


def test_tolerance_zero_by_default() -> None:
    assert Tolerance().is_zero
    assert not Tolerance(atol=1e-6).is_zero
    assert not Tolerance(rtol=1e-3).is_zero
    assert Tolerance(atol=1e-6, rtol=0).describe() == "atol=1e-06, rtol=0"


def test_to_json_is_strict_json_with_all_fields() -> None:
    comparison = FileComparison(
        path="artifacts/model.safetensors",
        kind="safetensors",
        verdict=Verdict.DIFFERENT,
        detail="1 of 1 tensors differ",
        tensors=(TensorDiff("w", "F32", (2, 3), False, math.inf, math.nan, 7, 1, 6, False, "x"),),
        fields=(FieldDiff("acc", 0.5, -math.inf, False),),
        size_original=10,
        size_rebuilt=11,
        first_difference=8,
    )
    data = comparison.to_json()
    text = json.dumps(data, allow_nan=False)  # refuses NaN / Infinity literals
    back = json.loads(text)
    assert back["verdict"] == "DIFFERENT"
    assert back["tensors"][0]["shape"] == [2, 3]
    assert back["tensors"][0]["max_abs"] == "Infinity"
    assert back["tensors"][0]["max_rel"] == "NaN"
    assert back["fields"][0]["rebuilt"] == "-Infinity"
    assert back["first_difference"] == 8
