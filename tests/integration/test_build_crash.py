"""A build killed with SIGKILL (the whole process group) at chosen points; the next one recovers.

The stages of the tiny project wait while a hold file outside the repository exists (the
sandbox shows the file system read-only, except /tmp, which is its own: so the file lives
under /var/tmp). The test kills the build at points it chooses: while the first stage runs
(DVC holds its lock), and while the second runs after the first stage's link was written.
The next ``bitwright build`` must succeed without help, its chain must pass in-toto-verify,
and no partial file may remain.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.project import BITWRIGHT, commit, env, make_project, sh

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOLDING_STAGE = """\
import json, pathlib, time
import yaml
from bitwright import stagekit
stagekit.begin()
params = yaml.safe_load(open("params.yaml"))  # the stage declares it: its receipt says it read it
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
def project(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    repo = make_project(tmp_path)
    outside = Path(tempfile.mkdtemp(prefix="bitwright-crash-", dir="/var/tmp"))
    for stage, body in (("first", FIRST), ("second", SECOND)):
        hold = str(outside / f"hold-{stage}")
        (repo / "stages" / f"{stage}.py").write_text(HOLDING_STAGE.format(body=body, hold=hold))
    commit(repo, "stages that wait for a hold file")
    try:
        yield repo, outside
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def _stage_running(build: int, script: str) -> bool:
    """Whether a process below ``build`` runs ``script`` (its sandbox included).

    Only the build's own descendants count: the machine may run other builds of the same
    tiny project.
    """
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    for pid in parents:
        ancestor = pid
        while ancestor in parents and ancestor != build:
            ancestor = parents[ancestor]
        if ancestor == build:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if script.encode() in argv and b"stage" not in argv:  # the stage, not its client
                return True
    return False


def _kill_build_when(repo: Path, hold: Path, script: str) -> None:
    """Start a build, wait until a stage runs ``script`` (and holds), then SIGKILL the group."""
    hold.touch()
    build = subprocess.Popen(
        [BITWRIGHT, "build"],
        cwd=repo,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while (
            not _stage_running(build.pid, script)
            and build.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert build.poll() is None, "the build ended before the point to kill it"
        assert _stage_running(build.pid, script), f"no stage ran {script} in time"
        time.sleep(0.5)  # the stage holds: nothing may finish meanwhile
    finally:  # a failed wait leaves nothing running either
        if build.poll() is None:
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


def test_killed_during_a_stage_and_after_a_link_the_next_build_recovers(
    project: tuple[Path, Path],
) -> None:
    repo, holds = project
    links = repo / ".bitwright" / "attestations" / "links"

    # 1. killed while the first stage runs: DVC holds its lock, no stage has a link
    _kill_build_when(repo, holds / "hold-first", "stages/first.py")
    assert not list(links.glob("*.link"))

    # 2. killed again while the second stage runs, after the first stage's link
    _kill_build_when(repo, holds / "hold-second", "stages/second.py")
    assert list(links.glob("first.*.link")) and not list(links.glob("second.*.link"))

    # what a kill at yet another moment leaves: DVC's lock naming a dead DVC, a partial log
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
