"""The VSA a rebuild signs: strict model, canonical roundtrip, signature by the verifier's key."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from bitwright.attest import generate_keypair, load_public_key, read_envelope
from bitwright.attest.keys import KeyPair
from bitwright.attest.signers import KeySigner
from bitwright.attest.trust import TrustPolicy
from bitwright.attest.vsa import (
    VsaStatement,
    build_vsa,
    parse_vsa,
    read_vsa,
    vsa_bytes,
    write_vsa,
)
from bitwright.errors import OperationalError, VerificationFailed
from bitwright.rebuild.compare import Tolerance, Verdict
from bitwright.rebuild.publish import policy_document, verified_levels

SHA = "ab" * 32


def make_vsa(**overrides: Any) -> VsaStatement:
    args: dict[str, Any] = {
        "subjects": {"release/model.safetensors": SHA},
        "resource_uri": "git+https://example.org/repo@" + "1" * 40,
        "policy_uri": "https://bitwright.dev/policies/rebuild-compare/v1",
        "policy_sha256": SHA,
        "input_attestations": [("provenance.intoto.json", "file:///r/provenance.intoto.json", SHA)],
        "passed": True,
        "verified_levels": ["BITWRIGHT_REPRODUCED_BITWISE"],
        "time_verified": "2026-01-01T00:00:00Z",
    }
    args.update(overrides)
    return build_vsa(**args)


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("vsa-keys"), name="verifier")


def test_vsa_has_the_slsa_v1_shape() -> None:
    data = make_vsa().to_json()
    assert data["predicateType"] == "https://slsa.dev/verification_summary/v1"
    predicate = data["predicate"]
    assert predicate["verificationResult"] == "PASSED"
    assert predicate["slsaVersion"] == "1.0"
    assert predicate["verifier"]["id"] == "https://bitwright.dev/verifiers/rebuild/v1"
    assert predicate["policy"]["digest"] == {"sha256": SHA}
    assert data["subject"] == [{"name": "release/model.safetensors", "digest": {"sha256": SHA}}]


def test_canonical_bytes_roundtrip() -> None:
    vsa = make_vsa()
    assert parse_vsa(vsa_bytes(vsa)) == vsa
    assert vsa_bytes(parse_vsa(vsa_bytes(vsa))) == vsa_bytes(vsa)


def test_unknown_fields_are_refused() -> None:
    data = make_vsa().to_json()
    data["predicate"]["verdictOfMyOwn"] = "trust me"
    with pytest.raises(VerificationFailed, match="malformed VSA"):
        parse_vsa(json.dumps(data).encode())


def test_levels_must_not_borrow_the_slsa_prefix() -> None:
    with pytest.raises(OperationalError, match="reserved"):
        make_vsa(verified_levels=["SLSA_REPRODUCED"])


def test_signed_vsa_verifies_only_with_the_verifier_key(verifier: KeyPair, tmp_path: Path) -> None:
    path = write_vsa(make_vsa(), KeySigner.from_file(verifier.private_path), tmp_path / "v.json")
    assert read_vsa(path, [load_public_key(verifier.public_path)]).passed
    other = generate_keypair(tmp_path / "other", name="other")
    with pytest.raises(VerificationFailed, match="signature"):
        read_vsa(path, [load_public_key(other.public_path)])
    envelope = read_envelope(path)
    tampered = make_vsa(passed=False, verified_levels=[]).to_json()
    envelope["payload"] = base64.b64encode(json.dumps(tampered).encode()).decode()
    path.write_text(json.dumps(envelope))
    with pytest.raises(VerificationFailed):
        read_vsa(path, [load_public_key(verifier.public_path)])


def test_levels_follow_the_verdict_and_the_policy_digest_covers_the_settings() -> None:
    assert verified_levels(Verdict.REPRODUCED, stage=None) == ["BITWRIGHT_REPRODUCED_BITWISE"]
    assert verified_levels(Verdict.REPRODUCED_WITHIN_TOLERANCE, stage="train") == [
        "BITWRIGHT_STAGE_REPRODUCED_WITHIN_TOLERANCE"
    ]
    assert verified_levels(Verdict.DIFFERENT, stage=None) == []
    exact = policy_document(TrustPolicy(), {"train": Tolerance()}, strict_env=False, stage=None)
    loose = policy_document(
        TrustPolicy(), {"train": Tolerance(1e-3, 0.0)}, strict_env=False, stage=None
    )
    assert exact != loose
