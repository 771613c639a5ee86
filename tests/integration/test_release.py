"""``bitwright release`` on a real build: what it will not write over, and what it will not sign.

One tiny project is built once per module. The release command runs in this process (its
entry point, as the console script calls it); each test works on its own copy of the project
when it changes it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.integration.insider import resign_link
from tests.integration.project import BITWRIGHT, make_project, sh

from bitwright.attest import generate_keypair
from bitwright.builder import ProjectPaths
from bitwright.cli.main import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = make_project(tmp_path_factory.mktemp("release"))
    sh(BITWRIGHT, "build", cwd=repo)
    return repo


@pytest.fixture
def project(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "work" / "project"
    shutil.copytree(built, copy, symlinks=True)
    monkeypatch.chdir(copy)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return copy


def _release(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["release", *args])
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def _everything_in(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("file", "is a file, not a directory"),
        ("project", "is or contains the project directory"),
        ("parent-of-project", "is or contains the working directory"),
        ("home", "is or contains the home directory"),
        ("git-repository", "holds a git repository"),
        ("private-key", "holds a private key"),
        ("someone-elses-directory", "is not a release directory of bitwright's"),
        ("symlink", "is a symbolic link"),
    ],
)
def test_release_force_destroys_nothing_but_its_own_release(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    says: str,
) -> None:
    extra: list[str] = []
    if kind == "project":  # run from elsewhere, so that only the project protects it
        monkeypatch.chdir(tmp_path)
        extra = ["--repo", str(project)]
    out = {
        "file": tmp_path / "notes.txt",
        "project": project,
        "parent-of-project": project.parent,
        "home": tmp_path / "home",
        "git-repository": tmp_path / "clone",
        "private-key": tmp_path / "secrets",
        "someone-elses-directory": tmp_path / "photos",
        "symlink": tmp_path / "link",
    }[kind]
    if kind == "file":
        out.write_text("keep")
    elif kind == "git-repository":
        (out / ".git").mkdir(parents=True)
    elif kind == "private-key":
        out.mkdir()
        shutil.copyfile(ProjectPaths(project).owner_key, out / "id.pem")
    elif kind == "someone-elses-directory":
        out.mkdir()
        (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    elif kind == "symlink":
        out.symlink_to(project)
    (tmp_path / "home" / "diary.txt").write_text("keep")
    before = _everything_in(tmp_path)

    code, lines = _release(capsys, "--out", str(out), "--force", *extra)

    assert code == 3
    assert len(lines) == 1 and lines[0].startswith("error: --out ")
    assert says in lines[0]
    assert _everything_in(tmp_path) == before


def test_a_release_is_replaced_only_with_force_and_verifies(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dist" / "release"
    assert _release(capsys, "--out", str(out))[0] == 0
    (out / "stray.txt").write_text("from an earlier life")

    refused = _release(capsys, "--out", str(out))
    replaced = _release(capsys, "--out", str(out), "--force")

    assert refused[0] == 3 and "already exists" in refused[1][0] and "--force" in refused[1][0]
    assert replaced[0] == 0
    assert not (out / "stray.txt").exists() and (out / "release.intoto.json").is_file()
    assert (tmp_path / "dist" / "release.tar.gz").is_file()
    readme = (out / "README.md").read_text()
    assert "Rebuildable: yes" in readme and "release.intoto.json" in readme
    owner = ProjectPaths(project).owner_pub
    assert main(["verify", str(out), "--key", str(owner)]) == 0


def test_an_attestation_set_verify_would_reject_is_not_released(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The owner signs a link again with another command: validly signed, but it is no longer
    # the link the provenance records.
    def run_again(body: dict[str, Any]) -> None:
        body["command"] = [*body["command"], "--again"]

    resign_link(project, "second", run_again)
    out = tmp_path / "dist" / "release"

    code, lines = _release(capsys, "--out", str(out))

    assert code == 3
    assert len(lines) == 1
    assert "the release would not verify (byproducts: links/second." in lines[0]
    assert "nothing was written" in lines[0] and "bitwright build" in lines[0]
    assert not out.exists()
    assert not out.parent.exists() or not list(out.parent.iterdir())  # no partial release


def test_a_key_that_cannot_sign_the_model_is_refused_before_any_work(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ed25519 = generate_keypair(tmp_path / "ed", name="ed", key_type="ed25519")
    out = tmp_path / "dist" / "release"

    code, lines = _release(capsys, "--out", str(out), "--key", str(ed25519.private_path))

    assert code == 3
    assert len(lines) == 1 and "is a ed25519 key" in lines[0] and "ECDSA" in lines[0]
    assert not out.parent.exists()
