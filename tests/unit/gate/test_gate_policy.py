"""Policies: strict YAML, unknown keys and aliases refused, profiles, the published schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from bitwright.attest import generate_keypair
from bitwright.attest.keys import KeyPair
from bitwright.errors import KeyProblem, OperationalError, UsageError
from bitwright.gate.policy import SCHEMA_FILE, load_policy, parse_policy, policy_schema
from bitwright.gate.starter import starter_policy


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("keys"), name="owner")


@pytest.fixture(scope="module")
def verifiers(tmp_path_factory: pytest.TempPathFactory) -> list[KeyPair]:
    folder = tmp_path_factory.mktemp("verifiers")
    return [generate_keypair(folder, name=n) for n in ("alice", "bob")]


def _minimal(owner: KeyPair, **profile: object) -> dict[str, object]:
    return {
        "apiVersion": "bitwright.dev/gate-policy/v1",
        "default_profile": "training",
        "profiles": {
            "training": {"signers": {"keys": [{"pem": owner.public_path.read_text()}]}, **profile},
            "production": {"signers": {"keys": [{"pem": owner.public_path.read_text()}]}},
        },
    }


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_minimal_policy_requires_every_claim_by_default(owner: KeyPair, tmp_path: Path) -> None:
    loaded = load_policy(_write(tmp_path, _minimal(owner)))

    assert loaded.profile_name == "training"
    assert all(loaded.profile.require.model_dump().values())
    assert loaded.trust().keys[0].keyid == owner.keyid


def test_profiles_are_chosen_by_name(owner: KeyPair, tmp_path: Path) -> None:
    path = _write(tmp_path, _minimal(owner))

    assert load_policy(path, profile="production").profile_name == "production"
    with pytest.raises(UsageError, match="no profile 'staging'"):
        load_policy(path, profile="staging")


def test_the_digest_covers_every_byte_that_matters(owner: KeyPair, tmp_path: Path) -> None:
    first = load_policy(_write(tmp_path, _minimal(owner))).sha256
    again = load_policy(_write(tmp_path, _minimal(owner))).sha256
    changed = load_policy(_write(tmp_path, _minimal(owner, builders=["x:y"]))).sha256

    assert first == again != changed


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"signers": {"keys": []}, "builderz": []}, "Extra inputs are not permitted"),
        ({"reproducibility": {"verdicts": -1}}, "greater than or equal to 0"),
        ({"deployment": {"allowlist": ["tensorflow"]}}, "deployment.allowlist"),
        ({"signers": {"keys": [{"pem": "not a key"}]}}, "signers.keys.0.pem"),
        ({"deny": {"containers": ["latest"]}}, "deny.containers.0"),
    ],
)
def test_malformed_profiles_are_usage_errors(
    owner: KeyPair, tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    with pytest.raises(UsageError, match=problem):
        load_policy(_write(tmp_path, _minimal(owner, **change)))


def test_a_profile_trusting_nobody_is_refused(owner: KeyPair, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="trusts no signer"):
        load_policy(_write(tmp_path, _minimal(owner, signers={"keys": []})))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"apiVersion: bitwright.dev/gate-policy/v9\n", "is not bitwright.dev/gate-policy/v1"),
        (b"a: &x [1]\nb: *x\n", "anchors and aliases"),
        (b"a: " + b"[" * 40 + b"]" * 40 + b"\n", "nested more than 16"),
        (b"a: 1\na: 2\n", "malformed YAML"),
        (b"\xff\xfe", "not UTF-8"),
        (b"a: !!python/object/apply:os.system [id]\n", "malformed YAML"),
    ],
)
def test_hostile_yaml_is_refused(text: bytes, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse_policy(text)


def test_a_policy_that_is_a_fifo_or_huge_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(OperationalError, match="not a regular file"):
        load_policy(tmp_path / "fifo.yaml")
    (tmp_path / "huge.yaml").write_bytes(b"#" * (2 << 20))
    with pytest.raises(OperationalError, match="more than the"):
        load_policy(tmp_path / "huge.yaml")


def test_the_published_schema_is_the_models(tmp_path: Path) -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == policy_schema()


def test_the_starter_policy_validates_against_the_published_schema(
    owner: KeyPair, verifiers: list[KeyPair]
) -> None:
    import jsonschema

    text = starter_policy([owner.public_path], [v.public_path for v in verifiers])

    jsonschema.validate(yaml.safe_load(text), json.loads(SCHEMA_FILE.read_text()))


def test_the_starter_trusts_exactly_the_keys_given_and_requires_k(
    owner: KeyPair, verifiers: list[KeyPair]
) -> None:
    text = starter_policy(
        [owner.public_path], [v.public_path for v in verifiers], reproductions=1, profile="prod"
    )
    policy = parse_policy(text.encode())

    profile = policy.profiles["prod"]
    assert [k.load().keyid for k in profile.signers.keys] == [owner.keyid]
    assert [k.load().keyid for k in profile.reproducibility.verifiers] == [
        v.keyid for v in verifiers
    ]
    assert profile.reproducibility.verdicts == 1
    assert all(profile.require.model_dump().values())
    assert not profile.deployment.custom_code


def test_the_starter_needs_as_many_verifiers_as_reproductions(
    owner: KeyPair, verifiers: list[KeyPair], tmp_path: Path
) -> None:
    assert "verdicts: 0" in starter_policy([owner.public_path])
    with pytest.raises(UsageError, match="2 reproduction"):
        starter_policy([owner.public_path], reproductions=2)
    with pytest.raises(UsageError, match="at least one signer"):
        starter_policy([])
    with pytest.raises(KeyProblem):
        starter_policy([owner.private_path])
