"""The keyless signer: what it refuses, and how it fails without Fulcio and Rekor."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from keyless_data import make_statement

from bitwright.attest import INTOTO_PAYLOAD_TYPE
from bitwright.attest.signers import SignerError, SigstoreSigner
from bitwright.errors import OperationalError, UsageError

AMBIENT_CI_VARIABLES = (
    "GITHUB_ACTIONS",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_NAME",
    "BUILDKITE",
    "GITLAB_CI",
    "SIGSTORE_ID_TOKEN",
    "CIRCLECI",
)


def identity_token(*, expires_in: int = 600) -> str:
    """A well-formed OIDC token for audience 'sigstore' (no issuer would sign it: offline)."""
    now = int(time.time())
    claims = {
        "iss": "https://issuer.example",
        "sub": "builder@example.org",
        "aud": "sigstore",
        "iat": now - 10,
        "exp": now + expires_in,
    }
    return jwt.encode(claims, "k" * 64, algorithm="HS256")


def test_construction_touches_no_network_and_sign_fails_clearly_offline(
    trust_config: Path,
) -> None:
    # The trust config points every service at a closed local port: no Fulcio to reach.
    signer = SigstoreSigner(identity_token(), trust_config=trust_config)
    assert signer.kind == "sigstore"

    with pytest.raises(SignerError) as err:
        signer.sign(make_statement(), INTOTO_PAYLOAD_TYPE)

    assert isinstance(err.value, OperationalError)
    assert "keyless signing as 'builder@example.org' failed: cannot reach" in err.value.message
    assert "127.0.0.1:9" in err.value.message
    assert "network access to Fulcio and Rekor" in err.value.hint
    assert "--key" in err.value.hint


def test_public_good_signer_is_constructed_without_network() -> None:
    signer = SigstoreSigner()  # no token, no trust config: nothing is fetched yet

    with pytest.raises(UsageError, match="only in-toto Statement v1"):
        signer.sign(b'{"_type":"link","name":"train"}', INTOTO_PAYLOAD_TYPE)


def test_other_payload_type_is_refused() -> None:
    with pytest.raises(UsageError, match="keyless signing takes payloadType"):
        SigstoreSigner(identity_token()).sign(make_statement(), "application/json")


def test_expired_identity_token_is_refused(trust_config: Path) -> None:
    signer = SigstoreSigner(identity_token(expires_in=-60), trust_config=trust_config)

    with pytest.raises(SignerError, match="identity token is unusable") as err:
        signer.sign(make_statement(), INTOTO_PAYLOAD_TYPE)
    assert "fresh token" in err.value.hint


def test_without_any_identity_token_signing_says_how_to_get_one(
    trust_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcp = Path("/sys/class/dmi/id/product_name")
    if gcp.exists() and "Google" in gcp.read_text(errors="replace"):
        pytest.skip("on GCP, ambient detection would ask the metadata server")
    for name in AMBIENT_CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(SignerError, match="needs an OIDC identity token") as err:
        SigstoreSigner(trust_config=trust_config).sign(make_statement(), INTOTO_PAYLOAD_TYPE)
    assert "--identity-token" in err.value.hint


def test_missing_trust_config_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match="not found"):
        SigstoreSigner(identity_token(), trust_config=tmp_path / "absent.json")


def test_trusted_root_alone_is_not_enough_to_sign(tmp_path: Path, trust_config: Path) -> None:
    root_only = tmp_path / "trusted_root.json"
    root_only.write_text(
        json.dumps(json.loads(trust_config.read_text())["trustedRoot"]), encoding="utf-8"
    )

    with pytest.raises(UsageError, match="not a sigstore ClientTrustConfig"):
        SigstoreSigner(identity_token(), trust_config=root_only)
