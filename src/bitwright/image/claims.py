"""What ``verify`` checks of a provenance's build image: the claim holds, and the image exists.

A provenance that names a build image claims the stages ran in it. The claim holds only if
every signed link ran under podman in exactly that image (its sandbox report names the
digest), and the image is one the verifier can obtain and check: podman holds it by digest,
or its archive (from the local store, or fetched from the DVC remote the provenance names)
has every blob hashing to its name. A placeholder digest of zeros is never an image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from bitwright.attest.statement import BUILD_IMAGE, Statement, dvc_parameters
from bitwright.errors import VerificationFailed
from bitwright.model.digests import Sha256
from bitwright.model.pins import ContainerPin
from bitwright.model.run import SandboxKind

if TYPE_CHECKING:
    from bitwright.image.store import ImageStore

__all__ = ["check_claimed_image"]

_HINT = "the provenance claims the stages ran in a build image, and the links disagree"


def check_claimed_image(
    statement: Statement, links: Mapping[str, Mapping[str, Any]], *, store: ImageStore | None = None
) -> str:
    """Check the build image ``statement`` names against ``links`` (file -> payload) and obtain it.

    Returns:
        One line saying what was checked.

    Raises:
        VerificationFailed: a link did not run in the image, or the claim is malformed.
        OperationalError: the image cannot be obtained (the message names its digest).
    """
    try:
        container = dvc_parameters(statement)[1].container
    except ValueError as exc:
        raise VerificationFailed(f"provenance: {exc}", hint=_HINT) from None
    if container is None:
        _refuse_podman_links(links)
        return "no build image: the stages ran on the host"
    pin = _pin(statement, container.image, container.digest, container.enforced, container.how)
    if container.enforced:
        _require_enforced(links, container.digest)
    from bitwright.image.obtain import obtain_image  # podman's machinery: only for an image

    obtained = obtain_image(pin, project=None, store=store, load=False)
    return f"build image {container.digest} obtained ({obtained.source}) and checked"


def _pin(statement: Statement, image: str, digest: str, enforced: bool, how: str) -> ContainerPin:
    dep = statement.dependency(BUILD_IMAGE)
    annotations = (dep.annotations if dep is not None else None) or {}
    md5, size, sha = (annotations.get(k) for k in ("archiveMd5", "archiveSize", "archiveSha256"))
    if not isinstance(md5, str) or not isinstance(size, int) or not isinstance(sha, str):
        raise VerificationFailed(
            "provenance: the build-image dependency does not say where its archive is "
            "(archiveMd5, archiveSize, archiveSha256)",
            hint=_HINT,
        )
    location = (dep.download_location if dep is not None else None) or ""
    return ContainerPin(
        image=image,
        digest=digest,
        archive_sha256=Sha256(sha),
        archive_md5=md5,
        archive_size=size,
        remote_url=_local_path(location),
        enforced=enforced,
        how=how,
    )


def _local_path(location: str) -> str:
    """A ``file://`` URI as the path DVC takes; any other URL as it is."""
    parts = urlsplit(location)
    return unquote(parts.path) if parts.scheme == "file" else location


def _sandbox(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    byproducts = payload.get("byproducts")
    sandbox = byproducts.get("sandbox") if isinstance(byproducts, Mapping) else None
    return sandbox if isinstance(sandbox, Mapping) else {}


def _require_enforced(links: Mapping[str, Mapping[str, Any]], digest: str) -> None:
    for name, payload in sorted(links.items()):
        sandbox = _sandbox(payload)
        if sandbox.get("kind") != SandboxKind.PODMAN.value:
            raise VerificationFailed(
                f"links/{name} ran under {sandbox.get('kind', 'no recorded sandbox')}, yet the "
                f"provenance says every stage ran in build image {digest}",
                hint=_HINT,
            )
        if sandbox.get("container_digest") != digest:
            raise VerificationFailed(
                f"links/{name} ran in image {sandbox.get('container_digest') or 'none'}, the "
                f"provenance names {digest}",
                hint=_HINT,
            )


def _refuse_podman_links(links: Mapping[str, Mapping[str, Any]]) -> None:
    ran_in: Sequence[str] = [
        name for name, payload in sorted(links.items()) if _sandbox(payload).get("container_digest")
    ]
    if ran_in:
        raise VerificationFailed(
            f"links/{ran_in[0]} ran in a build image the provenance does not name",
            hint="the provenance and the links describe different builds",
        )
