"""What ``verify_release`` is given: missing pieces, no trust, keyless provenance, the report."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from release_factory import Keys, Release, make_release
from tests.unit.attest.signers.sigstore_testroot import PrivateSigstore

from bitwright.attest.trust import SigstoreIdentity, TrustPolicy
from bitwright.errors import OperationalError, UsageError
from bitwright.verify import CheckResult, CheckStatus, VerifyReport, verify_release

WORKFLOW = "https://github.com/acme/model/.github/workflows/release.yml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        ("", "release directory"),
        ("root.layout", "root.layout not found"),
        ("provenance.intoto.json", "provenance.intoto.json not found"),
        ("artifacts", "artifacts not found"),
    ],
)
def test_missing_piece_is_an_operational_error_naming_it(
    release: Release, remove: str, named: str
) -> None:
    target = release.root / remove if remove else release.root
    shutil.rmtree(target) if target.is_dir() else target.unlink()

    with pytest.raises(OperationalError, match=named) as caught:
        verify_release(release.root, release.policy())

    assert str(release.root) in caught.value.message


def test_trusting_nobody_is_a_usage_error(release: Release) -> None:
    with pytest.raises(UsageError, match="verify trusts only keys you give it"):
        verify_release(release.root, TrustPolicy())


def test_details_name_files_relative_to_the_release(release: Release) -> None:
    release.layout.provenance.write_text("{")

    report = verify_release(release.root, release.policy())

    assert report.first_failure is not None
    assert report.first_failure.detail.startswith("provenance.intoto.json is not a DSSE envelope")


# --- keyless provenance (sigstore bundle), verified offline against a private trust root ------


@pytest.fixture(scope="module")
def sigstore() -> PrivateSigstore:
    return PrivateSigstore("bitwright-verify-test")


@pytest.fixture
def keyless(sigstore: PrivateSigstore, keys: Keys, tmp_path: Path) -> tuple[Release, Path]:
    def sign(payload: bytes, payload_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
        bundle = sigstore.sign_dsse(payload, payload_type, identity=WORKFLOW, issuer=ISSUER)
        return bundle["dsseEnvelope"], bundle

    release = make_release(tmp_path / "keyless", keys, sign_provenance=sign)
    config = tmp_path / "trust_config.json"
    config.write_text(json.dumps(sigstore.client_trust_config()))
    return release, config


def _keyless_policy(release: Release, config: Path, identity: str = WORKFLOW) -> TrustPolicy:
    # The layout and links are signed with the owner's key; the provenance keyless.
    return TrustPolicy(
        keys=release.policy().keys,
        identities=(SigstoreIdentity(identity=identity, issuer=ISSUER),),
        trust_config=config,
    )


def test_keyless_provenance_verifies_for_the_trusted_identity(
    keyless: tuple[Release, Path],
) -> None:
    release, config = keyless

    report = verify_release(release.root, _keyless_policy(release, config))

    assert report.ok, report.first_failure
    detail = report.check("provenance-signature")
    assert detail is not None
    assert f"provenance.sigstore.json signed by trusted sigstore {WORKFLOW}" in detail.detail


def test_keyless_provenance_of_another_identity_fails(keyless: tuple[Release, Path]) -> None:
    release, config = keyless
    policy = _keyless_policy(release, config, identity="https://github.com/evil/fork/x.yml@main")

    report = verify_release(release.root, policy)

    assert report.first_failure is not None
    assert report.first_failure.name == "provenance-signature"
    assert "keyless signature check failed" in report.first_failure.detail


def test_keyless_provenance_without_a_trusted_identity_fails_clearly(
    keyless: tuple[Release, Path],
) -> None:
    release, _ = keyless  # only the owner's key is trusted

    report = verify_release(release.root, release.policy())

    assert report.first_failure is not None
    assert report.first_failure.name == "provenance-signature"
    assert report.first_failure.detail == (
        "provenance.sigstore.json is signed keyless (sigstore) and you trust no identity "
        "to check it"
    )


# --- the report ---------------------------------------------------------------------------


def _report(*statuses: tuple[str, CheckStatus]) -> VerifyReport:
    return VerifyReport("rel", tuple(CheckResult(n, s, "d") for n, s in statuses))


MANDATORY = (
    "layout-signature",
    "layout-expiry",
    "in-toto",
    "provenance-signature",
    "subjects",
    "byproducts",
    "dependencies",
    "release-statement",
    "coverage",
    "aibom",
    "model-signature",
)


def test_report_is_ok_only_when_every_required_check_passed() -> None:
    passed = [(n, CheckStatus.PASSED) for n in MANDATORY]
    binding_skipped = ("binding", CheckStatus.SKIPPED)
    files_skipped = [("aibom", CheckStatus.SKIPPED), ("model-signature", CheckStatus.SKIPPED)]

    assert _report(*passed, binding_skipped).ok
    assert not _report(*passed[:-2], *files_skipped).ok
    relaxed = dataclasses.replace(_report(*passed[:-2], *files_skipped), required=MANDATORY[:-2])
    assert relaxed.ok
    assert not _report(*passed[:-1], ("model-signature", CheckStatus.FAILED)).ok
    assert not _report(*passed, ("binding", CheckStatus.FAILED)).ok
    assert not _report().ok


def test_report_json_lists_checks_in_order_with_the_first_failure() -> None:
    report = _report(
        ("layout-signature", CheckStatus.PASSED),
        ("in-toto", CheckStatus.FAILED),
        ("subjects", CheckStatus.FAILED),
    )

    data = report.to_json()

    assert data["ok"] is False
    assert data["first_failure"] == "in-toto"
    assert [c["status"] for c in data["checks"]] == ["passed", "failed", "failed"]
    assert json.loads(json.dumps(data)) == data


def test_release_checks_its_own_keyless_provenance_and_everything_else(
    keyless: tuple[Release, Path],
) -> None:
    from bitwright.verify import check_candidate

    release, _ = keyless
    owner = release.policy().keys[0]

    check_candidate(release.root, owner, release.statement)  # trusted as the build's own
    with pytest.raises(OperationalError, match=r"would not verify \(provenance-signature: "):
        check_candidate(release.root, owner, None)  # no identity to check the bundle with
    release.layout.readme.write_text("# altered\n")
    with pytest.raises(OperationalError, match=r"would not verify \(coverage: README.md"):
        check_candidate(release.root, owner, release.statement)
