"""Trust files: whom a verifier trusts, read from TOML or JSON, paths relative to the file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from keyless_data import GITHUB_ISSUER, WORKFLOW
from sigstore_testroot import PrivateSigstore

from bitwright.attest import INTOTO_PAYLOAD_TYPE, KeyPair
from bitwright.attest.trust import SigstoreIdentity, load_trust_file, verify_attestation
from bitwright.errors import KeyProblem, OperationalError, UsageError, VerificationFailed


@pytest.fixture
def trust_dir(tmp_path: Path, owner_pair: KeyPair, trust_config: Path) -> Path:
    (tmp_path / "keys").mkdir()
    shutil.copy(owner_pair.public_path, tmp_path / "keys" / "owner.pub")
    (tmp_path / "sigstore").mkdir()
    shutil.copy(trust_config, tmp_path / "sigstore" / "trust_config.json")
    return tmp_path


TOML = f"""
keys = ["keys/owner.pub"]
trust_config = "sigstore/trust_config.json"

[[identities]]
identity = "{WORKFLOW}"
issuer = "{GITHUB_ISSUER}"
"""


def test_toml_trust_file_verifies_a_keyless_bundle_offline(
    trust_dir: Path, owner_pair: KeyPair, keyless_bundle: dict[str, Any], statement: bytes
) -> None:
    path = trust_dir / "trust.toml"
    path.write_text(TOML, encoding="utf-8")

    policy = load_trust_file(path)
    verified = verify_attestation(
        envelope=None,
        bundle=keyless_bundle,
        policy=policy,
        expected_payload_type=INTOTO_PAYLOAD_TYPE,
    )

    assert [k.keyid for k in policy.keys] == [owner_pair.keyid]
    assert policy.identities == (SigstoreIdentity(WORKFLOW, GITHUB_ISSUER),)
    assert policy.trust_config == trust_dir / "sigstore" / "trust_config.json"
    assert verified.payload == statement


def test_json_trust_file_means_the_same(trust_dir: Path) -> None:
    toml_path = trust_dir / "trust.toml"
    toml_path.write_text(TOML, encoding="utf-8")
    json_path = trust_dir / "trust.json"
    json_path.write_text(
        json.dumps(
            {
                "keys": ["keys/owner.pub"],
                "trust_config": "sigstore/trust_config.json",
                "identities": [{"identity": WORKFLOW, "issuer": GITHUB_ISSUER}],
            }
        ),
        encoding="utf-8",
    )

    assert load_trust_file(json_path) == load_trust_file(toml_path)


def test_trust_file_without_trust_config_means_public_good(trust_dir: Path) -> None:
    path = trust_dir / "trust.toml"
    path.write_text(f'[[identities]]\nidentity = "{WORKFLOW}"\nissuer = "{GITHUB_ISSUER}"\n')

    assert load_trust_file(path).trust_config is None


def test_a_bundle_is_not_trusted_by_a_trust_file_listing_only_keys(
    trust_dir: Path, keyless_bundle: dict[str, Any]
) -> None:
    path = trust_dir / "trust.toml"
    path.write_text('keys = ["keys/owner.pub"]\n', encoding="utf-8")

    with pytest.raises(UsageError, match="no trusted identity"):
        verify_attestation(
            envelope=None,
            bundle=keyless_bundle,
            policy=load_trust_file(path),
            expected_payload_type=INTOTO_PAYLOAD_TYPE,
        )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('keys = ["keys/owner.pub"]\nkey = "typo"\n', "unknown field"),
        ("", "trusts nobody"),
        ('keys = "keys/owner.pub"\n', "keys must be a list"),
        ('[[identities]]\nidentity = "a@b.c"\n', r"identities\[0\] must have"),
        ('keys = ["keys/owner.pub"]\ntrust_config = "keys/owner.pub"\n', "not valid JSON"),
        ("keys = [\n", "not valid TOML"),
    ],
    ids=[
        "unknown-field",
        "empty",
        "keys-not-list",
        "identity-without-issuer",
        "bad-config",
        "syntax",
    ],
)
def test_malformed_trust_file_is_a_usage_error(trust_dir: Path, text: str, match: str) -> None:
    path = trust_dir / "trust.toml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(UsageError, match=match):
        load_trust_file(path)


def test_missing_key_or_trust_file_is_operational(trust_dir: Path) -> None:
    path = trust_dir / "trust.toml"
    path.write_text('keys = ["keys/absent.pub"]\n', encoding="utf-8")

    with pytest.raises(KeyProblem, match="absent.pub not found"):
        load_trust_file(path)
    with pytest.raises(OperationalError, match="not found"):
        load_trust_file(trust_dir / "nowhere.toml")


def test_trust_config_from_another_instance_rejects_the_bundle(
    trust_dir: Path,
    keyless_bundle: dict[str, Any],
    rogue_instance: PrivateSigstore,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    rogue_root = tmp_path_factory.mktemp("rogue") / "trusted_root.json"
    rogue_root.write_text(json.dumps(rogue_instance.trusted_root()))
    path = trust_dir / "trust.json"
    path.write_text(
        json.dumps(
            {
                "trust_config": str(rogue_root),  # absolute paths stay as they are
                "identities": [{"identity": WORKFLOW, "issuer": GITHUB_ISSUER}],
            }
        )
    )

    with pytest.raises(VerificationFailed, match="does not chain to a trusted CA"):
        verify_attestation(
            envelope=None,
            bundle=keyless_bundle,
            policy=load_trust_file(path),
            expected_payload_type=INTOTO_PAYLOAD_TYPE,
        )


def test_a_hostile_trust_file_is_refused_in_one_line(trust_dir: Path) -> None:
    """A FIFO cannot hang the reader; a huge or deeply nested file is refused, not parsed."""
    fifo = trust_dir / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(OperationalError, match="not a regular file"):
        load_trust_file(fifo)
    huge = trust_dir / "huge.toml"
    huge.write_bytes(b"#" * (2 << 20))
    with pytest.raises(OperationalError, match="more than the 1048576 accepted"):
        load_trust_file(huge)
    deep = trust_dir / "deep.json"
    deep.write_text('{"keys": ' + "[" * 5000 + "]" * 5000 + "}", encoding="utf-8")
    with pytest.raises(UsageError, match="nested"):
        load_trust_file(deep)
    duplicate = trust_dir / "twice.json"
    duplicate.write_text('{"keys": [], "keys": ["keys/owner.pub"]}', encoding="utf-8")
    with pytest.raises(UsageError, match="duplicate"):
        load_trust_file(duplicate)


def test_a_sigstore_trust_config_that_is_a_fifo_cannot_hang_the_reader(trust_dir: Path) -> None:
    os.mkfifo(trust_dir / "root.fifo")
    path = trust_dir / "trust.toml"
    path.write_text('keys = ["keys/owner.pub"]\ntrust_config = "root.fifo"\n', encoding="utf-8")
    with pytest.raises(OperationalError, match="not a regular file"):
        load_trust_file(path)
