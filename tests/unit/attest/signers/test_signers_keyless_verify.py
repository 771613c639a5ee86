"""Keyless verification, offline, by the real sigstore Verifier against a private trust root."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from keyless_data import GITHUB_ISSUER, WORKFLOW, make_statement
from sigstore_testroot import PrivateSigstore

from bitwright.attest import INTOTO_PAYLOAD_TYPE
from bitwright.attest.trust import SigstoreIdentity, TrustPolicy, verify_attestation
from bitwright.errors import UsageError, VerificationFailed

Bundle = dict[str, Any]


def policy_for(trust_config: Path, *identities: tuple[str, str]) -> TrustPolicy:
    pairs = identities or ((WORKFLOW, GITHUB_ISSUER),)
    return TrustPolicy(
        identities=tuple(SigstoreIdentity(identity=i, issuer=s) for i, s in pairs),
        trust_config=trust_config,
    )


def verify(bundle: Bundle, policy: TrustPolicy, **kwargs: Any) -> Any:
    return verify_attestation(
        envelope=kwargs.pop("envelope", None),
        bundle=bundle,
        policy=policy,
        expected_payload_type=kwargs.pop("expected_payload_type", INTOTO_PAYLOAD_TYPE),
        source="provenance.sigstore.json",
    )


def test_honest_bundle_verifies_offline_for_the_trusted_identity(
    keyless_bundle: Bundle, trust_config: Path, statement: bytes
) -> None:
    verified = verify(keyless_bundle, policy_for(trust_config))

    assert verified.payload == statement
    assert verified.payload_type == INTOTO_PAYLOAD_TYPE
    assert verified.signer_id == WORKFLOW
    assert verified.method == "sigstore"


def test_a_bare_trusted_root_json_serves_as_trust_config(
    instance: PrivateSigstore, keyless_bundle: Bundle, tmp_path: Path, statement: bytes
) -> None:
    root = tmp_path / "trusted_root.json"
    root.write_text(json.dumps(instance.trusted_root()), encoding="utf-8")

    assert verify(keyless_bundle, policy_for(root)).payload == statement


def test_signer_id_names_the_trusted_identity_that_matched(
    instance: PrivateSigstore, trust_config: Path
) -> None:
    bundle = instance.sign_dsse(
        make_statement(),
        INTOTO_PAYLOAD_TYPE,
        identity="alice@example.org",
        issuer="https://accounts.google.com",
    )
    policy = policy_for(
        trust_config,
        (WORKFLOW, GITHUB_ISSUER),
        ("alice@example.org", "https://accounts.google.com"),
    )

    assert verify(bundle, policy).signer_id == "alice@example.org"


def test_wrong_identity_is_rejected(keyless_bundle: Bundle, trust_config: Path) -> None:
    other = WORKFLOW.replace("acme/model", "acme/other")
    with pytest.raises(VerificationFailed) as err:
        verify(keyless_bundle, policy_for(trust_config, (other, GITHUB_ISSUER)))

    message = err.value.message
    assert message.startswith("provenance.sigstore.json: keyless signature check failed")
    assert WORKFLOW in message  # who signed
    assert "not a trusted identity" in message
    assert other in message  # whom we trust


def test_right_identity_from_the_wrong_issuer_is_rejected(
    keyless_bundle: Bundle, trust_config: Path
) -> None:
    with pytest.raises(VerificationFailed, match="not a trusted identity"):
        verify(keyless_bundle, policy_for(trust_config, (WORKFLOW, "https://evil.example")))


def test_tampered_payload_is_rejected(keyless_bundle: Bundle, trust_config: Path) -> None:
    bundle = copy.deepcopy(keyless_bundle)
    evil = make_statement(name="backdoored.safetensors")
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(evil).decode()

    with pytest.raises(VerificationFailed, match="keyless signature check failed"):
        verify(bundle, policy_for(trust_config))


def test_bundle_from_an_untrusted_ca_is_rejected(
    rogue_instance: PrivateSigstore, trust_config: Path
) -> None:
    # Same identity and issuer, but certificate, SCT and log entry come from another instance.
    bundle = rogue_instance.sign_dsse(
        make_statement(), INTOTO_PAYLOAD_TYPE, identity=WORKFLOW, issuer=GITHUB_ISSUER
    )

    with pytest.raises(VerificationFailed, match="certificate chain"):
        verify(bundle, policy_for(trust_config))


def _swap_log_entry(bundle: Bundle, rogue: Bundle) -> None:
    bundle["verificationMaterial"]["tlogEntries"] = rogue["verificationMaterial"]["tlogEntries"]


def _shift_integrated_time(bundle: Bundle, _: Bundle) -> None:
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) - 30)


def _swap_certificate(bundle: Bundle, rogue: Bundle) -> None:
    bundle["verificationMaterial"]["certificate"] = rogue["verificationMaterial"]["certificate"]


@pytest.mark.parametrize(
    "tamper",
    [_swap_log_entry, _shift_integrated_time, _swap_certificate],
    ids=["log-entry-from-untrusted-log", "integrated-time-moved", "certificate-swapped"],
)
def test_bundle_with_forged_parts_is_rejected(
    tamper: Callable[[Bundle, Bundle], None],
    keyless_bundle: Bundle,
    rogue_instance: PrivateSigstore,
    trust_config: Path,
    statement: bytes,
) -> None:
    rogue = rogue_instance.sign_dsse(
        statement, INTOTO_PAYLOAD_TYPE, identity=WORKFLOW, issuer=GITHUB_ISSUER
    )
    bundle = copy.deepcopy(keyless_bundle)
    tamper(bundle, rogue)

    with pytest.raises(VerificationFailed, match="keyless signature check failed"):
        verify(bundle, policy_for(trust_config))


def test_other_payload_type_than_expected_is_rejected(
    keyless_bundle: Bundle, trust_config: Path
) -> None:
    with pytest.raises(VerificationFailed, match="expected 'application/vnd.example'"):
        verify(
            keyless_bundle,
            policy_for(trust_config),
            expected_payload_type="application/vnd.example",
        )


def test_envelope_beside_the_bundle_must_be_the_bundles(
    keyless_bundle: Bundle, trust_config: Path, statement: bytes
) -> None:
    same = copy.deepcopy(keyless_bundle["dsseEnvelope"])
    assert verify(keyless_bundle, policy_for(trust_config), envelope=same).payload == statement

    other = copy.deepcopy(same)
    other["payload"] = base64.b64encode(make_statement(name="other")).decode()
    with pytest.raises(VerificationFailed, match="differs from the one in its sigstore bundle"):
        verify(keyless_bundle, policy_for(trust_config), envelope=other)


def test_malformed_bundle_is_rejected(keyless_bundle: Bundle, trust_config: Path) -> None:
    bundle = copy.deepcopy(keyless_bundle)
    del bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]

    with pytest.raises(VerificationFailed, match="not a valid sigstore bundle"):
        verify(bundle, policy_for(trust_config))


def test_keyless_bundle_without_trusted_identities_is_a_usage_error(
    keyless_bundle: Bundle, trust_config: Path
) -> None:
    with pytest.raises(UsageError, match="no trusted identity"):
        verify(keyless_bundle, TrustPolicy(trust_config=trust_config))
