"""The normalized tar: the same tree gives the same bytes however and wherever it was made."""

from __future__ import annotations

import io
import os
import socket
import tarfile
from pathlib import Path

import pytest

from bitwright.image.normtar import write_normalized_tar

EPOCH = 1_735_689_600


def make_tree(root: Path, order: list[str], *, mtime: int, mode: int = 0o644) -> Path:
    """A small root file system: files written in ``order``, a link, a hard link, dirs."""
    contents = {"etc/hostname": b"bitwright\n", "usr/bin/tool": b"#!/bin/sh\n", "a": b"A"}
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(contents[name])
        os.chmod(path, mode)
    os.chmod(root / "usr/bin/tool", 0o755)
    (root / "usr/bin/alias").symlink_to("tool")
    os.link(root / "usr/bin/tool", root / "usr/bin/tool-again")
    (root / "dev").mkdir()
    (root / "dev/junk").write_bytes(b"left out")
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            os.chmod(path, 0o755)
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def tar_of(root: Path) -> bytes:
    sink = io.BytesIO()
    digest = write_normalized_tar(root, sink, epoch=EPOCH, empty=("dev",))
    data = sink.getvalue()
    assert digest.size == len(data)
    return data


def test_same_tree_made_differently_elsewhere_gives_the_same_bytes(tmp_path: Path) -> None:
    """Creation order, mtimes newer than the epoch, owners and location do not matter."""
    first = make_tree(tmp_path / "one", ["a", "etc/hostname", "usr/bin/tool"], mtime=EPOCH + 99)
    second = make_tree(
        tmp_path / "x" / "two", ["usr/bin/tool", "etc/hostname", "a"], mtime=EPOCH + 5
    )
    if os.geteuid() == 0:
        os.lchown(second / "a", 1234, 4321)
    assert tar_of(first) == tar_of(second)


def test_headers_are_normalized_and_links_kept(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r", ["a", "etc/hostname", "usr/bin/tool"], mtime=EPOCH + 1000)
    data = tar_of(root)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == [
        "a", "dev", "etc", "etc/hostname", "usr", "usr/bin", "usr/bin/alias", "usr/bin/tool",
        "usr/bin/tool-again",
    ]  # fmt: skip
    assert all((m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "") for m in members)
    assert all(m.mtime == EPOCH for m in members)
    assert all(not m.pax_headers for m in members)  # no atime, ctime or xattrs
    by_name = {m.name: m for m in members}
    assert by_name["usr/bin/alias"].issym() and by_name["usr/bin/alias"].linkname == "tool"
    assert by_name["usr/bin/tool-again"].islnk()
    assert by_name["usr/bin/tool-again"].linkname == "usr/bin/tool"
    assert by_name["usr/bin/tool"].mode == 0o755


@pytest.mark.parametrize(
    "change",
    [
        lambda r: (r / "a").write_bytes(b"B"),
        lambda r: os.chmod(r / "a", 0o600),
        lambda r: ((r / "usr/bin/alias").unlink(), (r / "usr/bin/alias").symlink_to("other")),
        lambda r: os.utime(r / "a", (EPOCH - 10, EPOCH - 10)),  # an older mtime is kept
    ],
)
def test_every_difference_that_matters_changes_the_bytes(tmp_path: Path, change) -> None:  # type: ignore[no-untyped-def]
    root = make_tree(tmp_path / "r", ["a", "etc/hostname", "usr/bin/tool"], mtime=EPOCH + 1)
    before = tar_of(root)
    change(root)
    assert tar_of(root) != before


def test_a_symlink_out_is_a_link_never_followed(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    secret = tmp_path / "secret"
    secret.write_bytes(b"outside")
    (root / "escape").symlink_to(secret)
    data = tar_of(root)
    assert b"outside" not in data
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getmember("escape").linkname == str(secret)


def test_fifos_are_kept_and_sockets_left_out(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    os.mkfifo(root / "pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock"))
        data = tar_of(root)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert [(m.name, m.isfifo()) for m in tar.getmembers()] == [("pipe", True)]
