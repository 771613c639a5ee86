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
* ``full_image``: the project's own image (``containers/``): the committed lock's, when
  podman or the image store holds it by digest, else locked anew here and built once (the
  reference checkout then carries that lock). Stages that write receipts need torch.
"""

from __future__ import annotations

import base64
import contextlib
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
from tests.integration.project import BITWRIGHT, commit, env, make_project, sh

from bitwright.errors import OperationalError, StageFailed
from bitwright.image.debian import apt_sources
from bitwright.image.normtar import write_normalized_tar
from bitwright.image.obtain import obtain_image, podman_digests
from bitwright.image.oci import ImageConfig, read_oci_archive, write_oci_archive
from bitwright.image.recipe import read_recipe
from bitwright.image.store import ImageStore, push_to_remote
from bitwright.model import DeterminismSettings, Sha256, StageSpec
from bitwright.pins import pin_container
from bitwright.pins.container import LOCK_PATH, read_image_lock
from bitwright.runner import (
    PodmanSandbox,
    image_reference,
    judge,
    podman_command,
    probe_podman,
    run_sealed,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SMALL = Path(__file__).parent / "images" / "small"


def require_container_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("the container builder's image is built as root (mmdebstrap's root mode)")
    missing = [t for t in ("podman", "mmdebstrap") if shutil.which(t) is None]
    if missing or probe_podman() is None:
        pytest.skip(f"podman and mmdebstrap must work here ({missing or 'podman'}: make podman)")


def lock_anew(images: Path, base: Path) -> dict[str, Any]:
    """Copy ``images/containers`` to ``base`` and lock it from this machine's apt sources.

    ``image build --update`` resolves the recipe afresh (mmdebstrap reads the sources, pip the
    project's lock), builds and locks the image, whatever lock the copy held. Skipped when
    the machine has no apt source for the recipe's suite, or cannot reach it.
    """
    try:
        apt_sources(read_recipe(images).suite)
    except OperationalError as exc:
        pytest.skip(f"no apt source to lock the image from: {exc.diagnostics()}")
    shutil.copytree(images / "containers", base / "containers")
    done = sh(BITWRIGHT, "image", "build", "--update", "--no-load", "--json", cwd=base, check=False)
    if done.returncode != 0 and "Failed to fetch" in done.stderr:  # apt's words: out of reach
        said = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        pytest.skip(f"the apt sources cannot be reached from here: {(said or [done.stderr])[0]}")
    assert done.returncode == 0, done.stderr
    return {**json.loads(done.stdout), "repo": base}


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


@contextlib.contextmanager
def empty_podman(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImageStore]:
    """An empty podman storage and image store under ``directory``, for code and commands.

    Afterwards its images are removed and its mounts undone (podman's overlay storage stays
    mounted on itself), so no test leaves a mount behind in the temporary directories.
    """
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{directory}/graph"\n'
        f'runroot = "{directory}/run"\n'
    )
    with monkeypatch.context() as patch:
        patch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
        patch.setenv("BITWRIGHT_IMAGE_STORE", str(directory / "store"))
        try:
            yield ImageStore(directory / "store")
        finally:
            subprocess.run(
                [*podman_command(), "rmi", "--all", "--force"], capture_output=True, timeout=300
            )
            for mount in mounts_under(directory):
                subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below ``directory``, deepest first."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # octal escapes (\\040)
        if Path(point).is_relative_to(directory):
            found.append(point)
    return sorted(found, key=len, reverse=True)


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
