"""``bitwright image build``: the build image from pinned inputs, the same bytes on any machine.

The steps::

    recipe + lock      containers/image.toml, containers/images.lock (refused if they drifted)
    inputs             the locked .debs and wheels, from the store or downloaded and checked;
                       resolved anew from the apt sources and the project's lock only on a
                       first build or with --update
    root file system   mmdebstrap from exactly those .debs, then the wheels unpacked
    layer              a normalized tar of it (normtar.py)
    archive            an OCI image archive (oci.py); its manifest digest is the pin
    lock               written when the image or its inputs changed; a build from the locked
                       inputs that gives another digest is refused: it does not reproduce
    podman, remote     loaded into podman; stored in the DVC remote with --push
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bitwright.errors import OperationalError, VerificationFailed
from bitwright.image.debian import DebCache, bootstrap_root, resolve_packages
from bitwright.image.normtar import HashingWriter, write_normalized_tar
from bitwright.image.obtain import load_archive
from bitwright.image.oci import ImageConfig, OciImage, write_oci_archive
from bitwright.image.recipe import RECIPE_PATH, ImageRecipe, read_recipe
from bitwright.image.store import ImageStore, push_to_remote
from bitwright.image.wheels import (
    WheelCache,
    check_drift,
    compile_bytecode,
    install_wheels,
    project_lock,
    resolve_wheels,
)
from bitwright.model.digests import Sha256
from bitwright.pins.container import (
    LOCK_PATH,
    DebianPackage,
    ImageLock,
    PythonWheel,
    read_image_lock,
    recipe_sha256,
    write_image_lock,
)
from bitwright.runner import probe_podman

__all__ = ["ImageBuild", "build_image"]

Notify = Callable[[str], None]

_UPDATE = "rebuild and relock the image from fresh inputs: `bitwright image build --update`"


@dataclass(frozen=True)
class ImageBuild:
    """A finished image build.

    Attributes:
        lock: the lock entry of the image (written to ``containers/images.lock``).
        image: the archive's image (its manifest digest is the pin).
        archive: where the archive is kept (the local image store).
        reproduced: the lock pinned this digest before, and the build gave it again.
        resolved: the inputs were resolved anew (a first build, or ``--update``).
        loaded: podman now holds the image by digest.
        pushed: the archive was stored in the project's DVC remote.
    """

    lock: ImageLock
    image: OciImage
    archive: Path
    reproduced: bool
    resolved: bool
    loaded: bool
    pushed: bool


def build_image(
    repo: Path,
    *,
    update: bool = False,
    load: bool = True,
    push: bool = False,
    store: ImageStore | None = None,
    notify: Notify = lambda _: None,
) -> ImageBuild:
    """Build the image of ``repo``'s recipe (see the module doc) and lock it.

    Args:
        repo: the project root (``containers/image.toml`` and ``containers/images.lock``).
        update: resolve the inputs anew instead of taking the locked ones.
        load: load the image into podman (when podman is installed).
        push: store the archive in the project's default DVC remote.
        store: the local image store (default: :class:`~bitwright.image.store.ImageStore`).
        notify: progress lines.

    Raises:
        OperationalError: the recipe or lock drifted, an input cannot be had or was altered,
            a tool failed, or the image does not reproduce the locked digest.
        UsageError: the recipe is invalid.
    """
    if os.geteuid() != 0:
        raise OperationalError(
            "bitwright image build runs mmdebstrap as root, and this is not root",
            hint="run it as root (sudo), or fetch the image its lock pins from the DVC remote",
        )
    repo = repo.resolve()
    store = store or ImageStore()
    recipe = read_recipe(repo)
    previous = None if update or not (repo / LOCK_PATH).exists() else read_image_lock(repo)
    recipe_digest = recipe_sha256(repo, recipe.path)
    lock = project_lock()
    if previous is not None:
        _refuse_drift(recipe, previous, recipe_digest, lock)
    with store.scratch() as tmp, _umask(0o022):
        scratch = Path(tmp)
        inputs = _gather(recipe, previous, lock, store, scratch, notify, repo / LOCK_PATH)
        archive, image, md5 = _assemble(inputs, scratch, notify)
        kept = store.keep(archive, image)
    if previous is not None and image.digest != previous.digest:
        raise OperationalError(
            f"the image built from the locked inputs is {image.digest}, the lock pins "
            f"{previous.digest}: it does not reproduce here (archive kept in {kept})",
            hint="compare the two archives' layers (tar --list) to find what differs",
        )
    entry = ImageLock(
        name=recipe.name,
        digest=image.digest,
        recipe=RECIPE_PATH,
        recipe_sha256=recipe_digest,
        archive_sha256=Sha256(image.archive_sha256),
        archive_md5=md5,
        archive_size=image.archive_size,
        debian=inputs.debian,
        python=inputs.python,
    )
    if entry != previous:
        write_image_lock(repo, entry)
        notify(f"locked {image.digest} in {LOCK_PATH}")
    loaded = load and probe_podman() is not None
    if loaded:
        notify("loading the image into podman")
        load_archive(kept, image)
    if push:
        notify("storing the archive in the DVC remote")
        push_to_remote(kept, repo)
    return ImageBuild(entry, image, kept, previous is not None, previous is None, loaded, push)


@dataclass(frozen=True)
class _Inputs:
    """Everything the image is made of, each input at hand in its cache."""

    recipe: ImageRecipe
    debian: tuple[DebianPackage, ...]
    python: tuple[PythonWheel, ...]
    debs: DebCache
    wheels: WheelCache


def _gather(
    recipe: ImageRecipe,
    previous: ImageLock | None,
    lock: dict[str, str],
    store: ImageStore,
    scratch: Path,
    notify: Notify,
    lock_file: Path,
) -> _Inputs:
    """The locked inputs (of ``lock_file``), each checked, or (no lock) the inputs resolved anew.

    A source serving other bytes than the lock records, or no longer serving a locked
    version, stops the build (exit 3).
    """
    debs, wheels = DebCache(store.debs), WheelCache(store.wheels)
    if previous is None:
        debian = resolve_packages(recipe, debs, scratch, notify)
        python = resolve_wheels(recipe, lock, wheels, scratch, notify)
        return _Inputs(recipe, debian, python, debs, wheels)
    try:
        debs.fetch(previous.debian, scratch / "debs", notify, lock_file=lock_file)
        wheels.fetch(recipe, previous.python, scratch, notify)
    except VerificationFailed as exc:
        raise OperationalError(exc.message, hint=exc.hint) from None
    return _Inputs(recipe, previous.debian, previous.python, debs, wheels)


def _refuse_drift(
    recipe: ImageRecipe, previous: ImageLock, recipe_digest: str, lock: dict[str, str]
) -> None:
    if previous.recipe_sha256 != recipe_digest:
        raise OperationalError(
            f"{recipe.path} changed since {LOCK_PATH} was written: the locked inputs are no "
            "longer what the recipe asks for",
            hint=_UPDATE,
        )
    drift = check_drift(recipe, previous.python, lock)
    if drift:
        raise OperationalError(
            f"{LOCK_PATH} drifted from the project's Python lock: {'; '.join(drift[:3])}",
            hint=_UPDATE,
        )


def _assemble(inputs: _Inputs, scratch: Path, notify: Notify) -> tuple[Path, OciImage, str]:
    """The root file system, its layer and the archive; the archive's md5 on the way."""
    recipe, root = inputs.recipe, scratch / "root"
    notify(f"bootstrapping {len(inputs.debian)} Debian package(s) with mmdebstrap")
    bootstrap_root(recipe, inputs.debian, inputs.debs, scratch, root)
    notify(f"installing {len(inputs.python)} wheel(s)")
    install_wheels(recipe, inputs.python, inputs.wheels, root)
    if inputs.python:
        notify("compiling their bytecode with the image's Python")
        compile_bytecode(recipe, root)
    notify("writing the normalized layer")
    layer = scratch / "layer.tar"
    with layer.open("wb") as sink:
        written = write_normalized_tar(root, sink, epoch=recipe.source_date_epoch, empty=("dev",))
    created = dt.datetime.fromtimestamp(recipe.source_date_epoch, dt.UTC)
    config = ImageConfig(
        env=recipe.env, workdir=recipe.workdir, created=created.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    archive = scratch / "image.oci.tar"
    with archive.open("wb") as sink:
        md5 = HashingWriter(sink, "md5")  # DVC's address of the archive, on the same pass
        image = write_oci_archive(
            layer,
            written.sha256,
            config,
            name=recipe.name,
            epoch=recipe.source_date_epoch,
            sink=md5,
        )
    layer.unlink()
    notify(f"image {image.digest} ({written.entries} files, {written.size >> 20} MiB)")
    return archive, image, md5.hash.hexdigest()


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    """Files the build creates get the same modes whatever the caller's umask."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)
