"""The BOM validator's one-pass ``uniqueItems`` agrees with jsonschema's pairwise check."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema.validators import Draft7Validator

from bitwright.errors import VerificationFailed
from bitwright.release import validate_aibom
from bitwright.release._bom_schema import bom_validator, item_key

UNIQUE = {"type": "array", "uniqueItems": True}
_scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.0, 1.0, 2.5, -1.0])
_json = st.recursive(
    _scalars | st.sampled_from(["", "a", "1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=8,
)


def _errors(validator_class: Any, instance: list[Any]) -> list[str]:
    return [e.message for e in validator_class(UNIQUE).iter_errors(instance)]


@settings(max_examples=400, deadline=None)
@given(st.lists(_json, max_size=6))
def test_same_verdict_as_the_pairwise_check(instance: list[Any]) -> None:
    fast = type(bom_validator())

    assert _errors(fast, instance) == _errors(Draft7Validator, instance)


def test_keys_follow_jsonschema_equality() -> None:
    assert item_key(1) == item_key(1.0)
    assert item_key(True) != item_key(1)
    assert item_key({"a": 1, "b": [0]}) == item_key({"b": [0.0], "a": 1})
    assert item_key([1, 2]) != item_key([2, 1])
    assert item_key(10**400) == item_key(10**400)


def test_a_repeated_item_still_breaks_the_bom() -> None:
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "dependencies": [{"ref": "a"}, {"ref": "a"}],
    }

    try:
        validate_aibom(json.dumps(bom))
    except VerificationFailed as failure:
        assert "schema at dependencies:" in failure.message
        assert "non-unique" in failure.message
    else:
        raise AssertionError("a BOM with a repeated unique item validated")
