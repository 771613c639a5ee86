"""The digest cache: unchanged files are not read again, changed ones always are."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from bitwright.digest import (
    DigestCache,
    default_cache,
    default_cache_path,
    digest_tree,
    memory_cache,
    open_default_cache,
    sha256_file,
    sha256_files,
    walk_tree,
)
from bitwright.digest.identity import FileIdentity, tree_fingerprint
from bitwright.errors import OperationalError
from bitwright.model.digests import Sha256

FAKE = "f" * 64


def _settle() -> None:
    """Let written files age past the cache's racy-timestamp margin (50 ms)."""
    time.sleep(0.08)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _plant(cache: DigestCache, path: Path, digest: str) -> None:
    """Overwrite the cached digest of ``path`` for its current identity."""
    cache.store([(FileIdentity.of(os.path.abspath(path), path.stat()), Sha256(digest))])


def test_unchanged_file_is_answered_from_the_cache(tmp_path: Path, cache: DigestCache) -> None:
    path = _write(tmp_path / "weights.bin", b"a" * 4096)
    _settle()
    real = sha256_file(path, cache)
    assert cache.stats.stored == 1

    # A planted digest proves the second answer comes from the cache, not from the file.
    _plant(cache, path, FAKE)

    assert sha256_file(path, cache) == FAKE
    assert cache.stats.hits == 1
    assert sha256_file(path) == real  # without the cache the file is read


def test_cache_survives_reopening(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", b"data")
    _settle()
    with DigestCache.open(tmp_path / "c.sqlite") as first:
        digest = sha256_file(path, first)
    with DigestCache.open(tmp_path / "c.sqlite") as second:
        assert sha256_file(path, second) == digest
        assert second.stats.hits == 1


def test_same_size_rewrite_with_mtime_restored_is_read_again(
    tmp_path: Path, cache: DigestCache
) -> None:
    path = _write(tmp_path / "model.bin", b"A" * 1000)
    before = path.stat()
    _settle()
    old = sha256_file(path, cache)
    assert cache.stats.stored == 1

    path.write_bytes(b"B" * 1000)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert path.stat().st_size == before.st_size

    new = sha256_file(path, cache)
    assert new != old
    assert new == sha256_file(path)


def test_file_replaced_by_rename_is_read_again(tmp_path: Path, cache: DigestCache) -> None:
    path = _write(tmp_path / "data.csv", b"1,2,3\n")
    mtime = path.stat().st_mtime_ns
    _settle()
    old = sha256_file(path, cache)

    replacement = _write(tmp_path / "tmp", b"4,5,6\n")
    os.utime(replacement, ns=(mtime, mtime))
    os.replace(replacement, path)

    assert sha256_file(path, cache) == sha256_file(path) != old


def test_swapping_two_same_size_files_swaps_their_digests(
    tmp_path: Path, cache: DigestCache
) -> None:
    a = _write(tmp_path / "a", b"first!")
    b = _write(tmp_path / "b", b"second")
    for p in (a, b):
        os.utime(p, ns=(1_000_000_000_123, 1_000_000_000_123))
    _settle()
    before = sha256_files([a, b], cache)

    os.rename(a, tmp_path / "t")
    os.rename(b, a)
    os.rename(tmp_path / "t", b)

    after = sha256_files([a, b], cache)
    assert after == {a: before[b], b: before[a]}


def test_renamed_file_is_found_under_its_new_name_only(tmp_path: Path, cache: DigestCache) -> None:
    old_path = _write(tmp_path / "old", b"content")
    _settle()
    digest = sha256_file(old_path, cache)
    new_path = tmp_path / "new"
    os.rename(old_path, new_path)

    assert sha256_file(new_path, cache) == digest
    with pytest.raises(OperationalError, match="old: no such file"):
        sha256_file(old_path, cache)


def test_deleted_file_is_an_error_not_a_cached_digest(tmp_path: Path, cache: DigestCache) -> None:
    path = _write(tmp_path / "gone", b"x")
    _settle()
    sha256_file(path, cache)
    path.unlink()

    with pytest.raises(OperationalError, match="gone: no such file"):
        sha256_file(path, cache)


def test_freshly_written_file_is_not_cached(tmp_path: Path, cache: DigestCache) -> None:
    # Its timestamps are within the filesystem's granularity of now: a rewrite in the same
    # tick could keep its identity, so the digest must not be trusted later.
    path = _write(tmp_path / "fresh", b"x")

    sha256_file(path, cache)

    assert cache.stats.stored == 0


def test_tree_second_pass_reads_nothing(tmp_path: Path, cache: DigestCache) -> None:
    for index in range(300):  # enough files for the range-scan lookup
        _write(_mk(tmp_path, index), b"%d" % index)
    _settle()
    first = digest_tree(tmp_path / "tree", cache)
    assert cache.stats.stored == 300
    counted: list[int] = []

    second = digest_tree(tmp_path / "tree", cache, on_bytes=counted.append)

    assert second == first
    assert cache.stats.hits == 300
    assert sum(counted) == first.size


def _mk(root: Path, index: int) -> Path:
    path = root / "tree" / f"d{index % 7}" / f"f{index:03d}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_concurrent_writers_share_one_cache(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite"
    errors: list[BaseException] = []
    trees = []
    for worker in range(4):
        for index in range(60):
            path = tmp_path / f"t{worker}" / f"f{index}"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(os.urandom(64))
        trees.append(tmp_path / f"t{worker}")
    _settle()

    def run(tree: Path) -> None:
        try:
            with DigestCache.open(db) as own:  # one connection each, as separate processes have
                for _ in range(3):
                    digest_tree(tree, own, workers=2)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(tree,)) for tree in trees]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with DigestCache.open(db) as check:
        for tree in trees:
            digest_tree(tree, check)
        assert check.stats.hits == 240
        assert check.disabled_reason is None


def test_corrupt_cache_file_is_refused_by_open_and_skipped_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _write(tmp_path / "bad.sqlite", b"this is not a database" * 100)

    with pytest.raises(OperationalError, match="bad.sqlite: unusable") as info:
        DigestCache.open(bad)
    assert "delete" in info.value.hint

    monkeypatch.setenv("BITWRIGHT_DIGEST_CACHE", str(bad))
    assert default_cache() is None


def test_default_cache_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITWRIGHT_DIGEST_CACHE", "off")
    assert default_cache_path() is None
    assert default_cache() is None

    monkeypatch.delenv("BITWRIGHT_DIGEST_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "bitwright" / "digests.sqlite"
    opened = default_cache()
    assert opened is not None
    opened.close()
    assert (tmp_path / "xdg" / "bitwright" / "digests.sqlite").is_file()

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "bitwright" / "digests.sqlite"


def test_unusable_location_gives_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = _write(tmp_path / "file", b"")
    monkeypatch.setenv("BITWRIGHT_DIGEST_CACHE", str(blocker / "sub" / "digests.sqlite"))

    assert default_cache() is None


def test_broken_cache_steps_aside_instead_of_failing(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    path = _write(tmp_path / "f", b"data")
    _settle()
    with DigestCache.open(db) as opened:
        other = sqlite3.connect(db)
        other.execute("DROP TABLE file_digest")
        other.close()

        assert sha256_file(path, opened) == sha256_file(path)
        assert opened.disabled_reason is not None
        assert sha256_file(path, opened) == sha256_file(path)


def _tree(root: Path, count: int = 20) -> Path:
    for index in range(count):
        _write(_mk(root, index), b"content %d" % index)
    _settle()
    return root / "tree"


def test_unchanged_tree_is_answered_by_its_snapshot(tmp_path: Path, cache: DigestCache) -> None:
    tree = _tree(tmp_path)
    first = digest_tree(tree, cache)
    # Planted per-file digests are not even consulted: the snapshot answers.
    for path in tree.rglob("f*"):
        _plant(cache, path, FAKE)

    assert digest_tree(tree, cache) == first


def test_tree_change_same_size_mtime_restored_is_seen(tmp_path: Path, cache: DigestCache) -> None:
    tree = _tree(tmp_path)
    first = digest_tree(tree, cache)
    victim = next(iter(sorted(tree.rglob("f*"))))
    before = victim.stat()

    victim.write_bytes(b"CONTENT" + victim.read_bytes()[7:])
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    second = digest_tree(tree, cache)

    assert second.sha256 != first.sha256
    rel = victim.relative_to(tree).as_posix()
    assert second.files[rel] == sha256_file(victim)
    assert {k: v for k, v in second.files.items() if k != rel} == {
        k: v for k, v in first.files.items() if k != rel
    }
    assert second == digest_tree(tree)


@pytest.mark.parametrize("change", ["add", "delete", "rename"])
def test_tree_membership_changes_are_seen(tmp_path: Path, cache: DigestCache, change: str) -> None:
    tree = _tree(tmp_path)
    digest_tree(tree, cache)
    victim = sorted(tree.rglob("f*"))[3]
    if change == "add":
        _write(tree / "new-file", b"new")
    elif change == "delete":
        victim.unlink()
    else:
        victim.rename(victim.with_name("renamed"))

    assert digest_tree(tree, cache) == digest_tree(tree)


def test_excludes_do_not_share_a_snapshot(tmp_path: Path, cache: DigestCache) -> None:
    tree = _tree(tmp_path)
    everything = digest_tree(tree, cache)

    fewer = digest_tree(tree, cache, exclude=["d0"])

    assert set(fewer.files) == {rel for rel in everything.files if not rel.startswith("d0/")}
    assert digest_tree(tree, cache) == everything


def test_freshly_written_tree_leaves_no_snapshot(tmp_path: Path, cache: DigestCache) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    _write(tree / "fresh", b"just written")

    digest_tree(tree, cache)

    entries = walk_tree(tree)
    fingerprint = tree_fingerprint([e.relpath for e in entries], [e.stat for e in entries])
    assert cache.lookup_tree(str(tree), fingerprint) is None
    assert cache.stats.stored == 0


def test_cache_of_an_older_schema_is_upgraded(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as old:
        old.execute(
            "CREATE TABLE file_digest (path BLOB PRIMARY KEY, identity BLOB NOT NULL,"
            " sha256 TEXT NOT NULL) WITHOUT ROWID"
        )
        old.execute("PRAGMA user_version = 1")
    old.close()
    tree = _tree(tmp_path)

    with DigestCache.open(db) as upgraded:
        first = digest_tree(tree, upgraded)
        assert digest_tree(tree, upgraded) == first
        assert upgraded.disabled_reason is None


def test_cache_of_a_newer_bitwright_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite"
    with sqlite3.connect(db) as newer:
        newer.execute("PRAGMA user_version = 99")
    newer.close()

    with pytest.raises(OperationalError, match="newer than this bitwright"):
        DigestCache.open(db)


def test_a_new_cache_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "xdg" / "bitwright"
    with DigestCache.open(folder / "digests.sqlite"):
        pass
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "digests.sqlite").stat().st_mode & 0o777 == 0o600


def test_a_readable_cache_of_ones_own_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    db = _write(folder / "digests.sqlite", b"")
    db.chmod(0o644)
    with DigestCache.open(db):
        pass
    assert (folder.stat().st_mode & 0o777, db.stat().st_mode & 0o777) == (0o700, 0o600)


@pytest.mark.parametrize(("target", "mode"), [("folder", 0o777), ("folder", 0o770), ("db", 0o666)])
def test_a_cache_others_can_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, mode: int
) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    db = folder / "digests.sqlite"
    with DigestCache.open(db):
        pass
    (folder if target == "folder" else db).chmod(mode)
    with pytest.raises(OperationalError, match=r"writable by other users .*refused") as info:
        DigestCache.open(db)
    assert "chmod" in info.value.hint and "BITWRIGHT_DIGEST_CACHE" in info.value.hint
    monkeypatch.setenv("BITWRIGHT_DIGEST_CACHE", str(db))
    cache, why = open_default_cache()
    assert cache is None and "refused" in why


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_cache_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "digests.sqlite"
    with DigestCache.open(db):
        pass
    os.chown(db, 4242, -1)
    with pytest.raises(OperationalError, match=r"belongs to another user \(uid 4242\)"):
        DigestCache.open(db)


def test_a_cache_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.sqlite"
    with DigestCache.open(real):
        pass
    link = tmp_path / "link.sqlite"
    link.symlink_to(real)
    with pytest.raises(OperationalError, match="symbolic link: refused"):
        DigestCache.open(link)


def test_the_memory_cache_answers_only_this_process(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", b"data")
    _settle()
    own = DigestCache.in_memory()
    assert sha256_file(path, own) == sha256_file(path)
    assert own.stats.stored == 1
    assert sha256_file(path, own) == sha256_file(path) and own.stats.hits == 1
    assert memory_cache() is memory_cache()
