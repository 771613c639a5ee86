"""A byte-reproducible tarball of a release directory (sorted, fixed owners and times)."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

from bitwright.fileio import open_atomic

__all__ = ["write_tarball"]


def _normalize(info: tarfile.TarInfo, mtime: int) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
    return info


def write_tarball(directory: Path, target: Path, *, mtime: int) -> Path:
    """Write ``directory`` as ``target`` (.tar.gz) whose bytes depend only on the files' content.

    Entries are sorted, owned by 0:0, dated ``mtime`` (the commit time), and the gzip header
    carries no name or time. The file is written beside ``target`` and renamed into place
    (:func:`~bitwright.fileio.open_atomic`).
    """
    root = directory.name
    with (
        open_atomic(target) as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(_normalize(tar.gettarinfo(str(directory), arcname=root), mtime))
        for path in sorted(directory.rglob("*"), key=lambda p: p.as_posix()):
            arcname = f"{root}/{path.relative_to(directory).as_posix()}"
            info = _normalize(tar.gettarinfo(str(path), arcname=arcname), mtime)
            if info.isfile():
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return target
