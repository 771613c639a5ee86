"""Obtain a build image by its digest: from podman, the local store, or the DVC remote.

Podman is asked for ``NAME@sha256:DIGEST``: it holds an image under a digest only after it
checked every blob of it on load. Otherwise the archive is taken from the local store or
fetched from the DVC remote, checked blob by blob (:func:`~bitwright.image.oci.read_oci_archive`),
loaded, and podman is asked again. An image podman holds under the name but with another
digest is never used: stages run by digest, and the message names both.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bitwright.errors import OperationalError, ToolError, VerificationFailed
from bitwright.image.oci import OciImage
from bitwright.image.store import ImageStore, fetch_from_remote
from bitwright.model.pins import ContainerPin
from bitwright.runner import image_reference, podman_command, probe_podman

__all__ = ["Obtained", "load_archive", "obtain_image", "podman_digests"]

Notify = Callable[[str], None]


@dataclass(frozen=True)
class Obtained:
    """Where an image was found: ``"podman"``, ``"store"`` or ``"remote"``, and its archive."""

    source: str
    archive: Path | None = None


def podman_digests(reference: str) -> tuple[str, ...]:
    """The manifest digests podman holds for ``reference`` (none when it holds no such image).

    Without podman installed, it holds none.
    """
    if probe_podman() is None:
        return ()
    done = subprocess.run(
        [*podman_command(), "image", "inspect", "--format", "{{json .RepoDigests}}", reference],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        return ()
    try:
        names = json.loads(done.stdout.strip() or "[]")
    except ValueError:
        return ()
    return tuple(sorted({str(n).rsplit("@", 1)[-1] for n in names or () if "@" in str(n)}))


def load_archive(archive: Path, image: OciImage) -> None:
    """``podman load`` a checked archive and make sure podman holds it under its digest.

    Raises:
        ToolError: podman refused the archive, or holds it under another digest.
    """
    done = subprocess.run(
        [*podman_command(), "load", "--quiet", "--input", str(archive)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise ToolError(
            f"podman load {archive} failed: {done.stderr.strip().splitlines()[-1:]}",
            hint="check podman (`podman info`) and the disk space of its storage",
        )
    reference = image_reference(image.name, image.digest)
    if image.digest not in podman_digests(reference):
        raise ToolError(
            f"podman loaded {archive} but holds no {reference}",
            hint="podman changed the image on load; load it with podman 4.3 or newer",
        )


def obtain_image(
    pin: ContainerPin,
    *,
    project: Path | None,
    store: ImageStore | None = None,
    remote: bool = True,
    load: bool = True,
    notify: Notify = lambda _: None,
) -> Obtained:
    """Make sure the image of ``pin`` is at hand and checked, obtaining it if it must.

    With ``load`` podman must end up holding it by digest (a build is about to run it);
    without, a checked archive in the local store is enough (verify only checks it).

    Args:
        pin: the image (name, manifest digest, archive md5 and size, remote).
        project: the repository whose DVC remotes may hold the archive.
        store: the local store (default: :func:`~bitwright.image.store.default_store`).
        remote: whether the DVC remote may be asked.
        load: load an archive into podman (a build needs podman to hold the image).
        notify: progress lines.

    Raises:
        OperationalError: the image cannot be obtained (the message names its digest): no
            source has it, or what one has is not that image (altered or damaged bytes).
    """
    reference = image_reference(pin.image, pin.digest)
    if pin.digest in podman_digests(reference):
        return Obtained("podman")
    store = store or ImageStore()
    try:
        found = store.find(pin.digest)
    except VerificationFailed as exc:
        raise _unobtainable(pin, exc.message, _ALTERED) from None
    source = "store"
    remote_url = pin.remote_url if _reachable(pin.remote_url) else ""
    asked = "there is no DVC remote to ask" if remote else "the DVC remote was not asked"
    if found is None and remote and (remote_url or project is not None):
        notify(f"fetching build image {pin.digest} from the DVC remote")
        try:
            found = fetch_from_remote(
                pin.digest,
                pin.archive_md5,
                pin.archive_size,
                project=project,
                remote_url=remote_url,
                store=store,
            )
        except VerificationFailed as exc:
            raise _unobtainable(pin, exc.message, _ALTERED) from None
        except OperationalError as exc:
            asked = exc.message
        source = "remote"
    if found is None:
        held = podman_digests(pin.image)
        also = f"; podman holds {pin.image} as {', '.join(held)} only" if held else ""
        raise _unobtainable(
            pin,
            f"podman does not hold it, the image store {store.root} has no archive of it, and "
            f"{asked}{also}",
            "build it from the recipe (`bitwright image build` at the source commit), or "
            "fetch its archive from the maintainer's DVC remote",
        )
    archive, image = found
    if load:
        notify(f"loading build image {pin.digest} into podman")
        load_archive(archive, image)
    return Obtained(source, archive)


_ALTERED = "the archive is damaged or altered: refusing it; fetch or build the image again"


def _unobtainable(pin: ContainerPin, why: str, hint: str) -> OperationalError:
    return OperationalError(
        f"build image {pin.digest} ({pin.image}) cannot be obtained: {why}", hint=hint
    )


def _reachable(url: str) -> bool:
    """A remote URL worth asking: any URL, or a local directory this machine has."""
    if not url:
        return False
    return "://" in url or Path(url).is_dir()
