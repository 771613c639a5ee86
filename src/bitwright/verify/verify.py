"""``verify_release``: check a release directory against what the verifier trusts, no rebuild.

The checks run in a fixed order and later ones use what earlier ones established: the
in-toto check needs the layout a trusted key signed; the subjects, byproducts and
dependencies checks need the provenance a trusted signer signed; coverage needs the release
statement a trusted key signed. A check that lacks what it needs is reported as skipped,
and the release then does not verify (a required check did not pass). Only the policy's keys
and identities are trusted; the release's ``keys/`` is never read as a key.

Everything is read through a :class:`~bitwright.verify.material.ReleaseReader`: bounded,
regular files inside the release, read once. Missing pieces a release cannot be checked
without (the directory, ``root.layout``, the provenance, ``artifacts/``) and files that
cannot be read (not regular, too large, unreadable) are operational errors (exit 3);
everything that is there but does not hold is a failed check (exit 1).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bitwright.attest.statement import Statement
from bitwright.attest.trust import TrustPolicy
from bitwright.digest import BackgroundTreeDigest
from bitwright.errors import OperationalError, UsageError
from bitwright.release.layout import ReleaseLayout
from bitwright.verify._aibom_worker import AibomCheckProcess
from bitwright.verify._run import run_check, skipped
from bitwright.verify.binding import Expectations, check_binding, source_facts
from bitwright.verify.checks_chain import SignedLink, check_dependencies
from bitwright.verify.checks_coverage import check_coverage, check_release_statement
from bitwright.verify.checks_layout import (
    TrustedLayout,
    check_in_toto,
    check_layout_expiry,
    check_layout_signature,
)
from bitwright.verify.checks_provenance import (
    check_byproducts,
    check_provenance_signature,
    check_subjects,
)
from bitwright.verify.checks_release import AIBOM_FILE, check_aibom, check_model_signature
from bitwright.verify.material import DEFAULT_LIMITS, Limits, ReleaseReader
from bitwright.verify.report import (
    AIBOM,
    BINDING,
    BYPRODUCTS,
    CHECK_NAMES,
    COVERAGE,
    DEPENDENCIES,
    IN_TOTO,
    LAYOUT_EXPIRY,
    LAYOUT_SIGNATURE,
    MANDATORY_CHECKS,
    MODEL_SIGNATURE,
    OPTIONAL_FILE_CHECKS,
    PROVENANCE_SIGNATURE,
    RELEASE_STATEMENT,
    SUBJECTS,
    CheckResult,
    CheckStatus,
    VerifyReport,
)

__all__ = ["TrustedRelease", "verify_release"]

_NO_LAYOUT = "needs a layout signed by a trusted key"
_NO_PROVENANCE = "needs a provenance signed by a trusted signer"
_NO_STATEMENT = "needs a release statement signed by a trusted key"


@dataclass(frozen=True)
class TrustedRelease:
    """What a release that verified establishes: its provenance and its signed links.

    Attributes:
        statement: the provenance a trusted signer signed.
        links: stage -> the payload of its link, signed by a functionary of the layout.
    """

    statement: Statement
    links: dict[str, dict[str, Any]]


def verify_release(
    release: Path,
    policy: TrustPolicy,
    *,
    now: datetime | None = None,
    on_bytes: Callable[[int], None] | None = None,
    digests: BackgroundTreeDigest | None = None,
    limits: Limits = DEFAULT_LIMITS,
    expected: Expectations | None = None,
    allow_missing: bool = False,
    trusted_files: Sequence[Path] = (),
    own_provenance: Statement | None = None,
    aibom_in_child: bool = False,
) -> VerifyReport:
    """Verify the release directory ``release``: signatures, the in-toto chain, every file.

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
        limits: the largest documents and deepest JSON accepted.
        expected: what the verifier expects (source, commit, freshness...): the ``binding``
            check; skipped when nothing is expected.
        allow_missing: accept a release without an AI BOM or model signature (a warning).
        trusted_files: the key and trust files the policy was read from; one inside the
            release is warned about (a key that travels with a release proves nothing).
        own_provenance: the provenance ``bitwright release`` is bundling, trusted as its own
            (a keyless one cannot be checked offline): only for checking before writing.
        aibom_in_child: check the AI BOM's schema in a child process, started first, so that
            it runs on another core beside the signature checks (what a command wants).

    Returns:
        One result per check (see :data:`bitwright.verify.report.CHECK_NAMES`); ``ok``
        says whether the release verifies, ``trusted`` holds the verified material.

    Raises:
        UsageError: the policy trusts nobody.
        OperationalError: the release directory, its ``root.layout``, its provenance or its
            ``artifacts/`` is missing, or a file cannot be read (not a regular file, larger
            than the limits, unreadable).
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
    run = _Verification(
        release=release,
        reader=ReleaseReader(root, limits),
        policy=policy,
        now=now or datetime.now(UTC),
        expected=expected or Expectations(),
        allow_missing=allow_missing,
        own_provenance=own_provenance,
        aibom_in_child=aibom_in_child,
    )
    warnings = _key_warnings(root, trusted_files)
    if digests is not None and digests.root.resolve() == layout.artifacts:
        return run.report(digests, warnings)
    # A warm caller has little Python work left to overlap: a thread starts hashing at once.
    with BackgroundTreeDigest(layout.artifacts, on_bytes, child=False) as own:
        return run.report(own, warnings)


@dataclass
class _Verification:
    """One verification: the inputs, and the results as the checks produce them."""

    release: Path
    reader: ReleaseReader
    policy: TrustPolicy
    now: datetime
    expected: Expectations
    allow_missing: bool
    own_provenance: Statement | None
    aibom_in_child: bool

    def __post_init__(self) -> None:
        self.results: dict[str, CheckResult] = {}
        self.layout: TrustedLayout | None = None
        self.statement: Statement | None = None
        self.links: tuple[SignedLink, ...] = ()

    def report(self, digests: BackgroundTreeDigest, warnings: list[str]) -> VerifyReport:
        inventory = self.reader.inventory()  # lists entries; opens nothing
        with self._aibom_child() as child:
            self._layout_checks()
            self._provenance_checks()
            # The BOM's check still overlaps the hashing; it waits for the digests last.
            self._run(
                AIBOM,
                lambda: check_aibom(self.reader, digests.result, child=child, **self._missing()),
            )
        artifacts = digests.result()
        if self.statement is not None:
            statement = self.statement
            self._run(SUBJECTS, lambda: check_subjects(statement, artifacts))
        released = self._run(
            RELEASE_STATEMENT,
            lambda: check_release_statement(self.reader, self.policy.keys, self.statement),
        )
        if released is None:
            self.results[COVERAGE] = skipped(COVERAGE, _NO_STATEMENT)
        else:
            self._run(COVERAGE, lambda: check_coverage(self.reader, released, inventory, artifacts))
        self._run(
            MODEL_SIGNATURE,
            lambda: check_model_signature(
                self.reader, self.policy.keys, artifacts, **self._missing()
            ),
        )
        self._binding_check()
        return self._assemble(warnings)

    def _aibom_child(self) -> contextlib.AbstractContextManager[AibomCheckProcess | None]:
        if not self.aibom_in_child or not self.reader.exists(AIBOM_FILE):
            return contextlib.nullcontext()
        data = self.reader.read(AIBOM_FILE, limit=self.reader.limits.aibom_bytes)
        return AibomCheckProcess(data, max_depth=self.reader.limits.json_depth)

    def _layout_checks(self) -> None:
        self.layout = self._run(
            LAYOUT_SIGNATURE, lambda: check_layout_signature(self.reader, self.policy.keys)
        )
        trusted = self.layout
        if trusted is None:
            for name in (LAYOUT_EXPIRY, IN_TOTO):
                self.results[name] = skipped(name, _NO_LAYOUT)
            return
        self._run(LAYOUT_EXPIRY, lambda: check_layout_expiry(trusted, self.now))
        self._run(IN_TOTO, lambda: check_in_toto(trusted, self.reader))

    def _provenance_checks(self) -> None:
        if self.own_provenance is not None:
            self.statement = self.own_provenance
            self.results[PROVENANCE_SIGNATURE] = CheckResult(
                PROVENANCE_SIGNATURE, CheckStatus.PASSED, "the build's own provenance"
            )
        else:
            self.statement = self._run(
                PROVENANCE_SIGNATURE,
                lambda: check_provenance_signature(self.reader, self.policy),
            )
        statement, trusted = self.statement, self.layout
        if statement is None:
            for name in (SUBJECTS, BYPRODUCTS, DEPENDENCIES):
                self.results[name] = skipped(name, _NO_PROVENANCE)
            return
        self._run(BYPRODUCTS, lambda: check_byproducts(statement, self.reader))
        if trusted is None:
            self.results[DEPENDENCIES] = skipped(DEPENDENCIES, _NO_LAYOUT)
            return
        self.links = (
            self._run(DEPENDENCIES, lambda: check_dependencies(statement, trusted, self.reader))
            or ()
        )

    def _binding_check(self) -> None:
        statement = self.statement
        if statement is None:
            self.results[BINDING] = skipped(BINDING, _NO_PROVENANCE)
            return
        self._run(BINDING, lambda: check_binding(statement, self.expected))

    def _run(self, name: str, check: Callable[[], tuple[Any, str]]) -> Any:
        self.results[name], value = run_check(name, check)
        return value

    def _missing(self) -> dict[str, bool]:
        return {"allow_missing": self.allow_missing}

    def _assemble(self, warnings: list[str]) -> VerifyReport:
        root = self.reader.root
        checks = tuple(_relative(self.results[name], root) for name in CHECK_NAMES)
        required = tuple(
            n for n in MANDATORY_CHECKS if not (self.allow_missing and n in OPTIONAL_FILE_CHECKS)
        )
        facts = None
        if self.statement is not None and self.results[PROVENANCE_SIGNATURE].status is (
            CheckStatus.PASSED
        ):
            facts = source_facts(self.statement)
            if facts.dirty:
                warnings.append(
                    "the release was built from a dirty work tree "
                    f"({', '.join(facts.dirty_paths[:3]) or 'paths not recorded'}): it is not "
                    "rebuildable (--require-clean refuses it)"
                )
        warnings += [
            f"{c.detail}: accepted with --allow-missing"
            for c in checks
            if c.name in OPTIONAL_FILE_CHECKS and c.status is CheckStatus.SKIPPED
        ]
        report = VerifyReport(
            release=str(self.release),
            checks=checks,
            required=required,
            source=facts,
            warnings=tuple(warnings),
        )
        if report.ok and self.statement is not None:
            links = {link.stage: link.payload for link in self.links}
            report = replace(report, trusted=TrustedRelease(self.statement, links))
        return report


def _relative(check: CheckResult, root: Path) -> CheckResult:
    """Name files in a detail relative to the release (the report names the release once)."""
    return replace(check, detail=check.detail.replace(f"{root}{os.sep}", ""))


def _key_warnings(root: Path, trusted_files: Sequence[Path]) -> list[str]:
    return [
        f"the trusted key or trust file {path} lies inside the release being checked: a key "
        "that travels with a release proves nothing; get the owner's key from a channel "
        "you trust"
        for path in trusted_files
        if path.resolve().is_relative_to(root)
    ]


def _require_release(layout: ReleaseLayout) -> None:
    if not layout.root.is_dir():
        raise OperationalError(
            f"release directory {layout.root} not found",
            hint="pass the directory 'bitwright release' wrote (unpack a tarball first)",
        )
    missing: Path | None = None
    if not os.path.lexists(layout.layout):
        missing = layout.layout
    elif not os.path.lexists(layout.provenance) and not os.path.lexists(layout.provenance_bundle):
        missing = layout.provenance
    elif not layout.artifacts.is_dir() or layout.artifacts.is_symlink():
        missing = layout.artifacts
    if missing is not None:
        raise OperationalError(
            f"{missing} not found: the release is incomplete",
            hint="take the whole release again ('bitwright release' writes every part)",
        )
