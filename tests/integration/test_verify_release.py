"""``bitwright verify`` on a release of a real build: git, DVC, sealed stages, real keys.

One tiny project is built and released once per module (the slow part); each test checks a
private copy of the release.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.project import BIN, BITWRIGHT, make_project, sh

import bitwright.cli.commands as commands
from bitwright.release.bundle import bundle_release
from bitwright.verify import check_candidate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Until cli/commands.py imports cmd_verify, the console script does not know the command;
# this runs the same entry point with the command registered.
_ENTRY = "import bitwright.cli.cmd_verify; from bitwright.cli.main import run; run()"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The project (with its keys) and its release directory."""
    base = tmp_path_factory.mktemp("verify-integration")
    repo = make_project(base)
    sh(BITWRIGHT, "build", cwd=repo)
    result = bundle_release(repo, base / "release", check=check_candidate)
    return repo, result.directory


@pytest.fixture
def release(built: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "release"
    shutil.copytree(built[1], copy)
    return copy


@pytest.fixture
def owner_pub(built: tuple[Path, Path]) -> Path:
    return built[0] / ".bitwright" / "keys" / "owner.pub"


def verify(release: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    argv = [BITWRIGHT] if hasattr(commands, "cmd_verify") else [sys.executable, "-c", _ENTRY]
    return subprocess.run(
        [*argv, "verify", str(release), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_release_of_a_real_build_verifies_bound_to_its_source(
    built: tuple[Path, Path], release: Path, owner_pub: Path
) -> None:
    repo = built[0]
    commit = sh("git", "rev-parse", "HEAD", cwd=repo).stdout.strip()

    done = verify(
        release,
        *("--key", owner_pub, "--json", "--source-uri", repo, "--commit", commit),
        *("--ref", "main", "--not-before", "2020-01-01", "--require-clean"),
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {c["status"] for c in report["checks"]} == {"passed"}
    assert report["source"]["commit"] == commit
    assert report["source"]["repository"] == str(repo)
    assert report["source"]["signature"] == "unsigned"
    assert f"source:  {repo} at {commit}" in done.stderr


def test_a_release_of_another_commit_fails_binding(release: Path, owner_pub: Path) -> None:
    done = verify(release, "--key", owner_pub, "--commit", "f" * 40)

    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("verification failed: binding: the release was built from commit")


def test_reference_in_toto_verify_accepts_the_release(release: Path) -> None:
    (owner_pub,) = (release / "keys").glob("owner*.pub")
    done = subprocess.run(
        [str(BIN / "in-toto-verify"), "--layout", "root.layout"]
        + ["--verification-keys", str(owner_pub), "--link-dir", "links"],
        cwd=release,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr


def test_changed_output_of_a_real_build_fails_subjects(release: Path, owner_pub: Path) -> None:
    (artifact,) = (release / "artifacts" / "out").glob("second.json")
    artifact.write_text('{"sum": 42.0}')

    done = verify(release, "--key", owner_pub)

    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("verification failed: subjects: artifacts/out/second.json")
