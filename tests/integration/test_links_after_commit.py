"""Links stay true after a commit: build, commit dvc.lock, build, release, verify.

DVC asks for ``dvc.lock`` to be committed after a build. The next build then skips every
stage (nothing they depend on changed), so its links must come from the earlier runs, yet
name the new commit: a run is attested again for the new commit when everything it depended
on is unchanged, and run again when anything is (here: a commit that moves the source).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.integration.project import BITWRIGHT, commit, env, make_project, sh

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _head(repo: Path) -> str:
    return sh("git", "rev-parse", "HEAD", cwd=repo).stdout.strip()


def _links(repo: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in (repo / ".bitwright" / "attestations" / "links").glob("*.link"):
        envelope = json.loads(path.read_text())
        found[path.name.split(".")[0]] = json.loads(base64.b64decode(envelope["payload"]))
    return found


def _release_and_verify(repo: Path, out: Path) -> str:
    sh(BITWRIGHT, "release", "--out", str(out), cwd=repo)
    pub = repo / ".bitwright" / "keys" / "owner.pub"
    done = sh(BITWRIGHT, "verify", str(out), "--key", str(pub), cwd=repo, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_after_a_commit_of_dvc_lock_the_release_names_the_new_commit(tmp_path: Path) -> None:
    repo = make_project(tmp_path)
    assert sh(BITWRIGHT, "build", cwd=repo).returncode == 0
    built_at = _head(repo)
    sh("git", "add", "dvc.lock", cwd=repo)
    commit(repo, "dvc.lock of the first build")
    locked_at = _head(repo)

    second = sh(BITWRIGHT, "build", cwd=repo)  # no --force: DVC skips both stages
    assert "running it again" not in second.stderr
    links = _links(repo)
    assert set(links) == {"first", "second"}
    store = repo / ".bitwright" / "cache" / "links"
    for payload in links.values():
        assert payload["environment"]["pins"]["git"]["commit"] == locked_at
        cited = payload["byproducts"]["reused-run"]
        assert cited["commit"] == built_at
        stored = [p for p in store.rglob("*.link") if p.stem == cited["sha256"]]
        assert len(stored) == 1
        assert hashlib.sha256(stored[0].read_bytes()).hexdigest() == cited["sha256"]

    release = tmp_path / "release"
    _release_and_verify(repo, release)
    assert locked_at in (release / "README.md").read_text()
    assert built_at not in (release / "README.md").read_text()
    aibom = (release / "aibom.cdx.json").read_text()
    assert locked_at in aibom and built_at not in aibom

    # A commit that moves the source moves SOURCE_DATE_EPOCH: the earlier runs cannot be
    # proven the same any more, and both stages run again for the new commit.
    (repo / "notes" / "secret.txt").write_text("edited, not a dep of any stage\n")
    sh("git", "add", "-A", cwd=repo)
    later = {**env(), "GIT_COMMITTER_DATE": "2026-02-01T00:00:00Z"}
    subprocess.run(["git", "commit", "-q", "-m", "edit"], cwd=repo, env=later, check=True)
    third = sh(BITWRIGHT, "build", cwd=repo)
    assert third.stderr.count("running it again: its environment differs") == 2
    edited_at = _head(repo)
    for payload in _links(repo).values():
        assert payload["environment"]["pins"]["git"]["commit"] == edited_at
        assert "reused-run" not in payload["byproducts"]
    _release_and_verify(repo, tmp_path / "release-edited")
