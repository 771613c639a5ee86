"""``verify_release`` on an honest release and on releases tampered with in every way that matters.

Each tamper must fail (not raise), and the check that names the problem must be the one a user
reads first, with the file it concerns.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from release_factory import (
    Keys,
    Release,
    edit_payload,
    make_release,
    payload_of,
    resign_provenance,
    seal,
)

from bitwright.attest import canonical_json, load_public_key, sign_envelope
from bitwright.attest.trust import TrustPolicy
from bitwright.verify import CHECK_NAMES, CheckStatus, VerifyReport, verify_release

IN_TOTO_VERIFY = Path(sys.executable).parent / "in-toto-verify"
MODEL = "release/model.safetensors"


def _verify(release: Release, **kwargs: Any) -> VerifyReport:
    return verify_release(release.root, release.policy(), **kwargs)


def _status(report: VerifyReport) -> dict[str, CheckStatus]:
    return {c.name: c.status for c in report.checks}


def _detail(report: VerifyReport, name: str) -> str:
    check = report.check(name)
    assert check is not None
    return check.detail


def test_honest_release_passes_every_check(release: Release) -> None:
    report = _verify(release)

    assert report.ok, report.first_failure
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    statuses = _status(report)
    assert statuses.pop("binding") is CheckStatus.SKIPPED  # nothing expected
    assert set(statuses.values()) == {CheckStatus.PASSED}
    assert "3 step(s) verified by in-toto" in _detail(report, "in-toto")


def test_reference_in_toto_verify_accepts_the_release(release: Release) -> None:
    (owner_pub,) = release.layout.keys.glob("owner.*.pub")
    done = subprocess.run(
        [str(IN_TOTO_VERIFY), "--layout", "root.layout", "--verification-keys", str(owner_pub)]
        + ["--link-dir", "links"],
        cwd=release.root,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr


# --- tampers: (what is done, the first failing check, what its detail names) -----------------


def _flip_artifact_byte(release: Release, _: Release) -> None:
    path = release.layout.artifact(MODEL)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))


def _add_unlisted_artifact(release: Release, _: Release) -> None:
    (release.layout.artifacts / "release" / "backdoor.py").write_text("import os\n")


def _remove_link(release: Release, _: Release) -> None:
    release.link("train").unlink()


def _swap_link_from_other_build(release: Release, other: Release) -> None:
    shutil.copyfile(other.link("train"), release.link("train"))


def _resign_provenance_with_stranger(release: Release, _: Release) -> None:
    resign_provenance(release, release.keys.stranger_signer())


def _resign_provenance_with_stranger_planted_in_keys(release: Release, _: Release) -> None:
    resign_provenance(release, release.keys.stranger_signer())
    for pub in release.layout.keys.glob("*.pub"):
        pub.unlink()
    shutil.copyfile(release.keys.stranger.public_path, release.layout.keys / "owner.pub")


def _edit_subject_without_resigning(release: Release, _: Release) -> None:
    def edit(statement: dict[str, Any]) -> None:
        statement["subject"][0]["digest"]["sha256"] = "ab" * 32

    edit_payload(release.layout.provenance, edit)


def _layout_signed_by_stranger(release: Release, _: Release) -> None:
    layout = payload_of(release.layout.layout)
    envelope = sign_envelope(
        canonical_json(layout), "application/vnd.in-toto+json", release.keys.stranger_signer()
    )
    release.layout.layout.write_bytes(canonical_json(envelope))


def _layout_replaced_by_another_owner_layout(release: Release, other: Release) -> None:
    shutil.copyfile(other.layout.layout, release.layout.layout)


def _unknown_predicate_type(release: Release, _: Release) -> None:
    def edit(statement: dict[str, Any]) -> None:
        statement["predicateType"] = "https://example.org/attestation/v9"

    resign_provenance(release, release.keys.owner_signer(), edit)


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _truncated_provenance(release: Release, _: Release) -> None:
    _cut(release.layout.provenance)


def _truncated_layout(release: Release, _: Release) -> None:
    _cut(release.layout.layout)


def _truncated_link(release: Release, _: Release) -> None:
    _cut(release.link("package"))


@pytest.mark.parametrize(
    ("tamper", "check", "named"),
    [
        (_flip_artifact_byte, "subjects", f"artifacts/{MODEL} has sha256"),
        (_add_unlisted_artifact, "subjects", "artifacts/release/backdoor.py is not a subject"),
        (_remove_link, "in-toto", "Step 'train' requires '1' link metadata file(s), found '0'"),
        (_swap_link_from_other_build, "in-toto", "RuleVerificationError"),
        (_resign_provenance_with_stranger, "provenance-signature", "signature check failed"),
        (
            _resign_provenance_with_stranger_planted_in_keys,
            "provenance-signature",
            "signature check failed",
        ),
        (_edit_subject_without_resigning, "provenance-signature", "signature check failed"),
        (_layout_signed_by_stranger, "layout-signature", "root.layout: signature check failed"),
        (
            _layout_replaced_by_another_owner_layout,
            "byproducts",
            "root.layout is not the layout the provenance records",
        ),
        (_unknown_predicate_type, "provenance-signature", "unknown predicate type"),
        (_truncated_provenance, "provenance-signature", "provenance.intoto.json is not a DSSE"),
        (_truncated_layout, "layout-signature", "root.layout is not a DSSE envelope"),
        (_truncated_link, "in-toto", "links/package."),
    ],
    ids=lambda v: v.__name__.lstrip("_") if callable(v) else None,
)
def test_tampered_release_fails_at_the_check_that_names_it(
    release: Release,
    other_build: Release,
    tamper: Callable[[Release, Release], None],
    check: str,
    named: str,
) -> None:
    tamper(release, other_build)

    report = _verify(release)

    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.name == check, report.checks
    assert named in report.first_failure.detail


def test_swapped_link_also_breaks_byproducts_and_dependencies(
    release: Release, other_build: Release
) -> None:
    _swap_link_from_other_build(release, other_build)

    report = _verify(release)

    assert _status(report)["byproducts"] is CheckStatus.FAILED
    assert "links/train." in _detail(report, "byproducts")
    assert _status(report)["dependencies"] is CheckStatus.FAILED
    assert "params.yaml" in _detail(report, "dependencies")


def test_whole_chain_of_another_build_passes_in_toto_but_not_the_provenance(
    release: Release, other_build: Release
) -> None:
    # Every link is validly signed by the owner and the chain is consistent in itself:
    # only the provenance's byproducts and dependencies tie it to this release.
    shutil.rmtree(release.layout.links)
    shutil.copytree(other_build.layout.links, release.layout.links)

    report = _verify(release)

    assert _status(report)["in-toto"] is CheckStatus.PASSED
    assert report.first_failure is not None
    assert report.first_failure.name == "byproducts"
    assert _status(report)["dependencies"] is CheckStatus.FAILED


def test_release_forged_with_the_attackers_keys_everywhere_fails(
    release: Release, keys: Keys, tmp_path: Path
) -> None:
    swapped = Keys(owner=keys.stranger, stranger=keys.owner)
    forged = make_release(tmp_path / "forged", swapped)  # keys/ holds the attacker's key

    report = verify_release(forged.root, release.policy())

    statuses = _status(report)
    assert statuses["layout-signature"] is CheckStatus.FAILED
    assert statuses["provenance-signature"] is CheckStatus.FAILED
    assert statuses["model-signature"] is CheckStatus.FAILED
    assert not report.ok


def test_expired_layout_fails_layout_expiry(release: Release) -> None:
    report = _verify(release, now=datetime.now(UTC) + timedelta(days=400))

    assert report.first_failure is not None
    assert report.first_failure.name == "layout-expiry"
    assert "expired on" in report.first_failure.detail


def test_layout_reissued_expired_by_the_owner_fails_expiry_and_in_toto(release: Release) -> None:
    layout = payload_of(release.layout.layout)
    layout["expires"] = "2020-01-01T00:00:00Z"
    envelope = sign_envelope(
        canonical_json(layout), "application/vnd.in-toto+json", release.keys.owner_signer()
    )
    release.layout.layout.write_bytes(canonical_json(envelope))

    report = _verify(release)

    assert report.first_failure is not None
    assert report.first_failure.name == "layout-expiry"
    assert "LayoutExpiredError" in _detail(report, "in-toto")


def test_layout_with_inspections_is_refused_without_running_them(
    release: Release, tmp_path: Path
) -> None:
    marker = tmp_path / "inspection-ran"
    layout = payload_of(release.layout.layout)
    layout["inspect"] = [
        {
            "_type": "inspection",
            "name": "probe",
            "run": ["touch", str(marker)],
            "expected_materials": [],
            "expected_products": [],
        }
    ]
    envelope = sign_envelope(
        canonical_json(layout), "application/vnd.in-toto+json", release.keys.owner_signer()
    )
    release.layout.layout.write_bytes(canonical_json(envelope))

    report = _verify(release)

    assert _status(report)["in-toto"] is CheckStatus.FAILED
    assert "inspection" in _detail(report, "in-toto")
    assert not marker.exists()


def test_owner_signed_provenance_with_other_data_fails_dependencies(release: Release) -> None:
    def edit(statement: dict[str, Any]) -> None:
        for dep in statement["predicate"]["buildDefinition"]["resolvedDependencies"]:
            if dep["name"] == "data/raw":
                dep["digest"]["sha256"] = "cd" * 32

    resign_provenance(release, release.keys.owner_signer(), edit)

    report = _verify(release)

    assert report.first_failure is not None
    assert report.first_failure.name == "dependencies"
    assert "data snapshot data/raw" in report.first_failure.detail


def test_owner_signed_model_the_chain_never_produced_fails_dependencies(release: Release) -> None:
    # The owner's key signs a provenance (and the artifact matches it), but no stage made it.
    forged = b"weights the pipeline never produced"
    release.layout.artifact(MODEL).write_bytes(forged)
    digest = hashlib.sha256(forged).hexdigest()

    def edit(statement: dict[str, Any]) -> None:
        for subject in statement["subject"]:
            if subject["name"] == MODEL:
                subject["digest"]["sha256"] = digest

    resign_provenance(release, release.keys.owner_signer(), edit)

    report = _verify(release)

    assert _status(report)["subjects"] is CheckStatus.PASSED
    assert report.first_failure is not None
    assert report.first_failure.name == "dependencies"
    assert f"subject {MODEL} differs from what stage package produced" in (
        report.first_failure.detail
    )


@pytest.mark.parametrize("resealed", [False, True], ids=["as-altered", "resealed-by-owner"])
def test_aibom_claiming_other_digests_fails(release: Release, resealed: bool) -> None:
    bom = json.loads(release.layout.aibom.read_text())
    (model,) = [c for c in bom["components"] if c["type"] == "machine-learning-model"]
    for item in model["components"]:
        item["hashes"][0]["content"] = "ef" * 32
    release.layout.aibom.write_text(json.dumps(bom))
    if resealed:
        seal(release)  # even the owner's own signature does not make a wrong BOM right

    report = _verify(release)

    assert report.first_failure is not None
    assert report.first_failure.name == ("aibom" if resealed else "coverage")
    assert _status(report)["aibom"] is CheckStatus.FAILED
    assert not report.ok


@pytest.mark.parametrize("name", ["aibom.cdx.json", "model.sig"])
def test_a_missing_aibom_or_model_sig_fails_unless_allowed(release: Release, name: str) -> None:
    (release.root / name).unlink()
    seal(release)

    strict = _verify(release)
    relaxed = _verify(release, allow_missing=True)

    assert strict.first_failure is not None
    assert f"the release has no {name}" in strict.first_failure.detail
    assert not strict.ok
    skipped = [c for c in relaxed.checks if c.status is CheckStatus.SKIPPED and c.name != "binding"]
    assert [c.detail for c in skipped] == [
        f"the release has no {name} (--allow-missing accepts a release without it)"
    ]
    assert relaxed.ok
    assert any("accepted with --allow-missing" in w for w in relaxed.warnings)


def test_a_file_deleted_after_release_fails_coverage(release: Release) -> None:
    release.layout.model_signature.unlink()

    report = _verify(release, allow_missing=True)

    assert report.first_failure is not None
    assert report.first_failure.name == "coverage"
    assert "model.sig is listed by release.intoto.json but missing" in (report.first_failure.detail)


def test_a_trusted_stranger_key_beside_the_owners_changes_nothing(release: Release) -> None:
    policy = TrustPolicy(
        keys=(load_public_key(release.keys.stranger.public_path), *release.policy().keys)
    )

    report = verify_release(release.root, policy)

    assert report.ok, report.first_failure
