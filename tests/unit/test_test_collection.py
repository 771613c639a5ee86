"""Every test module under tests/ is one that pytest collects.

pytest skips directories whose names match ``norecursedirs`` (by default ``build``, ``dist``,
``venv``...): a test folder named like that silently never runs.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_directory_is_skipped_by_norecursedirs(pytestconfig: pytest.Config) -> None:
    patterns = [str(p) for p in pytestconfig.getini("norecursedirs")]
    skipped = sorted(
        str(path.parent.relative_to(TESTS))
        for path in TESTS.rglob("test_*.py")
        for part in path.parent.relative_to(TESTS).parts
        if any(fnmatch.fnmatch(part, pattern) for pattern in patterns)
    )
    assert skipped == [], f"pytest never collects the tests in {skipped}"


def test_the_rule_would_catch_a_build_folder(pytestconfig: pytest.Config) -> None:
    patterns = [str(p) for p in pytestconfig.getini("norecursedirs")]
    assert any(fnmatch.fnmatch("build", pattern) for pattern in patterns)
