"""sha256 of single files and of many files in parallel: equal to hashlib, errors named."""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitwright.digest import CHUNK_SIZE, sha256_file, sha256_files
from bitwright.errors import OperationalError


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17]
)
def test_file_digest_equals_hashlib_at_chunk_boundaries(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    assert sha256_file(path) == _hex(data)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=5000))
def test_file_digest_of_random_content_equals_hashlib(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f"
        path.write_bytes(data)
        assert sha256_file(path) == _hex(data)


@settings(max_examples=15, deadline=None)
@given(
    blobs=st.lists(st.binary(max_size=3000), min_size=1, max_size=30),
    workers=st.sampled_from([1, 2, 5]),
)
def test_many_files_in_parallel_equal_hashlib_in_given_order(
    blobs: list[bytes], workers: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for index, blob in enumerate(blobs):
            path = Path(tmp) / f"f{index}"
            path.write_bytes(blob)
            paths.append(path)
        paths.reverse()

        digests = sha256_files(paths, workers=workers)

        assert list(digests) == paths
        assert digests == {p: _hex(p.read_bytes()) for p in paths}


def test_large_and_small_files_together_report_every_byte(tmp_path: Path) -> None:
    paths = []
    for index, size in enumerate([9 * CHUNK_SIZE + 3, 10, 0, 5000] * 2):
        path = tmp_path / f"f{index}"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    seen: list[int] = []
    lock = threading.Lock()

    def on_bytes(n: int) -> None:
        with lock:
            seen.append(n)

    digests = sha256_files(paths, workers=3, on_bytes=on_bytes)

    assert digests == {p: _hex(p.read_bytes()) for p in paths}
    assert sum(seen) == sum(p.stat().st_size for p in paths)


def test_relative_and_symlinked_paths_are_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "real").write_bytes(b"content")
    (tmp_path / "link").symlink_to("real")
    monkeypatch.chdir(tmp_path)

    digests = sha256_files([Path("real"), Path("link")])

    assert digests == {Path("real"): _hex(b"content"), Path("link"): _hex(b"content")}


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match=r"nope\.bin: no such file") as info:
        sha256_file(tmp_path / "nope.bin")
    assert info.value.hint


def test_dangling_symlink_is_named(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")

    with pytest.raises(OperationalError, match="dangling: broken symlink"):
        sha256_file(tmp_path / "dangling")


def test_directory_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match="is a directory") as info:
        sha256_file(tmp_path)
    assert "tree" in info.value.hint


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            sha256_files([tmp_path / "pipe"])
        except OperationalError as exc:
            errors.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=10)

    assert not worker.is_alive(), "hashing a fifo blocked"
    assert len(errors) == 1
    assert "pipe: is a fifo" in str(errors[0])


def test_socket_is_refused() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:  # AF_UNIX paths are short
        path = Path(tmp) / "s"
        server = socket.socket(socket.AF_UNIX)
        try:
            server.bind(str(path))
            with pytest.raises(OperationalError, match="is a socket"):
                sha256_file(path)
        finally:
            server.close()


def test_character_device_is_refused() -> None:
    with pytest.raises(OperationalError, match="/dev/null: is a character device"):
        sha256_file(Path("/dev/null"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_named_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"x")
    path.chmod(0)
    try:
        with pytest.raises(
            OperationalError, match="secret: cannot open: permission denied"
        ) as info:
            sha256_file(path)
        assert "chmod" in info.value.hint
    finally:
        path.chmod(0o600)


def test_file_growing_while_hashed_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(os.urandom(4 * CHUNK_SIZE))

    def append(_: int) -> None:
        with path.open("ab") as stream:
            stream.write(b"more")

    with pytest.raises(OperationalError, match="log: changed while it was being hashed"):
        sha256_files([path], on_bytes=append)


def test_proc_file_with_unknown_size_is_not_trusted() -> None:
    # /proc files claim size 0 yet yield bytes: a digest of them would describe nothing stable.
    with pytest.raises(OperationalError, match="status: claims 0 bytes but [0-9]+ were read"):
        sha256_file(Path("/proc/self/status"))


def test_one_failure_among_many_files_names_it(tmp_path: Path) -> None:
    paths = []
    for index in range(40):
        path = tmp_path / f"f{index}"
        path.write_bytes(os.urandom(1000))
        paths.append(path)
    paths.insert(17, tmp_path / "missing")

    with pytest.raises(OperationalError, match="missing: no such file"):
        sha256_files(paths, workers=4)
