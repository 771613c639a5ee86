"""`bitwright nightly` and `bitwright bisect` end to end on a tiny project.

The project's bits follow the declared thread count (tests/integration/nightly_project.py).

One night under the thread-count variation (a knob the stage wrongly depends on) must say
DIFFERENT for it, and REPRODUCED for the control, in every report; bisect, given the thread
count and unrelated noise, must name the knob, the stage and the tensors that moved; and,
over a history whose commits introduced the dependence, name the commit.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from tests.integration.nightly_project import make_nightly_project, reduce_stage
from tests.integration.project import BITWRIGHT, commit, sh

from bitwright.model import DeterminismSettings
from bitwright.nightly.bisect import CommitBuilder, bisect_commits, commits_between, good_and_bad
from bitwright.nightly.history import append_night, read_history
from bitwright.nightly.night import Result
from bitwright.runner import detect_sandbox
from bitwright.runner.variations import plan, probe_machine

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nightly")


@pytest.fixture(scope="module")
def night(base: Path) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    repo = make_nightly_project(base)
    out = base / "night"
    done = sh(
        BITWRIGHT, "nightly", "--out", str(out), "--variation", "threads", cwd=repo, check=False
    )
    return repo, out, done


def test_a_night_finds_the_knob_the_stage_depends_on(
    night: tuple[Path, Path, subprocess.CompletedProcess[str]],
) -> None:
    repo, out, done = night
    assert done.returncode == 1, done.stderr[-3000:]
    assert "stage reduce: first different on" in done.stderr
    record = json.loads((out / "night.json").read_text())
    results = {
        v["name"]: {s["stage"]: s["result"] for s in v["stages"]} for v in record["variations"]
    }
    assert results == {
        "control": {"reduce": "REPRODUCED", "summary": "REPRODUCED"},
        "threads": {"reduce": "DIFFERENT", "summary": "DIFFERENT"},
    }
    threads = next(v for v in record["variations"] if v["name"] == "threads")
    (reduce,) = [s for s in threads["stages"] if s["stage"] == "reduce"]
    assert {m["tensor"] for m in reduce["moved"]} == {"normalized", "total"}
    suites = ET.parse(out / "junit.xml").getroot()
    failed = [
        (suite.get("name"), case.get("name"))
        for suite in suites
        for case in suite
        if case.find("failure") is not None
    ]
    assert failed == [("nightly.threads", "reduce"), ("nightly.threads", "summary")]
    summary = (out / "summary.md").read_text()
    assert "| `reduce` | REPRODUCED | DIFFERENT |" in summary
    html = (out / "report.html").read_text()
    assert 'data-stage="reduce" data-verdict="DIFFERENT"' in html
    assert 'class="histogram"' in html
    history = read_history(out / "history.jsonl")
    assert len(history.nights) == 1 and history.nights[0].commit == record["commit"]
    assert not (out / "work" / "threads").exists(), "workspaces are removed once compared"


def test_bisect_names_the_knob_the_stage_and_the_tensors(
    night: tuple[Path, Path, subprocess.CompletedProcess[str]], base: Path
) -> None:
    repo, out, _ = night
    (key,) = (out / "release" / "keys").glob("owner.*.pub")
    done = sh(
        BITWRIGHT,
        "bisect",
        str(out / "release"),
        "--key",
        str(key),
        "--history",
        str(out / "history.jsonl"),
        "--variation",
        "threads",
        "--variation",
        "env_noise",
        "--stage",
        "reduce",
        "--work",
        str(base / "bisect-work"),
        "--json",
        cwd=repo,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["found"] and result["stage"] == "reduce"
    assert result["culprits"] == ["determinism.threads=2"]
    assert result["variations"] == ["threads"]
    assert any("normalized" in m for m in result["moved"])
    assert len(result["trials"]) <= 3


def test_bisect_finds_the_commit_that_made_a_stage_depend_on_threads(base: Path) -> None:
    repo = make_nightly_project(base / "history", parallel=False)
    good = sh("git", "rev-parse", "HEAD", cwd=repo).stdout.strip()
    (repo / "stages" / "reduce.py").write_text(reduce_stage(parallel=True))
    commit(repo, "reduce in parallel, one partial sum per thread")
    culprit = sh("git", "rev-parse", "HEAD", cwd=repo).stdout.strip()
    (repo / "notes.txt").write_text("unrelated\n")
    commit(repo, "notes")
    bad = sh("git", "rev-parse", "HEAD", cwd=repo).stdout.strip()
    # the history says: reproduced at the first commit, not under threads at the last
    from tests.unit.nightly.nightly_factory import night as make_night  # noqa: PLC0415

    history = base / "history.jsonl"
    stages = ("reduce", "summary")
    append_night(history, make_night(1, good, stages=stages, varied="reduce"))
    append_night(
        history, make_night(2, bad, train=Result.DIFFERENT, stages=stages, varied="reduce")
    )
    found_good, found_bad, failing = good_and_bad(read_history(history).nights, "reduce")
    assert (found_good, found_bad, failing) == (good, bad, ("threads",))
    commits = commits_between(repo, good, bad)
    assert commits == (culprit, bad)
    (threads,) = plan(["threads"], probe_machine(detect_sandbox(None)), DeterminismSettings())
    assert threads.variation is not None
    builder = CommitBuilder(repo, base / "commit-work", threads.variation)
    result = bisect_commits(builder, commits, "reduce")
    assert result.found and result.culprits == (culprit,)
    assert [t.result for t in result.trials] == ["DIFFERENT"]
