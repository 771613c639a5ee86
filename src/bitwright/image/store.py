"""Where image archives are kept: a local store by manifest digest, and the project's DVC remote.

The local store (``$BITWRIGHT_IMAGE_STORE``, else ``$XDG_CACHE_HOME/bitwright/images``) holds
``sha256-<manifest hex>.oci.tar`` and the caches of ``.deb`` files and wheels the builds use.
An archive is only ever taken from it after :func:`~bitwright.image.oci.read_oci_archive`
found every digest in it to hold.

The DVC remote holds an archive as DVC holds any file, at the address of its md5, so the
image travels with the rest of a build's inputs and any DVC remote (a directory, S3, SSH...)
serves it. Only DVC's command line is used: a private scratch project that carries the
project's remote configuration adds and pushes the archive, or pulls it by md5.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bitwright.errors import OperationalError, ToolError, VerificationFailed
from bitwright.fileio import write_text_atomic
from bitwright.image.oci import OciImage, read_oci_archive
from bitwright.pins import DVC_ENV

__all__ = [
    "STORE_ENV",
    "ImageStore",
    "archive_md5",
    "fetch_from_remote",
    "push_to_remote",
]

STORE_ENV = "BITWRIGHT_IMAGE_STORE"
"""Environment variable naming the local image store (default: under the XDG cache)."""

_CHUNK = 1 << 20


class ImageStore:
    """The local store of image archives and of the inputs image builds take."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_store()

    @property
    def debs(self) -> Path:
        """The ``.deb`` cache."""
        return self.root / "debs"

    @property
    def wheels(self) -> Path:
        """The wheel cache."""
        return self.root / "wheels"

    def archive_path(self, digest: str) -> Path:
        """Where the archive of the image with manifest ``digest`` is kept."""
        return self.root / f"{digest.replace(':', '-')}.oci.tar"

    def find(self, digest: str) -> tuple[Path, OciImage] | None:
        """Return the kept archive of ``digest`` and its image, once every digest held.

        Raises:
            VerificationFailed: an archive is kept under that digest but does not hold it.
        """
        path = self.archive_path(digest)
        if not path.is_file():
            return None
        return path, read_oci_archive(path, digest=digest)

    def keep(self, archive: Path, image: OciImage) -> Path:
        """Move ``archive`` (of ``image``) into the store; return where it now is."""
        target = self.archive_path(image.digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(archive, target)
        return target

    def scratch(self) -> tempfile.TemporaryDirectory[str]:
        """A scratch directory beside the store (same file system: archives move by rename)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".build-", dir=self.root)


def default_store() -> Path:
    """``$BITWRIGHT_IMAGE_STORE``, else ``$XDG_CACHE_HOME/bitwright/images`` (``~/.cache``)."""
    configured = os.environ.get(STORE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "bitwright" / "images"


def archive_md5(path: Path) -> str:
    """The md5 of a file: DVC's address of it in a remote."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _dvc(scratch: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "dvc"]  # the DVC of bitwright's own environment
    env = {**os.environ, **DVC_ENV}
    return subprocess.run(
        [*argv, *args], cwd=scratch, env=env, capture_output=True, text=True, check=False
    )


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr + done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def _scratch_project(scratch: Path, project: Path | None, remote_url: str) -> None:
    """A DVC project in ``scratch`` with the project's remotes, or with ``remote_url`` alone."""
    done = _dvc(scratch, "init", "--no-scm", "-q")
    if done.returncode != 0:
        raise ToolError(f"dvc init failed: {done.stderr.strip()}", hint="check the DVC install")
    config = scratch / ".dvc" / "config"
    if remote_url:
        write_text_atomic(
            config,
            f"[core]\n    no_scm = true\n    remote = image\n"
            f"['remote \"image\"']\n    url = {remote_url}\n",
        )
        return
    for level in ("config", "config.local"):
        source = project / ".dvc" / level if project is not None else None
        if source is not None and source.is_file():
            shutil.copyfile(source, scratch / ".dvc" / level)
    _dvc(scratch, "config", "core.no_scm", "true")  # the project's config assumes git


def push_to_remote(archive: Path, project: Path) -> str:
    """Store ``archive`` in the project's default DVC remote; return its md5 (its address).

    Raises:
        ToolError: DVC could not add or push it (no remote, no access).
    """
    with tempfile.TemporaryDirectory(prefix="bitwright-image-") as tmp:
        scratch = Path(tmp)
        _scratch_project(scratch, project, "")
        try:  # a hard link where the store and the temporary directory share a disk
            os.link(archive, scratch / "image.oci.tar")
        except OSError:
            shutil.copyfile(archive, scratch / "image.oci.tar")
        for args in (("add", "-q", "image.oci.tar"), ("push", "-q", "image.oci.tar.dvc")):
            done = _dvc(scratch, *args)
            if done.returncode != 0:
                reason = _last_line(done)
                raise ToolError(
                    f"cannot store the image archive in the DVC remote: dvc {args[0]}: {reason}",
                    hint="configure a default remote (`dvc remote add -d NAME URL`)",
                )
    return archive_md5(archive)


def fetch_from_remote(
    digest: str, md5: str, size: int, *, project: Path | None, remote_url: str, store: ImageStore
) -> tuple[Path, OciImage]:
    """Fetch the archive of image ``digest`` from a DVC remote by md5 and keep it in ``store``.

    ``remote_url`` is used when given, else the remotes of ``project``.

    Raises:
        OperationalError: the remote does not hold it, or DVC could not reach the remote.
        VerificationFailed: what arrived is not the image ``digest``.
    """
    where = remote_url or (f"the DVC remote of {project}" if project else "no DVC remote")
    with store.scratch() as tmp:
        scratch = Path(tmp)
        _scratch_project(scratch, project, remote_url)
        write_text_atomic(
            scratch / "image.oci.tar.dvc",
            f"outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: image.oci.tar\n",
        )
        done = _dvc(scratch, "pull", "-q", "image.oci.tar.dvc")
        archive = scratch / "image.oci.tar"
        if done.returncode != 0 or not archive.is_file():
            reason = _last_line(done)
            raise OperationalError(
                f"{where} does not give the archive of build image {digest} (md5 {md5}): {reason}",
                hint="ask the maintainer to store it (`bitwright image build --push`), or "
                "rebuild it from the recipe at the source commit (`bitwright image build`)",
            )
        try:
            image = read_oci_archive(archive, digest=digest)
        except VerificationFailed as exc:
            raise VerificationFailed(
                f"the archive {where} gives for build image {digest} is not that image: "
                f"{exc.message}",
                hint="the remote holds altered bytes; refusing them",
            ) from None
        stored = store.keep(archive, image)
    return stored, image
