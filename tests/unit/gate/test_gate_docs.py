"""docs/gate.md: its complete example policy is valid, its claims table is the code's."""

from __future__ import annotations

import re
from pathlib import Path

from bitwright.gate.claims import CLAIMS
from bitwright.gate.policy import parse_policy

DOC = Path(__file__).resolve().parents[3] / "docs" / "gate.md"


def _section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 3)
    return text[start : end if end != -1 else len(text)]


def test_the_complete_example_policy_parses_and_its_keys_load() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", _section("A complete policy"), re.DOTALL)

    policy = parse_policy(block.encode(), source="docs/gate.md")

    assert set(policy.profiles) == {"production", "training"}
    production = policy.profiles["production"]
    assert [k.name for k in production.reproducibility.verifiers] == ["alice", "bob"]
    assert all(k.load() for k in production.signers.keys)


def test_the_claims_table_says_what_the_code_says() -> None:
    table = " ".join(_section("Claims to controls").split())

    for claim in CLAIMS:
        assert " ".join(claim.cannot_prove.split()) in table
        for control in claim.controls:
            assert f"`{control}" in table
