"""The OCI image archive: written from one layer, and read back only after every digest holds.

An archive is a tar (normalized like the layer: see :mod:`.normtar`) of an OCI image layout::

    blobs/sha256/<config>     the image configuration (canonical JSON)
    blobs/sha256/<layer>      the root file system, an uncompressed tar
    blobs/sha256/<manifest>   the manifest (canonical JSON); its sha256 is the image's pin
    index.json                names the manifest (``org.opencontainers.image.ref.name``)
    oci-layout                ``{"imageLayoutVersion":"1.0.0"}``

The layer is left uncompressed: a compressor's bytes depend on its version, and the manifest
digest would then differ between machines that hold the same files. The name lives only in
``index.json``, so the manifest digest does not depend on what the image is called.

Reading treats the archive as hostile: only regular members with expected names, a bounded
number of them, every blob's bytes hashing to its name, JSON documents bounded in size and
depth, and the manifest that was asked for.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from bitwright.errors import VerificationFailed
from bitwright.fileio import load_json, open_regular
from bitwright.image.normtar import ByteSink, HashingWriter

__all__ = [
    "CONFIG_MEDIA_TYPE",
    "LAYER_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "ImageConfig",
    "OciImage",
    "read_oci_archive",
    "write_oci_archive",
]

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"

_MAX_MEMBERS = 256
_MAX_DOCUMENT = 1 << 20
_MAX_DEPTH = 16
_CHUNK = 1 << 20
_BLOB = re.compile(r"blobs/sha256/([0-9a-f]{64})")
_DIRECTORIES = {"blobs", "blobs/sha256"}
_DOCUMENTS = {"index.json", "oci-layout"}
_DAMAGED = "the image archive is damaged or altered: fetch it again, or rebuild the image"


@dataclass(frozen=True)
class ImageConfig:
    """What the image configuration says besides its layers.

    Attributes:
        env: ``NAME=value`` lines every container of the image starts with.
        workdir: the working directory of a container.
        created: RFC 3339 UTC time of ``SOURCE_DATE_EPOCH``.
        architecture: the OCI architecture (``amd64``).
        labels: free annotations of the image (the recipe's digest).
    """

    env: tuple[str, ...]
    workdir: str
    created: str
    architecture: str = "amd64"
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OciImage:
    """An image archive that was written or checked.

    Attributes:
        digest: the manifest digest, ``sha256:<hex>``: what podman runs and the lock pins.
        name: the reference name recorded in ``index.json``.
        config_digest: ``sha256:<hex>`` of the configuration (podman's image id).
        layers: ``sha256:<hex>`` of each layer.
        archive_sha256: hex sha256 of the archive's bytes.
        archive_size: its size in bytes.
    """

    digest: str
    name: str
    config_digest: str
    layers: tuple[str, ...]
    archive_sha256: str
    archive_size: int


def canonical(value: Any) -> bytes:
    """JSON with sorted keys and no spaces: the same bytes for the same value everywhere."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _descriptor(media_type: str, data_digest: str, size: int) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": f"sha256:{data_digest}", "size": size}


def write_oci_archive(
    layer: Path,
    layer_sha256: str,
    config: ImageConfig,
    *,
    name: str,
    epoch: int,
    sink: ByteSink,
) -> OciImage:
    """Write an archive of a one-layer image whose root file system is the tar ``layer``.

    Args:
        layer: the normalized tar of the root file system.
        layer_sha256: its sha256 (hex), as computed while it was written.
        config: the image configuration.
        name: the reference name for ``index.json`` (``localhost/NAME:TAG``).
        epoch: ``SOURCE_DATE_EPOCH``, the mtime of every archive entry.
        sink: where the archive's bytes go.
    """
    layer_size = layer.stat().st_size
    config_doc = canonical(
        {
            "architecture": config.architecture,
            "os": "linux",
            "created": config.created,
            "config": {
                "Env": list(config.env),
                "WorkingDir": config.workdir,
                "Labels": dict(sorted(config.labels.items())),
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_sha256}"]},
            "history": [{"created": config.created, "created_by": "bitwright image build"}],
        }
    )
    config_sha = hashlib.sha256(config_doc).hexdigest()
    manifest_doc = canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": _descriptor(CONFIG_MEDIA_TYPE, config_sha, len(config_doc)),
            "layers": [_descriptor(LAYER_MEDIA_TYPE, layer_sha256, layer_size)],
        }
    )
    manifest_sha = hashlib.sha256(manifest_doc).hexdigest()
    manifest_ref = _descriptor(MANIFEST_MEDIA_TYPE, manifest_sha, len(manifest_doc))
    index_doc = canonical(
        {
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [{**manifest_ref, "annotations": {REF_NAME: name}}],
        }
    )
    blobs = sorted([(config_sha, config_doc), (manifest_sha, manifest_doc), (layer_sha256, None)])
    writer = HashingWriter(sink)
    with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for directory in sorted(_DIRECTORIES):
            tar.addfile(_entry(directory, epoch, directory=True))
        for sha, data in blobs:
            if data is None:
                with layer.open("rb", buffering=_CHUNK) as stream:
                    tar.addfile(_entry(f"blobs/sha256/{sha}", epoch, size=layer_size), stream)
            else:
                _add_bytes(tar, f"blobs/sha256/{sha}", data, epoch)
        _add_bytes(tar, "index.json", index_doc, epoch)
        _add_bytes(tar, "oci-layout", canonical({"imageLayoutVersion": "1.0.0"}), epoch)
    writer.flush()
    return OciImage(
        digest=f"sha256:{manifest_sha}",
        name=name,
        config_digest=f"sha256:{config_sha}",
        layers=(f"sha256:{layer_sha256}",),
        archive_sha256=writer.hash.hexdigest(),
        archive_size=writer.size,
    )


def _entry(name: str, epoch: int, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    entry.mode = 0o755 if directory else 0o644
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    entry.mtime = epoch
    entry.size = size
    return entry


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, epoch: int) -> None:
    tar.addfile(_entry(name, epoch, size=len(data)), io.BytesIO(data))


@dataclass
class _Contents:
    """What one pass over an archive found: every blob's size, the small documents."""

    sizes: dict[str, int] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)


def read_oci_archive(path: Path, *, digest: str | None = None) -> OciImage:
    """Check the archive at ``path`` and return the image it holds.

    Every blob must hash to its name, and the manifest (the one with ``digest`` when given,
    else the only one) must name a configuration and layers the archive holds, with their
    sizes. The archive's own sha256 is computed on the same pass.

    Raises:
        OperationalError: the archive is missing, unreadable or not a regular file.
        VerificationFailed: it is not an OCI archive, a blob does not hash to its name, or
            it holds no manifest with ``digest``.
    """
    source = str(path)
    with open_regular(path) as handle:
        outer = HashingWriter(_NullSink())
        contents = _scan(_TeeReader(handle, outer), source)
        while chunk := handle.read(_CHUNK):  # the tar's padding after its last member
            outer.write(chunk)
    index = _document(contents, "index.json", source)
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or not manifests or len(manifests) > 16:
        raise VerificationFailed(f"{source}: index.json names no manifest", hint=_DAMAGED)
    wanted = [
        m
        for m in manifests
        if isinstance(m, dict) and (digest is None or m.get("digest") == digest)
    ]
    if len(wanted) != 1:
        named = ", ".join(str(m.get("digest")) for m in manifests if isinstance(m, dict))
        raise VerificationFailed(
            f"{source} holds no image {digest or '(exactly one expected)'}; it holds {named}",
            hint=_DAMAGED,
        )
    ref = wanted[0]
    manifest_digest = _blob_digest(ref, contents, source, "manifest")
    manifest = _document(contents, f"blobs/sha256/{manifest_digest}", source)
    if manifest.get("mediaType") != MANIFEST_MEDIA_TYPE or manifest.get("schemaVersion") != 2:
        raise VerificationFailed(
            f"{source}: the manifest is not an OCI image manifest", hint=_DAMAGED
        )
    config_digest = _blob_digest(manifest.get("config"), contents, source, "configuration")
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers:
        raise VerificationFailed(f"{source}: the manifest names no layer", hint=_DAMAGED)
    layer_digests = tuple(_blob_digest(layer, contents, source, "layer") for layer in layers)
    annotations = ref.get("annotations")
    name = annotations.get(REF_NAME, "") if isinstance(annotations, dict) else ""
    return OciImage(
        digest=f"sha256:{manifest_digest}",
        name=str(name),
        config_digest=f"sha256:{config_digest}",
        layers=tuple(f"sha256:{d}" for d in layer_digests),
        archive_sha256=outer.hash.hexdigest(),
        archive_size=outer.size,
    )


def _scan(stream: Any, source: str) -> _Contents:
    contents = _Contents()
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for count, member in enumerate(tar, start=1):
                if count > _MAX_MEMBERS:
                    raise VerificationFailed(
                        f"{source} holds more than {_MAX_MEMBERS} entries", hint=_DAMAGED
                    )
                _take(tar, member, contents, source)
    except tarfile.TarError as exc:
        raise VerificationFailed(f"{source} is not a tar archive ({exc})", hint=_DAMAGED) from None
    return contents


def _take(tar: tarfile.TarFile, member: tarfile.TarInfo, contents: _Contents, source: str) -> None:
    name = member.name.removeprefix("./").rstrip("/")
    if member.isdir() and name in _DIRECTORIES | {""}:
        return
    blob = _BLOB.fullmatch(name)
    if not member.isreg() or (blob is None and name not in _DOCUMENTS):
        raise VerificationFailed(
            f"{source}: unexpected entry {member.name!r} ({_kind(member)})", hint=_DAMAGED
        )
    if name in contents.sizes or name in contents.documents:
        raise VerificationFailed(f"{source}: {name} appears twice", hint=_DAMAGED)
    stream = tar.extractfile(member)
    assert stream is not None  # a regular member
    digest = hashlib.sha256()
    kept = bytearray()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        if len(kept) <= _MAX_DOCUMENT:
            kept += chunk
    if blob is not None:
        if digest.hexdigest() != blob.group(1):
            raise VerificationFailed(
                f"{source}: blob {blob.group(1)[:16]}... holds bytes with sha256 "
                f"{digest.hexdigest()[:16]}...",
                hint=_DAMAGED,
            )
        contents.sizes[blob.group(1)] = member.size
    if len(kept) <= _MAX_DOCUMENT:
        contents.documents[name] = bytes(kept)


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym() or member.islnk():
        return f"a link to {member.linkname!r}"
    return "a directory" if member.isdir() else "not a regular file"


def _document(contents: _Contents, name: str, source: str) -> dict[str, Any]:
    data = contents.documents.get(name)
    if data is None:
        raise VerificationFailed(f"{source}: {name} is missing or too large", hint=_DAMAGED)
    value = load_json(
        data, source=f"{source}:{name}", hint=_DAMAGED, what="an OCI document", max_depth=_MAX_DEPTH
    )
    if not isinstance(value, dict):
        raise VerificationFailed(f"{source}: {name} is not a JSON object", hint=_DAMAGED)
    return value


def _blob_digest(descriptor: Any, contents: _Contents, source: str, what: str) -> str:
    if not isinstance(descriptor, dict):
        raise VerificationFailed(f"{source}: the {what} descriptor is malformed", hint=_DAMAGED)
    match = re.fullmatch(r"sha256:([0-9a-f]{64})", str(descriptor.get("digest")))
    if match is None:
        raise VerificationFailed(f"{source}: the {what} has no sha256 digest", hint=_DAMAGED)
    hexdigest = match.group(1)
    if hexdigest not in contents.sizes:
        raise VerificationFailed(
            f"{source}: the {what} sha256:{hexdigest[:16]}... is not in the archive", hint=_DAMAGED
        )
    if descriptor.get("size") != contents.sizes[hexdigest]:
        raise VerificationFailed(
            f"{source}: the {what} sha256:{hexdigest[:16]}... has another size than its "
            "descriptor says",
            hint=_DAMAGED,
        )
    return hexdigest


class _NullSink:
    def write(self, data: bytes, /) -> int:
        return len(data)


class _TeeReader:
    """A read-only stream that passes what it reads to ``copy`` (to hash the archive once)."""

    def __init__(self, stream: BinaryIO, copy: HashingWriter) -> None:
        self.stream = stream
        self.copy = copy

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.copy.write(data)
        return data
