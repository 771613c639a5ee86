"""The OCI archive: its manifest digest follows from the files; a hostile archive is refused."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bitwright.errors import OperationalError, VerificationFailed
from bitwright.image.normtar import write_normalized_tar
from bitwright.image.oci import ImageConfig, OciImage, read_oci_archive, write_oci_archive
from bitwright.image.store import ImageStore

EPOCH = 1_735_689_600
CONFIG = ImageConfig(env=("PATH=/usr/bin:/bin",), workdir="/", created="2025-01-01T00:00:00Z")


def archive(tmp_path: Path, name: str = "localhost/t:1", content: bytes = b"hello\n") -> Path:
    """The archive of a one-file image."""
    root = tmp_path / f"root-{hashlib.sha256(name.encode() + content).hexdigest()[:8]}"
    (root / "etc").mkdir(parents=True)
    (root / "etc/greeting").write_bytes(content)
    layer = root.with_suffix(".layer")
    with layer.open("wb") as sink:
        digest = write_normalized_tar(root, sink, epoch=EPOCH)
    out = root.with_suffix(".oci.tar")
    with out.open("wb") as sink:
        write_oci_archive(layer, digest.sha256, CONFIG, name=name, epoch=EPOCH, sink=sink)
    return out


def written(path: Path) -> OciImage:
    return read_oci_archive(path)


def test_an_archive_reads_back_with_the_digest_of_its_manifest(tmp_path: Path) -> None:
    path = archive(tmp_path)
    image = read_oci_archive(path)
    with tarfile.open(path) as tar:
        manifest = tar.extractfile(f"blobs/sha256/{image.digest[7:]}").read()  # type: ignore[union-attr]
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    assert image.digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert index["manifests"][0]["digest"] == image.digest
    assert image.name == "localhost/t:1"
    assert image.archive_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert image.archive_size == path.stat().st_size


def test_the_name_changes_the_archive_but_not_the_manifest_digest(tmp_path: Path) -> None:
    one, other = written(archive(tmp_path, "localhost/a:1")), written(archive(tmp_path, "x/b:2"))
    assert one.digest == other.digest
    assert one.archive_sha256 != other.archive_sha256


def test_one_changed_file_is_another_image(tmp_path: Path) -> None:
    assert (
        written(archive(tmp_path)).digest != written(archive(tmp_path, content=b"hellO\n")).digest
    )


def test_asking_for_another_digest_is_refused_naming_both(tmp_path: Path) -> None:
    path = archive(tmp_path)
    held = read_oci_archive(path).digest
    with pytest.raises(VerificationFailed, match=f"holds no image sha256:{'1' * 64}.*{held}"):
        read_oci_archive(path, digest="sha256:" + "1" * 64)


def rewrite(
    path: Path, change: Callable[[tarfile.TarInfo, bytes], list[tuple[tarfile.TarInfo, bytes]]]
) -> None:
    """Rewrite the archive at ``path`` member by member through ``change``."""
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar]  # type: ignore[union-attr]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members:
            for new, body in change(member, data):
                new.size = len(body) if new.isreg() else 0
                tar.addfile(new, io.BytesIO(body) if new.isreg() else None)
    path.write_bytes(out.getvalue())


def flip_layer_byte(member: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    if len(data) > 2000:  # the layer
        data = data.replace(b"hello", b"HELLO")
    return [(member, data)]


def add_symlink(member: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    extra = []
    if member.name == "oci-layout":
        link = tarfile.TarInfo("blobs/sha256/evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        extra.append((link, b""))
    return [(member, data), *extra]


def climb(member: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    if member.name == "oci-layout":
        member.name = "../oci-layout"
    return [(member, data)]


def deep_index(member: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    if member.name == "index.json":
        data = b'{"manifests": ' + b"[" * 100 + b"]" * 100 + b"}"
    return [(member, data)]


def huge_index(member: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    if member.name == "index.json":
        data = data[:-1] + b', "pad": "' + b"x" * (2 << 20) + b'"}'
    return [(member, data)]


def many_members(member: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    if member.name != "oci-layout":
        return [(member, data)]
    copies = []
    for n in range(300):
        body = str(n).encode()
        copy = tarfile.TarInfo(f"blobs/sha256/{hashlib.sha256(body).hexdigest()}")
        copies.append((copy, body))
    return [(member, data), *copies]


def twice(member: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    return [(member, data), (member, data)] if member.name == "index.json" else [(member, data)]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (flip_layer_byte, "holds bytes with sha256"),
        (add_symlink, "unexpected entry"),
        (climb, "unexpected entry"),
        (deep_index, "nested 101 levels deep"),
        (huge_index, "missing or too large"),
        (many_members, "more than 256 entries"),
        (twice, "appears twice"),
    ],
)
def test_hostile_archive_is_refused(tmp_path: Path, change, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = archive(tmp_path)
    rewrite(path, change)
    with pytest.raises(VerificationFailed, match=problem):
        read_oci_archive(path)


def test_not_a_tar_a_fifo_or_a_symlink_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(VerificationFailed, match="not a tar archive|index.json is missing"):
        read_oci_archive(junk)
    fifo = tmp_path / "fifo.tar"
    os.mkfifo(fifo)
    with pytest.raises(OperationalError, match="FIFO"):
        read_oci_archive(fifo)
    link = tmp_path / "link.tar"
    link.symlink_to(archive(tmp_path))
    with pytest.raises(OperationalError, match="symbolic link"):
        read_oci_archive(link)


def test_the_store_refuses_an_archive_kept_under_a_digest_it_does_not_hold(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    good = archive(tmp_path)
    image = read_oci_archive(good)
    kept = store.keep(good, image)
    assert store.find(image.digest) == (kept, image)
    assert store.find("sha256:" + "2" * 64) is None
    other = archive(tmp_path, content=b"changed\n")  # one changed file: another digest
    os.replace(other, kept)
    with pytest.raises(VerificationFailed, match="holds no image"):
        store.find(image.digest)
