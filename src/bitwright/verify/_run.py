"""Running one check: its pass detail, its failure line, or the reason it was skipped."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from bitwright.errors import CheckFailed
from bitwright.verify.report import CheckResult, CheckStatus

__all__ = ["SkipCheck", "run_check", "skipped"]

T = TypeVar("T")


class SkipCheck(Exception):  # noqa: N818  (a control-flow signal, not an error)
    """Raised by a check that has nothing to check; its message says why."""


def run_check(name: str, check: Callable[[], tuple[T, str]]) -> tuple[CheckResult, T | None]:
    """Run ``check``; a value and a detail mean passed, :class:`CheckFailed` means failed.

    Operational errors (a missing file, an unreadable trust config) are not caught: they are
    no answer about the release and end the verification.

    Returns:
        The check's result and, when it passed, the value it produced for later checks.
    """
    try:
        value, detail = check()
    except SkipCheck as why:
        return skipped(name, str(why)), None
    except CheckFailed as exc:
        return CheckResult(name, CheckStatus.FAILED, exc.message, exc.hint), None
    return CheckResult(name, CheckStatus.PASSED, detail), value


def skipped(name: str, why: str) -> CheckResult:
    """Return the result of a check that did not run, and why."""
    return CheckResult(name, CheckStatus.SKIPPED, why)
