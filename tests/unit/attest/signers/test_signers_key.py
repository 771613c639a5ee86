"""The key signer: sign with a private key, verify with the trusted public key."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, cast

import pytest

from bitwright.attest import KeyPair
from bitwright.attest.keys import Signer, SSlibKey
from bitwright.attest.signers import AttestationSigner, KeySigner
from bitwright.attest.trust import TrustPolicy, VerifiedPayload, verify_attestation
from bitwright.errors import KeyProblem, UsageError, VerificationFailed

PAYLOAD = b'{"_type":"https://in-toto.io/Statement/v1"}'
PTYPE = "application/vnd.in-toto+json"


def verify(envelope: dict[str, Any], *keys: Signer) -> VerifiedPayload:
    return verify_attestation(
        envelope=envelope,
        bundle=None,
        policy=TrustPolicy(keys=tuple(cast(SSlibKey, k.public_key) for k in keys)),
        expected_payload_type=PTYPE,
        source="provenance.intoto.json",
    )


def test_key_signer_roundtrip_names_the_key(owner_pair: KeyPair, owner: Signer) -> None:
    signer: AttestationSigner = KeySigner.from_file(owner_pair.private_path)

    signed = signer.sign(PAYLOAD, PTYPE)
    verified = verify_attestation(
        envelope=signed.envelope,
        bundle=None,
        policy=TrustPolicy(keys=(cast(SSlibKey, owner.public_key),)),
        expected_payload_type=PTYPE,
    )

    assert signer.kind == "key"
    assert signed.bundle is None
    assert signed.signer_id == owner_pair.keyid
    assert verified.payload == PAYLOAD
    assert verified.signer_id == owner_pair.keyid
    assert verified.method == "key"


def test_signer_id_is_the_trusted_key_that_signed(owner: Signer, stranger: Signer) -> None:
    signed = KeySigner(stranger).sign(PAYLOAD, PTYPE)

    verified = verify(signed.envelope, owner, stranger)

    assert verified.signer_id == stranger.public_key.keyid


def test_envelope_signed_by_another_key_is_rejected(owner: Signer, stranger: Signer) -> None:
    signed = KeySigner(stranger).sign(PAYLOAD, PTYPE)

    with pytest.raises(VerificationFailed, match="provenance.intoto.json: signature check failed"):
        verify(signed.envelope, owner)


def test_tampered_payload_is_rejected(owner: Signer) -> None:
    signed = KeySigner(owner).sign(PAYLOAD, PTYPE)
    signed.envelope["payload"] = base64.b64encode(PAYLOAD.replace(b"v1", b"v2")).decode()

    with pytest.raises(VerificationFailed, match="signature check failed"):
        verify(signed.envelope, owner)


def test_other_payload_type_is_rejected(owner: Signer) -> None:
    signed = KeySigner(owner).sign(PAYLOAD, "application/vnd.example+json")

    with pytest.raises(VerificationFailed, match="expected 'application/vnd.in-toto"):
        verify(signed.envelope, owner)


def test_envelope_without_trusted_keys_is_a_usage_error(owner: Signer) -> None:
    signed = KeySigner(owner).sign(PAYLOAD, PTYPE)

    with pytest.raises(UsageError, match="0 trusted key"):
        verify(signed.envelope)


def test_nothing_to_verify_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="nothing to verify"):
        verify_attestation(
            envelope=None, bundle=None, policy=TrustPolicy(), expected_payload_type=PTYPE
        )


def test_missing_key_file_is_a_key_problem(tmp_path: Path) -> None:
    with pytest.raises(KeyProblem, match="not found"):
        KeySigner.from_file(tmp_path / "absent.key")
