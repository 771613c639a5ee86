from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from in_toto.models._signer import load_public_key_from_file
from in_toto.models.metadata import Metadata

from bitwright.attest import (
    INTOTO_PAYLOAD_TYPE,
    KeyPair,
    canonical_json,
    read_envelope,
    sign_envelope,
    verify_envelope,
    write_envelope,
)
from bitwright.attest.keys import Signer
from bitwright.errors import OperationalError, UsageError, VerificationFailed

PAYLOAD = b'{"_type":"link","name":"train"}'
PTYPE = "application/vnd.example+json"


def test_roundtrip_returns_the_signed_payload(owner: Signer) -> None:
    envelope = sign_envelope(PAYLOAD, PTYPE, owner)

    assert envelope["payloadType"] == PTYPE
    assert [s["keyid"] for s in envelope["signatures"]] == [owner.public_key.keyid]
    assert verify_envelope(envelope, [owner.public_key]) == PAYLOAD
    assert verify_envelope(envelope, [owner.public_key], payload_type=PTYPE) == PAYLOAD


def test_tampered_payload_is_rejected(owner: Signer) -> None:
    envelope = sign_envelope(PAYLOAD, PTYPE, owner)
    envelope["payload"] = base64.b64encode(PAYLOAD.replace(b"train", b"evil!")).decode()

    with pytest.raises(VerificationFailed, match="signature check failed"):
        verify_envelope(envelope, [owner.public_key], source="train.link")


def test_signature_by_an_untrusted_key_is_rejected(owner: Signer, stranger: Signer) -> None:
    envelope = sign_envelope(PAYLOAD, PTYPE, stranger)

    with pytest.raises(VerificationFailed) as err:
        verify_envelope(envelope, [owner.public_key], source="train.link")

    message = err.value.message
    assert message.startswith("train.link: signature check failed")
    assert owner.public_key.keyid[:8] in message  # trusted
    assert stranger.public_key.keyid[:8] in message  # signed by


def test_payload_type_is_covered_by_the_signature(owner: Signer) -> None:
    envelope = sign_envelope(PAYLOAD, PTYPE, owner)
    envelope["payloadType"] = INTOTO_PAYLOAD_TYPE

    with pytest.raises(VerificationFailed, match="signature check failed"):
        verify_envelope(envelope, [owner.public_key])


def test_unexpected_payload_type_is_rejected(owner: Signer) -> None:
    envelope = sign_envelope(PAYLOAD, PTYPE, owner)

    with pytest.raises(VerificationFailed, match="expected 'application/vnd.in-toto"):
        verify_envelope(envelope, [owner.public_key], payload_type=INTOTO_PAYLOAD_TYPE)


def test_threshold_counts_distinct_trusted_signers(owner: Signer, stranger: Signer) -> None:
    keys = [owner.public_key, stranger.public_key]
    single = sign_envelope(PAYLOAD, PTYPE, owner)
    with pytest.raises(VerificationFailed, match="needs 2 valid signature"):
        verify_envelope(single, keys, threshold=2)

    both = dict(single)
    both["signatures"] = (
        single["signatures"] + sign_envelope(PAYLOAD, PTYPE, stranger)["signatures"]
    )
    assert verify_envelope(both, keys, threshold=2) == PAYLOAD


def test_verifying_without_keys_is_a_usage_error(owner: Signer) -> None:
    with pytest.raises(UsageError, match="0 trusted key"):
        verify_envelope(sign_envelope(PAYLOAD, PTYPE, owner), [])


def test_written_envelope_is_canonical_and_reads_back(tmp_path: Path, owner: Signer) -> None:
    envelope = sign_envelope(PAYLOAD, PTYPE, owner)
    path = write_envelope(envelope, tmp_path / "sub" / "x.json")

    assert path.read_bytes() == canonical_json(envelope)
    assert read_envelope(path) == envelope
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temp file left


def test_in_toto_reads_and_verifies_our_envelope(
    tmp_path: Path, owner: Signer, owner_pair: KeyPair
) -> None:
    payload = canonical_json({"_type": "link", "name": "train", "materials": {}, "products": {}})
    path = write_envelope(sign_envelope(payload, INTOTO_PAYLOAD_TYPE, owner), tmp_path / "l.link")

    metadata = Metadata.load(str(path))
    metadata.verify_signature(load_public_key_from_file(str(owner_pair.public_path)))
    assert metadata.get_payload().name == "train"


def test_truncated_file_is_one_clear_line(tmp_path: Path, owner: Signer) -> None:
    path = write_envelope(sign_envelope(PAYLOAD, PTYPE, owner), tmp_path / "x.link")
    path.write_bytes(path.read_bytes()[:-40])

    with pytest.raises(VerificationFailed) as err:
        read_envelope(path)

    assert f"{path} is not a DSSE envelope: invalid JSON" in err.value.message
    assert "\n" not in err.value.diagnostics()


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        '{"payload": "e30=", "payloadType": "x"}',
        '{"payload": "e30=", "payloadType": "x", "signatures": []}',
        '{"payload": "%%%", "payloadType": "x", "signatures": [{"keyid": "ab", "sig": "AA=="}]}',
        '{"payload": "e30=", "payloadType": 3, "signatures": [{"keyid": "ab", "sig": "AA=="}]}',
    ],
)
def test_json_that_is_not_an_envelope_is_rejected(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)

    with pytest.raises(VerificationFailed) as err:
        read_envelope(path)

    assert str(path) in err.value.message
    assert "\n" not in err.value.diagnostics()


def test_missing_envelope_is_operational(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match="not found"):
        read_envelope(tmp_path / "missing.link")


def test_verify_does_not_modify_the_callers_envelope(owner: Signer) -> None:
    envelope = sign_envelope(PAYLOAD, PTYPE, owner)
    before = json.dumps(envelope, sort_keys=True)
    verify_envelope(envelope, [owner.public_key])
    assert json.dumps(envelope, sort_keys=True) == before
