"""The container builder for real: a reproducible image, stages sealed in it by digest, enforced.

Needs root, podman with runc, mmdebstrap (`make podman` installs them) and an apt source for
the recipes' suite that can be reached; skipped otherwise, with the reason. No test depends on
a committed lock's Debian versions still being served: mirrors drop a version once a newer
one replaces it. What costs minutes happens at most once per run, in module fixtures:

* ``small_image``: the small test image (Debian's essential set, its Python, two wheels;
  ``images/small``) locked here from the machine's apt sources, then rebuilt from that lock
  in another directory, under another host name and umask, without network: three
  mmdebstrap runs (one resolves, one per build bootstraps). It proves the build reproduces
  from its lock, and serves the tests whose property does not need torch (the sandbox's
  seal, refusals, the DVC remote).
The reference pipeline in the project's own image is in test_container_reference.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.container_kit import (
    empty_podman,
    lock_anew,
    require_container_tools,
)
from tests.integration.project import BITWRIGHT, commit, env, make_project, sh

from bitwright.errors import OperationalError, StageFailed
from bitwright.image.normtar import write_normalized_tar
from bitwright.image.obtain import obtain_image, podman_digests
from bitwright.image.oci import ImageConfig, read_oci_archive, write_oci_archive
from bitwright.image.store import ImageStore, push_to_remote
from bitwright.model import DeterminismSettings, Sha256, StageSpec
from bitwright.pins import pin_container
from bitwright.pins.container import LOCK_PATH, read_image_lock
from bitwright.runner import (
    PodmanSandbox,
    image_reference,
    judge,
    podman_command,
    run_sealed,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL = Path(__file__).parent / "images" / "small"


@pytest.fixture(scope="module")
def small_image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The small image locked here, then rebuilt from that lock elsewhere.

    Elsewhere: another directory, host name and umask, and no network (the locked inputs
    are in the image store by sha256; a rebuild takes them from there).
    """
    require_container_tools()
    locked = lock_anew(SMALL, tmp_path_factory.mktemp("small-image-locked"))
    base = tmp_path_factory.mktemp("small-image")
    shutil.copytree(locked["repo"] / "containers", base / "containers")
    script = f"hostname bitwright-elsewhere && umask 077 && exec {BITWRIGHT} image build --json"
    done = subprocess.run(
        ["unshare", "--uts", "--net", "sh", "-c", script],
        cwd=base,
        env=env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr
    return {**json.loads(done.stdout), "repo": base, "locked": locked}


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImageStore]:
    """An empty podman storage and an empty image store, for this test and its commands."""
    with empty_podman(tmp_path / "podman", monkeypatch) as store:
        yield store


def test_the_image_rebuilt_elsewhere_has_the_locked_digest(small_image: dict[str, Any]) -> None:
    """Two builds (the one that locked and this one) in different places give the same image."""
    first = small_image["locked"]
    assert first["resolved"] and not first["reproduced"]
    locked = read_image_lock(first["repo"])
    assert first["digest"] == locked.digest and first["archive_sha256"] == locked.archive_sha256
    assert small_image["digest"] == locked.digest
    assert small_image["reproduced"] and not small_image["resolved"]
    assert small_image["archive_sha256"] == locked.archive_sha256
    lock_file = (small_image["repo"] / LOCK_PATH).read_bytes()
    assert lock_file == (first["repo"] / LOCK_PATH).read_bytes()
    archive = Path(small_image["archive"])
    assert read_oci_archive(archive, digest=locked.digest).archive_sha256 == locked.archive_sha256
    if shutil.which("skopeo"):  # an independent OCI reader sees the same manifest
        raw = subprocess.run(
            ["skopeo", "inspect", "--raw", f"oci-archive:{archive}"],
            capture_output=True,
            check=True,
        ).stdout
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == locked.digest


STAGE = """\
import json, os, socket, sys
report = {"uid": os.getuid(), "python": sys.version.split()[0], "env": sorted(os.environ)}
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
    report["network"] = "connected"
except OSError as exc:
    report["network"] = type(exc).__name__
try:
    open("data/in.txt", "w").write("tampered")
    report["dep"] = "written"
except OSError as exc:
    report["dep"] = exc.strerror
report["secret"] = os.path.exists("secret.txt")
report["keys"] = os.path.exists(".bitwright/keys/owner.key")
import bitwright.stagekit
report["stagekit"] = bitwright.stagekit.__file__
import importlib.util, typing_extensions
report["bytecode"] = os.path.isfile(importlib.util.cache_from_source(typing_extensions.__file__))
os.makedirs("out", exist_ok=True)
json.dump(report, open("out/report.json", "w"))
"""


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def stage_repo(root: Path) -> StageSpec:
    for rel, text in {
        "data/in.txt": "declared\n",
        "secret.txt": "undeclared\n",
        ".bitwright/keys/owner.key": "PRIVATE\n",
        "pipelines/probe.py": STAGE,
        "params.yaml": "x: 1\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return StageSpec(
        name="probe",
        cmd="bitwright stage run probe -- python pipelines/probe.py",
        deps=("pipelines/probe.py", "data/in.txt"),
        outs=("out/report.json",),
        params=(("params.yaml", "x"),),
    )


def run_probe(root: Path, sandbox: PodmanSandbox, port: int, *, strict: bool = True) -> Any:
    spec = stage_repo(root)
    return run_sealed(
        spec,
        repo=root,
        argv=["python3", "pipelines/probe.py", str(port)],
        settings=DeterminismSettings(),
        source_date_epoch=1_700_000_000,
        strict=strict,
        sandbox=sandbox,
        digest=lambda paths: {
            p: Sha256(hashlib.sha256((root / p).read_bytes()).hexdigest())
            for p in paths
            if (root / p).is_file()
        },
        log_dir=root.parent / "logs",
        echo=False,
        host_env={"FOO": "host secret", "CUDA_VISIBLE_DEVICES": ""},
    )


def test_a_stage_in_the_image_is_sealed_and_says_so(
    small_image: dict[str, Any], tmp_path: Path, listening_port: int
) -> None:
    root = tmp_path / "repo"
    sandbox = PodmanSandbox.detect(str(small_image["name"]), str(small_image["digest"]))
    run = run_probe(root, sandbox, listening_port)
    assert run.returncode == 0, (tmp_path / "logs/probe.stderr.log").read_text()
    report = json.loads((root / "out/report.json").read_text())
    assert report["network"] != "connected"  # --network=none
    assert report["dep"] == "Read-only file system"
    assert (root / "data/in.txt").read_text() == "declared\n"
    assert not report["secret"] and not report["keys"]  # strict: undeclared files hidden
    assert report["python"].startswith("3.11.2")  # the image's Debian Python, not the host's
    assert report["stagekit"] == "/opt/bitwright/bitwright/stagekit.py"
    assert report["bytecode"]  # the image's wheels come compiled: no stage compiles them again
    assert "FOO" not in report["env"] and "HOSTNAME" in report["env"]
    assert report["uid"] == 0  # root in the container's own user namespace...
    assert (root / "out/report.json").stat().st_uid == os.getuid()  # ...the caller's file here
    assert run.sandbox.container_digest == small_image["digest"]
    assert run.environment["PATH"] == "/usr/local/bin:/usr/bin:/bin"

    # warn mode shows the whole repository, but never keys, history or caches
    shutil.rmtree(root / "out")
    run = run_probe(root, sandbox, listening_port, strict=False)
    assert run.returncode == 0, (tmp_path / "logs/probe.stderr.log").read_text()
    report = json.loads((root / "out/report.json").read_text())
    assert report["secret"] and not report["keys"]
    assert report["dep"] == "Read-only file system"


def test_a_digest_podman_does_not_hold_never_runs(
    small_image: dict[str, Any], tmp_path: Path, listening_port: int
) -> None:
    other = "sha256:" + hashlib.sha256(b"no such image").hexdigest()
    run = run_probe(
        tmp_path / "repo", PodmanSandbox.detect(small_image["name"], other), listening_port
    )
    assert run.returncode == 125 and not (tmp_path / "repo/out/report.json").exists()
    assert "image not known" in (tmp_path / "logs/probe.stderr.log").read_text()
    with pytest.raises(StageFailed):
        judge(run, settings=DeterminismSettings(), strict=True, receipt_required=False)


def tampered(archive: Path, out: Path) -> Path:
    """The image of ``archive`` with one file changed: a valid image with another digest."""
    work = out.parent / "tamper"
    work.mkdir()
    with tarfile.open(archive) as outer:
        layer = next(m for m in outer if m.size > 1 << 20)
        with tarfile.open(fileobj=outer.extractfile(layer)) as inner:  # type: ignore[arg-type]
            inner.extractall(work / "root", filter="tar")
    (work / "root/etc/hostname").write_text("tampered\n")
    with (work / "layer").open("wb") as sink:
        written = write_normalized_tar(work / "root", sink, epoch=1_735_689_600)
    image = read_oci_archive(archive)
    config = ImageConfig(env=("PATH=/usr/bin:/bin",), workdir="/", created="2025-01-01T00:00:00Z")
    with out.open("wb") as sink:
        write_oci_archive(
            work / "layer", written.sha256, config, name=image.name, epoch=1, sink=sink
        )
    shutil.rmtree(work)
    return out


def container_project(tmp_path: Path, images: Path) -> Path:
    repo = make_project(tmp_path)
    shutil.rmtree(repo / "containers")
    shutil.copytree(images / "containers", repo / "containers")
    commit(repo, "the image to build in")
    return repo


def build_in_container(repo: Path) -> subprocess.CompletedProcess[str]:
    return sh(BITWRIGHT, "build", "--builder", "container", cwd=repo, check=False)


def test_an_image_with_one_changed_file_is_refused_before_any_stage_runs(
    small_image: dict[str, Any], tmp_path: Path, isolated: ImageStore
) -> None:
    repo = container_project(tmp_path, small_image["repo"])
    locked = small_image["digest"]
    bad = tampered(Path(small_image["archive"]), tmp_path / "bad.oci.tar")
    bad_digest = read_oci_archive(bad).digest
    assert bad_digest != locked

    # kept in the store under the locked digest: its blobs prove it is another image
    isolated.root.mkdir(parents=True)
    shutil.copyfile(bad, isolated.archive_path(locked))
    done = build_in_container(repo)
    assert done.returncode == 3, done.stderr
    assert f"holds no image {locked}" in done.stderr and bad_digest in done.stderr
    assert not list((repo / ".bitwright/attestations/links").glob("*.link"))
    assert not (repo / "out/first.json").exists()

    # held by podman under the image's name: it is not the pinned digest, so it never runs
    isolated.archive_path(locked).unlink()
    subprocess.run([*podman_command(), "load", "--quiet", "--input", str(bad)], check=True)
    done = build_in_container(repo)
    assert done.returncode == 3, done.stderr
    assert f"build image {locked}" in done.stderr and f"as {bad_digest} only" in done.stderr
    assert not list((repo / ".bitwright/attestations/links").glob("*.link"))


def test_the_archive_is_stored_and_fetched_by_digest_through_the_dvc_remote(
    small_image: dict[str, Any], tmp_path: Path, isolated: ImageStore
) -> None:
    repo = container_project(tmp_path, small_image["repo"])
    md5 = push_to_remote(Path(small_image["archive"]), repo)
    assert md5 == small_image["archive_md5"]
    pin = pin_container(repo)

    # a remote that serves other bytes at the archive's address is refused
    stored = tmp_path / "remote/files/md5" / md5[:2] / md5[2:]
    honest = stored.read_bytes()
    altered = bytearray(honest)
    altered[len(altered) // 2] ^= 1
    os.chmod(stored, 0o644)
    stored.write_bytes(bytes(altered))
    with pytest.raises(OperationalError, match=f"build image {pin.digest}"):
        obtain_image(pin, project=repo, store=isolated)  # DVC, or bitwright's own check, says no
    assert isolated.find(pin.digest) is None
    stored.write_bytes(honest)

    # the archive at that address holds another image than the pin names: refused
    forged = dataclasses.replace(pin, digest="sha256:" + hashlib.sha256(b"other").hexdigest())
    with pytest.raises(OperationalError, match="not that image"):
        obtain_image(forged, project=repo, store=isolated)

    assert obtain_image(pin, project=repo, store=isolated).source == "remote"
    assert pin.digest in podman_digests(image_reference(pin.image, pin.digest))
