from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from attest_factories import make_pins, make_run

from bitwright.attest import build_link, canonical_json
from bitwright.errors import UsageError
from bitwright.model import DeterminismSettings

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("case", ["rfc8785_values", "rfc8785_sorting"])
def test_rfc8785_examples_match_the_rfc(case: str) -> None:
    """The examples of RFC 8785 sections 3.2.2 and 3.2.3 (numbers, escapes, UTF-16 order)."""
    data = json.loads((GOLDEN / f"{case}.input.json").read_text(encoding="utf-8"))
    assert canonical_json(data) == (GOLDEN / f"{case}.expected.json").read_bytes()


def test_link_payload_bytes_are_stable() -> None:
    """A link's signed bytes must not drift: its digest is recorded in the provenance.

    Regenerate after an intended change of the link format with
    ``BITWRIGHT_UPDATE_GOLDEN=1 pytest tests/unit/attest`` and review the diff.
    """
    link = build_link(make_run(), make_pins(), declared=DeterminismSettings())
    payload = canonical_json(link.to_json())
    golden = GOLDEN / "link_payload.json"
    if os.environ.get("BITWRIGHT_UPDATE_GOLDEN") == "1":
        golden.write_bytes(payload)
    assert payload == golden.read_bytes()


def test_equal_data_gives_equal_bytes_whatever_the_key_order() -> None:
    a = {"b": [1, {"y": 2, "x": 1}], "a": "é"}
    b = {"a": "é", "b": [1, {"x": 1, "y": 2}]}
    assert canonical_json(a) == canonical_json(b) == '{"a":"é","b":[1,{"x":1,"y":2}]}'.encode()


def test_integers_beyond_ijson_are_refused_with_advice() -> None:
    with pytest.raises(UsageError) as err:
        canonical_json({"seed": 2**64 - 1})
    assert "canonical JSON" in err.value.message
    assert "seed" in err.value.hint
