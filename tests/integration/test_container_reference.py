"""The reference pipeline built, verified and rebuilt in the project's own build image.

Apart from tests/integration/test_container.py so that the two take a core each under
``make test``. Needs what that module needs (root, podman, mmdebstrap, an apt source); skipped
otherwise, with the reason. ``full_image`` is the committed lock's image when podman or the
image store holds it by digest, else the image locked anew here and built once (the committed
versions may no longer be served); the reference checkout then carries that lock.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.integration.container_kit import ROOT, empty_podman, lock_anew, require_container_tools
from tests.integration.project import BITWRIGHT, commit, sh

from bitwright.errors import OperationalError
from bitwright.image.obtain import obtain_image, podman_digests
from bitwright.pins import pin_container
from bitwright.pins.container import LOCK_PATH
from bitwright.runner import image_reference

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def full_image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The project's build image, held by podman by digest, and the ``containers/`` it is of.

    The committed lock's image when podman or the image store holds it; else the image locked
    anew here and built once: the committed versions may no longer be served.
    """
    require_container_tools()
    pin, containers = pin_container(ROOT), ROOT / "containers"
    try:
        obtain_image(pin, project=None, remote=False)
    except OperationalError:
        base = lock_anew(ROOT, tmp_path_factory.mktemp("full-image"))["repo"]
        pin, containers = pin_container(base), base / "containers"
        obtain_image(pin, project=None, remote=False)  # loaded from the image store
    assert pin.digest in podman_digests(image_reference(pin.image, pin.digest))
    return {"digest": pin.digest, "containers": containers}


def reference_checkout(base: Path, containers: Path) -> Path:
    """The reference pipeline in a fresh repository: this tree's tracked files, one commit.

    Its image lock is the one in ``containers``, the image the tests hold.
    """
    repo = base / "reference"
    listed = sh("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    listed = listed.stdout.split("\0")
    for rel in filter(None, listed):
        source = ROOT / rel
        if source.is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / rel)
    shutil.copy2(containers / "images.lock", repo / LOCK_PATH)
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    commit(repo, "reference pipeline")
    sh(BITWRIGHT, "keygen", cwd=repo)
    return repo


def enforced_links(links: Path, digest: str) -> list[str]:
    """The links under ``links`` whose stage ran in the image ``digest``, enforced."""
    found = []
    for path in sorted(links.glob("*.link")):
        envelope = json.loads(path.read_text())
        payload = json.loads(base64.b64decode(envelope["payload"]))
        sandbox = payload["byproducts"]["sandbox"]
        container = payload["environment"]["pins"]["container"]
        if (sandbox["kind"], sandbox["container_digest"]) == ("podman", digest) and (
            container["digest"],
            container["enforced"],
        ) == (digest, True):
            found.append(path.name.split(".")[0])
    return found


def test_the_reference_pipeline_builds_verifies_and_reproduces_in_its_image(
    full_image: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = reference_checkout(tmp_path, full_image["containers"])
    digest = full_image["digest"]
    stages = ["evaluate", "package", "prepare", "train"]
    sh(BITWRIGHT, "build", "--builder", "container", cwd=repo)
    assert enforced_links(repo / ".bitwright/attestations/links", digest) == stages
    # the image trained what the host did: the committed dvc.lock stands as it is
    assert not sh("git", "status", "--porcelain", cwd=repo).stdout
    # a commit that changes no source: the runs in the image stand for the new commit
    sh("git", "commit", "-q", "--allow-empty", "-m", "a release note", cwd=repo)
    again = sh(BITWRIGHT, "build", "--builder", "container", cwd=repo)
    assert "running it again" not in again.stderr, again.stderr
    assert enforced_links(repo / ".bitwright/attestations/links", digest) == stages
    release = tmp_path / "release"
    sh(BITWRIGHT, "release", "--out", str(release), cwd=repo)
    key = repo / ".bitwright/keys/owner.pub"
    verified = sh(BITWRIGHT, "verify", str(release), "--key", str(key), "--json", cwd=tmp_path)
    dependencies = {c["name"]: c for c in json.loads(verified.stdout)["checks"]}["dependencies"]
    assert f"build image {digest} obtained (podman)" in dependencies["detail"]

    rebuilt = sh(
        BITWRIGHT, "rebuild", str(release), "--key", str(key), "--builder", "container",
        "--workspace", str(tmp_path / "ws"), "--json", cwd=tmp_path,
    )  # fmt: skip
    report = json.loads(rebuilt.stdout)
    assert report["verdict"] == "REPRODUCED", report["reason"]
    assert enforced_links(tmp_path / "ws/.bitwright/attestations/links", digest) == stages

    # a verifier who cannot obtain the image: exit 3, the digest named
    with empty_podman(tmp_path / "podman", monkeypatch):
        done = sh(BITWRIGHT, "verify", str(release), "--key", str(key), cwd=tmp_path, check=False)
    assert done.returncode == 3, done.stderr
    assert f"build image {digest}" in done.stderr and "cannot be obtained" in done.stderr
