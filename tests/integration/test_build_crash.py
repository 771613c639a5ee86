"""A build killed with SIGKILL (the whole process group) at chosen points; the next one recovers.

The stages of the tiny project wait while a hold file outside the repository exists (the
sandbox shows the rest of the file system read-only), so the test kills the build at a point
it chooses: while the first stage runs (DVC holds its lock), and while the second runs
after the first stage's link was written. The next ``bitwright build`` must succeed without
help, its chain must pass in-toto-verify, and no partial file may remain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.integration.project import BITWRIGHT, commit, env, make_project, sh

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOLDING_STAGE = """\
import json, pathlib, time
from bitwright import stagekit
stagekit.begin()
{body}
hold = pathlib.Path({hold!r})
while hold.exists():
    time.sleep(0.05)
"""

FIRST = """\
text = pathlib.Path("data/raw/input.txt").read_text()
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/first.json").write_text(json.dumps({"n": len(text)}))
"""

SECOND = """\
data = json.loads(pathlib.Path("out/first.json").read_text())
pathlib.Path("out/second.json").write_text(json.dumps({"twice": 2 * data["n"]}))
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_project(tmp_path)
    hold = tmp_path / "hold"
    (repo / "stages" / "first.py").write_text(HOLDING_STAGE.format(body=FIRST, hold=str(hold)))
    (repo / "stages" / "second.py").write_text(HOLDING_STAGE.format(body=SECOND, hold=str(hold)))
    commit(repo, "stages that wait for a hold file")
    return repo, hold


def _kill_build_when(repo: Path, hold: Path, ready: Path) -> None:
    """Start a build, wait until ``ready`` exists, then SIGKILL its whole process group."""
    hold.touch()
    build = subprocess.Popen(
        [BITWRIGHT, "build"],
        cwd=repo,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not ready.exists() and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert build.poll() is None, "the build ended before the point to kill it"
    os.killpg(build.pid, signal.SIGKILL)
    build.wait()
    hold.unlink()


def _rebuild_recovers(repo: Path) -> str:
    done = sh(BITWRIGHT, "build", cwd=repo, check=False)
    assert done.returncode == 0, done.stderr
    partial = [
        str(p.relative_to(repo))
        for p in (repo / ".bitwright").rglob("*")
        if p.name.endswith((".tmp", ".partial"))
    ]
    assert partial == []
    att = repo / ".bitwright" / "attestations"
    verified = sh(
        str(Path(BITWRIGHT).parent / "in-toto-verify"),
        *("--layout", "root.layout", "--link-dir", "links"),
        *("--verification-keys", str(repo / ".bitwright" / "keys" / "owner.pub")),
        cwd=att,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    return done.stderr


def test_killed_while_the_first_stage_runs(project: tuple[Path, Path]) -> None:
    repo, hold = project

    _kill_build_when(repo, hold, repo / "out" / "first.json")

    assert not list((repo / ".bitwright" / "attestations" / "links").glob("first.*.link"))
    # What a kill at another moment leaves: DVC's lock naming the dead DVC, a partial log.
    rwlock = repo / ".dvc" / "tmp" / "rwlock"
    dead = subprocess.Popen(["true"])
    dead.wait()
    rwlock.write_text(json.dumps({"write": {"out/first.json": {"pid": dead.pid, "cmd": "dvc"}}}))
    leftover = repo / ".bitwright" / "logs" / ".first.log.k1ll3d00.tmp"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_text("half a log")
    stderr = _rebuild_recovers(repo)
    assert "removed DVC's stale lock .dvc/tmp/rwlock" in stderr
    assert "partial file(s) of an interrupted build" in stderr


def test_killed_after_a_link_while_the_second_stage_runs(project: tuple[Path, Path]) -> None:
    repo, hold = project

    _kill_build_when(repo, hold, repo / "out" / "second.json")

    links = repo / ".bitwright" / "attestations" / "links"
    assert list(links.glob("first.*.link")) and not list(links.glob("second.*.link"))
    _rebuild_recovers(repo)
