"""Why a release does not verify, said the same way by verify, rebuild and the audit."""

from __future__ import annotations

from bitwright.verify.report import CheckResult, CheckStatus, VerifyReport

PASSED, FAILED, SKIPPED = CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.SKIPPED


def test_a_verified_release_has_no_reason() -> None:
    report = VerifyReport("r", (CheckResult("links", PASSED, "ok"),), required=("links",))
    assert report.ok and report.why_not == ""


def test_the_first_failure_is_the_reason() -> None:
    checks = (
        CheckResult("layout", PASSED, "ok"),
        CheckResult("links", FAILED, "train.link is not signed"),
        CheckResult("aibom", FAILED, "missing"),
    )
    report = VerifyReport("r", checks, required=("layout", "links"))
    assert report.why_not == "links: train.link is not signed"


def test_a_required_check_that_was_skipped_is_named() -> None:
    checks = (CheckResult("layout", PASSED, "ok"), CheckResult("links", SKIPPED, "no links"))
    report = VerifyReport("r", checks, required=("layout", "links", "provenance"))
    assert not report.ok
    assert report.why_not == "required check(s) did not pass: links, provenance"
