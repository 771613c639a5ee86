"""``verify_release``: check a release directory against what the verifier trusts, no rebuild.

The checks run in a fixed order and later ones use what earlier ones established: the
in-toto check needs the layout a trusted key signed; the subjects, byproducts and
dependencies checks need the provenance a trusted signer signed. A check that lacks what it
needs is reported as skipped, and the release then does not verify (the mandatory checks did
not all pass). Only the policy's keys and identities are trusted; the release's ``keys/`` is
never read.

Missing pieces a release cannot be checked without (the directory, ``root.layout``, the
provenance, ``artifacts/``) are operational errors (exit 3); everything that is there but
does not hold is a failed check (exit 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bitwright.attest.trust import TrustPolicy
from bitwright.digest import BackgroundTreeDigest
from bitwright.errors import OperationalError, UsageError
from bitwright.release.layout import ReleaseLayout
from bitwright.verify._run import run_check, skipped
from bitwright.verify.checks_chain import check_dependencies
from bitwright.verify.checks_layout import (
    check_in_toto,
    check_layout_expiry,
    check_layout_signature,
)
from bitwright.verify.checks_provenance import (
    check_byproducts,
    check_provenance_signature,
    check_subjects,
)
from bitwright.verify.checks_release import (
    check_aibom,
    check_model_signature,
    prepare_release_checks,
)
from bitwright.verify.report import (
    AIBOM,
    BYPRODUCTS,
    CHECK_NAMES,
    DEPENDENCIES,
    IN_TOTO,
    LAYOUT_EXPIRY,
    LAYOUT_SIGNATURE,
    MODEL_SIGNATURE,
    PROVENANCE_SIGNATURE,
    SUBJECTS,
    CheckResult,
    VerifyReport,
)

__all__ = ["verify_release"]

_NO_LAYOUT = "needs a layout signed by a trusted key"
_NO_PROVENANCE = "needs a provenance signed by a trusted signer"


def verify_release(
    release: Path,
    policy: TrustPolicy,
    *,
    now: datetime | None = None,
    on_bytes: Callable[[int], None] | None = None,
    digests: BackgroundTreeDigest | None = None,
) -> VerifyReport:
    """Verify the release directory ``release``: signatures, the in-toto chain, digests.

    The artifacts are hashed in the background (:class:`BackgroundTreeDigest`) while the
    checks that do not need their digests run; the report lists the checks in their fixed
    order.

    Args:
        release: the release directory (``bitwright release`` writes it).
        policy: the keys and keyless identities to trust; nothing else is trusted.
        now: the time the layout must still be valid at (default: now, UTC); in-toto's own
            expiry check always uses the clock.
        on_bytes: progress callback with the bytes of ``artifacts/`` hashed so far (it may
            be called from worker threads).
        digests: the hashing of this release's ``artifacts/`` if the caller started it
            already (a command starts a child process before its imports, so that they
            overlap); a thread is started here otherwise.

    Returns:
        One result per check (see :data:`bitwright.verify.report.CHECK_NAMES`); ``ok``
        says whether the release verifies.

    Raises:
        UsageError: the policy trusts nobody.
        OperationalError: the release directory, its ``root.layout``, its provenance or its
            ``artifacts/`` is missing, or a file cannot be read.
    """
    if not policy.keys and not policy.identities:
        raise UsageError(
            "verify trusts only keys you give it, and none was given",
            hint="pass the owner's public key (--key PUB), a trust file (--trust FILE) or a "
            "keyless signer (--identity ID --issuer URL)",
        )
    root = release.resolve()  # absolute: its prefix is stripped from details without ambiguity
    layout = ReleaseLayout(root)
    _require_release(layout)
    if digests is not None and digests.root.resolve() == layout.artifacts:
        return _verify(release, layout, policy, now, digests)
    # A warm caller has little Python work left to overlap: a thread starts hashing at once.
    with BackgroundTreeDigest(layout.artifacts, on_bytes, child=False) as own:
        return _verify(release, layout, policy, now, own)


def _verify(
    release: Path,
    layout: ReleaseLayout,
    policy: TrustPolicy,
    now: datetime | None,
    digests: BackgroundTreeDigest,
) -> VerifyReport:
    results: dict[str, CheckResult] = {}

    results[LAYOUT_SIGNATURE], trusted = run_check(
        LAYOUT_SIGNATURE, lambda: check_layout_signature(layout.layout, policy.keys)
    )
    if trusted is None:
        results[LAYOUT_EXPIRY] = skipped(LAYOUT_EXPIRY, _NO_LAYOUT)
        results[IN_TOTO] = skipped(IN_TOTO, _NO_LAYOUT)
    else:
        moment = now or datetime.now(UTC)
        results[LAYOUT_EXPIRY] = run_check(
            LAYOUT_EXPIRY, lambda: check_layout_expiry(trusted, moment)
        )[0]
        results[IN_TOTO] = run_check(IN_TOTO, lambda: check_in_toto(trusted, layout.links))[0]

    results[PROVENANCE_SIGNATURE], statement = run_check(
        PROVENANCE_SIGNATURE, lambda: check_provenance_signature(layout, policy)
    )
    if statement is not None:
        results[BYPRODUCTS] = run_check(BYPRODUCTS, lambda: check_byproducts(statement, layout))[0]
        if trusted is None:
            results[DEPENDENCIES] = skipped(DEPENDENCIES, _NO_LAYOUT)
        else:
            results[DEPENDENCIES] = run_check(
                DEPENDENCIES, lambda: check_dependencies(statement, trusted, layout.links)
            )[0]

    prepare_release_checks(layout)  # model-signing's imports, while the hashing goes on
    # The BOM's schema check still overlaps the hashing; it waits for the digests last.
    results[AIBOM] = run_check(AIBOM, lambda: check_aibom(layout, digests.result))[0]
    artifacts = digests.result()
    if statement is None:
        for name in (SUBJECTS, BYPRODUCTS, DEPENDENCIES):
            results[name] = skipped(name, _NO_PROVENANCE)
    else:
        results[SUBJECTS] = run_check(SUBJECTS, lambda: check_subjects(statement, artifacts))[0]
    results[MODEL_SIGNATURE] = run_check(
        MODEL_SIGNATURE, lambda: check_model_signature(layout, policy.keys, artifacts)
    )[0]
    checks = tuple(_relative(results[name], layout.root) for name in CHECK_NAMES)
    return VerifyReport(release=str(release), checks=checks)


def _relative(check: CheckResult, root: Path) -> CheckResult:
    """Name files in a detail relative to the release (the report names the release once)."""
    return replace(check, detail=check.detail.replace(f"{root}{os.sep}", ""))


def _require_release(layout: ReleaseLayout) -> None:
    if not layout.root.is_dir():
        raise OperationalError(
            f"release directory {layout.root} not found",
            hint="pass the directory 'bitwright release' wrote (unpack a tarball first)",
        )
    missing: Path | None = None
    if not layout.layout.is_file():
        missing = layout.layout
    elif not layout.provenance.is_file() and not layout.provenance_bundle.is_file():
        missing = layout.provenance
    elif not layout.artifacts.is_dir():
        missing = layout.artifacts
    if missing is not None:
        raise OperationalError(
            f"{missing} not found: the release is incomplete",
            hint="take the whole release again ('bitwright release' writes every part)",
        )
