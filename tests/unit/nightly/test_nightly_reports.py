"""JUnit XML, Markdown and the search of bisect, on nights and trials made by hand."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from nightly_factory import night

from bitwright.model.variation import Change, ChangeKind
from bitwright.nightly.bisect import CommitBuilder, _ddmin, bisect_commits
from bitwright.nightly.history import first_different
from bitwright.nightly.night import Result, SkippedVariation
from bitwright.nightly.reports import junit_xml, night_markdown


def test_junit_fails_what_differs_errors_what_failed_and_skips_what_was_not_applied() -> None:
    skipped = (SkippedVariation("fs_order", "disorderfs is not installed <here> & now"),)
    document = ET.fromstring(junit_xml(night(4, "d", train=Result.DIFFERENT, skipped=skipped)))
    assert document.get("tests") == "7" and document.get("failures") == "1"
    assert document.get("skipped") == "1" and document.get("errors") == "0"
    threads = document.find("testsuite[@name='nightly.threads']")
    assert threads is not None
    failure = threads.find("testcase[@name='train']/failure")
    assert failure is not None and failure.get("type") == "DIFFERENT"
    assert "fc1.weight" in (failure.text or "")
    assert threads.find("testcase[@name='prepare']/failure") is None
    (skip,) = document.iter("skipped")
    assert skip.get("message") == "disorderfs is not installed <here> & now"
    failed = ET.fromstring(junit_xml(night(5, "e", train=Result.FAILED)))
    assert failed.get("errors") == "1" and failed.get("failures") == "0"


def test_markdown_tells_since_when_and_what_moved() -> None:
    nights = [night(1, "a"), night(2, "b", train=Result.DIFFERENT)]
    text = night_markdown(nights[-1], first_different(nights), len(nights))
    assert text.startswith("# Nightly reproducibility: DIFFERENT")
    assert "stage train: first different on 2026-03-02 at bbbbbbbbbbbb (1 night)" in text
    assert "| `train` | REPRODUCED | DIFFERENT |" in text
    assert "models/model.safetensors:fc1.weight (17/4096 elements" in text


def _changes(*names: str) -> list[Change]:
    return [Change(ChangeKind.ENV, n, "x") for n in names]


def test_ddmin_toggles_a_lone_culprit_out_of_many() -> None:
    tried: list[set[str]] = []

    def differs(subset: Sequence[Change]) -> bool:
        tried.append({c.name for c in subset})
        return any(c.name == "TZ" for c in subset)

    found = _ddmin(_changes("A", "B", "TZ", "C", "D"), differs)
    assert [c.name for c in found] == ["TZ"]
    assert tried[:3] == [{"A"}, {"B"}, {"TZ"}]


def test_ddmin_halves_down_to_an_interaction_of_two() -> None:
    def differs(subset: Sequence[Change]) -> bool:  # threads without MKL_CBWR, together only
        names = {c.name for c in subset}
        return {"threads", "mkl_cbwr"} <= names

    found = _ddmin(_changes("A", "threads", "B", "C", "mkl_cbwr", "D"), differs)
    assert sorted(c.name for c in found) == ["mkl_cbwr", "threads"]


class FakeBuilder(CommitBuilder):
    def __init__(self, first_bad: int, unbuildable: set[int]) -> None:
        super().__init__(repo=None, work=None, variation=None)  # type: ignore[arg-type]
        object.__setattr__(self, "first_bad", first_bad)
        object.__setattr__(self, "unbuildable", unbuildable)
        object.__setattr__(self, "built", [])

    def reproduces(self, commit: str, stage: str) -> bool | None:
        index = int(commit)
        self.built.append(index)  # type: ignore[attr-defined]
        if index in self.unbuildable:  # type: ignore[attr-defined]
            return None
        return index < self.first_bad  # type: ignore[attr-defined,no-any-return]


def test_bisect_commits_halves_to_the_first_bad_commit() -> None:
    commits = [str(i) for i in range(1, 17)]  # after the good one; the last is bad
    builder = FakeBuilder(first_bad=11, unbuildable=set())
    result = bisect_commits(builder, commits, "train")
    assert result.found and result.culprits == ("11",)
    assert len(builder.built) <= 5  # type: ignore[attr-defined]
    assert "stage train first stopped reproducing at commit 11" in result.reason


def test_bisect_commits_steps_over_a_commit_that_does_not_build() -> None:
    commits = [str(i) for i in range(1, 9)]
    result = bisect_commits(FakeBuilder(first_bad=6, unbuildable={4}), commits, "train")
    assert result.culprits == ("6",)
    assert ("4",) in [t.tried for t in result.trials if t.result == "SKIPPED"]
