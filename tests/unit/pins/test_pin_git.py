"""pin_git_commit: the commit a build claims, and every way a work tree can differ from it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from _pinkit import COMMIT_TIME, git

from bitwright.errors import DirtyTreeError, OperationalError
from bitwright.pins import pin_git_commit
from bitwright.pins.git import clone_at_commit, redact_url
from bitwright.pins.worktree import blob_id, find_dirty_paths

FILES = {
    "README.md": "hello\n",
    "src/train.py": "print('train')\n",
    "params.yaml": "seed: 1\n",
    ".gitignore": "*.log\nscratch/\n",
}

MakeRepo = Callable[..., Path]


@pytest.fixture
def repo(make_repo: MakeRepo) -> Path:
    return make_repo(FILES)


def assert_dirty(repo: Path, *paths: str) -> None:
    with pytest.raises(DirtyTreeError) as caught:
        pin_git_commit(repo)
    for path in paths:
        assert path in caught.value.message
    assert "--allow-dirty" in caught.value.hint
    pin = pin_git_commit(repo, allow_dirty=True)
    assert pin.dirty and not pin.rebuildable
    assert set(pin.dirty_paths) == set(paths)


def test_clean_tree_pins_head_time_and_path(repo: Path) -> None:
    pin = pin_git_commit(repo / "src")
    assert pin.commit == git(repo, "rev-parse", "HEAD")
    assert pin.commit_time == COMMIT_TIME
    assert pin.remote_url == str(repo.resolve())
    assert not pin.dirty and pin.dirty_paths == () and pin.rebuildable


def test_origin_url_is_recorded_without_credentials(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://ci:s3cret@example.org/team/model.git")
    assert pin_git_commit(repo).remote_url == "https://example.org/team/model.git"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://TOKEN@github.com/o/r.git", "https://github.com/o/r.git"),
        ("ssh://git:pw@host/o/r.git", "ssh://git@host/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("/srv/git/r", "/srv/git/r"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_edited_file_is_dirty(repo: Path) -> None:
    (repo / "src/train.py").write_text("print('changed')\n")
    assert_dirty(repo, "src/train.py")


def test_error_lists_at_most_five_paths(repo: Path) -> None:
    for i in range(7):
        (repo / f"new{i}.txt").write_text("x")
    with pytest.raises(DirtyTreeError, match="and 2 more"):
        pin_git_commit(repo)


@pytest.mark.parametrize("flag", ["--assume-unchanged", "--skip-worktree"])
def test_edit_hidden_from_git_status_is_dirty(repo: Path, flag: str) -> None:
    git(repo, "update-index", flag, "params.yaml")
    (repo / "params.yaml").write_text("seed: 2\n")
    assert git(repo, "status", "--porcelain") == ""  # git itself is blind to it
    assert_dirty(repo, "params.yaml")


def test_edit_with_restored_mtime_is_dirty(repo: Path) -> None:
    path = repo / "params.yaml"
    os.utime(path, (COMMIT_TIME, COMMIT_TIME))  # well before the index: git trusts its cache
    git(repo, "config", "core.trustctime", "false")
    git(repo, "update-index", "--refresh")
    with path.open("r+b") as handle:  # same inode, same size
        handle.write(b"seed: 9\n")
    os.utime(path, (COMMIT_TIME, COMMIT_TIME))
    assert git(repo, "status", "--porcelain") == ""  # the stat cache misses it
    assert_dirty(repo, "params.yaml")


def test_untracked_file_is_dirty_ignored_file_is_not(repo: Path) -> None:
    (repo / "run.log").write_text("ignored\n")
    (repo / "scratch").mkdir()
    (repo / "scratch" / "notes.txt").write_text("ignored\n")
    assert not pin_git_commit(repo).dirty
    (repo / "data").mkdir()
    (repo / "data" / "extra.csv").write_text("1\n")
    (repo / "notes.txt").write_text("new\n")
    assert_dirty(repo, "data/", "notes.txt")


def test_staged_change_is_dirty_even_when_worktree_matches_head(repo: Path) -> None:
    path = repo / "README.md"
    path.write_text("staged\n")
    git(repo, "add", "README.md")
    path.write_text("hello\n")
    assert_dirty(repo, "README.md")


def test_staged_new_file_is_dirty(repo: Path) -> None:
    (repo / "added.py").write_text("x = 1\n")
    git(repo, "add", "added.py")
    assert_dirty(repo, "added.py")


def test_deleted_file_is_dirty(repo: Path) -> None:
    (repo / "src/train.py").unlink()
    assert_dirty(repo, "src/train.py")


def test_executable_bit_change_is_dirty(repo: Path) -> None:
    (repo / "src/train.py").chmod(0o755)
    assert_dirty(repo, "src/train.py")


def test_symlink_retargeted_is_dirty(make_repo: MakeRepo) -> None:
    repo = make_repo({"a.txt": "a\n", "b.txt": "b\n"})
    (repo / "link").symlink_to("a.txt")
    git(repo, "add", "link")
    git(repo, "commit", "-q", "-m", "link")
    assert not pin_git_commit(repo).dirty
    (repo / "link").unlink()
    (repo / "link").symlink_to("b.txt")
    assert_dirty(repo, "link")


def test_symlink_replaced_by_a_file_with_its_text_is_dirty(make_repo: MakeRepo) -> None:
    repo = make_repo({"a.txt": "a\n"})
    (repo / "link").symlink_to("a.txt")
    git(repo, "add", "link")
    git(repo, "commit", "-q", "-m", "link")
    (repo / "link").unlink()
    (repo / "link").write_text("a.txt")
    assert_dirty(repo, "link")


def test_eol_conversion_by_gitattributes_is_not_dirt(make_repo: MakeRepo) -> None:
    repo = make_repo({".gitattributes": "*.txt text eol=crlf\n", "notes.txt": "a\nb\n"})
    (repo / "notes.txt").unlink()
    git(repo, "checkout", "--", "notes.txt")
    assert (repo / "notes.txt").read_bytes() == b"a\r\nb\r\n"  # worktree bytes != blob bytes
    assert not pin_git_commit(repo).dirty
    (repo / "notes.txt").write_bytes(b"a\r\nc\r\n")
    assert_dirty(repo, "notes.txt")


def test_submodule_at_other_commit_or_edited_is_dirty(make_repo: MakeRepo) -> None:
    lib = make_repo({"lib.py": "v = 1\n"}, name="lib")
    repo = make_repo({"main.py": "import lib\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "vendor/lib")
    git(repo, "commit", "-q", "-m", "add lib")
    assert not pin_git_commit(repo).dirty
    (repo / "vendor/lib/lib.py").write_text("v = 2\n")
    assert_dirty(repo, "vendor/lib/lib.py")
    git(repo / "vendor/lib", "commit", "-q", "-am", "bump")
    assert_dirty(repo, "vendor/lib")


def test_paths_the_build_rewrites_can_be_ignored(repo: Path) -> None:
    (repo / "params.yaml").write_text("seed: 3\n")
    assert not pin_git_commit(repo, ignore=["params.yaml"]).dirty
    (repo / "src/train.py").write_text("changed\n")
    assert find_dirty_paths(repo, ignore=["src", "params.yaml"]) == ()
    assert find_dirty_paths(repo, ignore=["params.yaml"]) == ("src/train.py",)


def test_not_a_repository_is_an_operational_error(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match="not a git work tree") as caught:
        pin_git_commit(tmp_path)
    assert caught.value.hint
    with pytest.raises(OperationalError, match="not a directory"):
        pin_git_commit(tmp_path / "missing")


def test_repository_without_commit_is_an_operational_error(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(OperationalError, match="no commit") as caught:
        pin_git_commit(tmp_path)
    assert "commit" in caught.value.hint


def test_blob_id_matches_git_hash_object(tmp_path: Path) -> None:
    data = b"some bytes\x00\xff\n"
    (tmp_path / "f").write_bytes(data)
    expected = subprocess.run(
        ["git", "hash-object", "--no-filters", str(tmp_path / "f")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert blob_id(data) == expected


def test_sha256_repository(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", "--object-format=sha256", str(repo))
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "a")
    pin = pin_git_commit(repo)
    assert len(pin.commit) == 64 and not pin.dirty
    (repo / "a.txt").write_text("b\n")
    assert_dirty(repo, "a.txt")


def test_many_files_with_large_ones(make_repo: MakeRepo) -> None:
    files = {f"pkg{i % 10}/m{i}.py": f"x = {i}\n" for i in range(600)}
    repo = make_repo(files)
    big = repo / "weights.bin"
    big.write_bytes(os.urandom(3 << 20))
    (repo / "weights2.bin").write_bytes(os.urandom(2 << 20))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "weights")
    assert find_dirty_paths(repo, jobs=2) == ()
    with big.open("r+b") as handle:
        handle.seek(2 << 20)
        handle.write(b"\x00" * 8)
    (repo / "pkg3/m3.py").write_text("x = 4\n")
    assert find_dirty_paths(repo, jobs=2) == ("pkg3/m3.py", "weights.bin")


def _commit_at(repo: Path, seconds: int, message: str) -> None:
    stamp = {"GIT_COMMITTER_DATE": f"@{seconds} +0000", "GIT_AUTHOR_DATE": f"@{seconds} +0000"}
    git(repo, "add", "-A", env=stamp)
    git(repo, "commit", "-q", "-m", message, env=stamp)


def test_source_date_epoch_moves_with_the_source_not_with_dvc_lock(repo: Path) -> None:
    (repo / "dvc.lock").write_text("schema: '2.0'\n")
    _commit_at(repo, COMMIT_TIME + 100, "lock")
    pin = pin_git_commit(repo, ignore=["dvc.lock"])
    assert pin.commit_time == COMMIT_TIME + 100
    assert pin.source_date_epoch == pin.epoch == COMMIT_TIME  # the source is the first commit
    assert pin_git_commit(repo).source_date_epoch == COMMIT_TIME + 100  # nothing ignored
    (repo / "src/train.py").write_text("print('changed')\n")
    _commit_at(repo, COMMIT_TIME + 200, "code")
    assert pin_git_commit(repo, ignore=["dvc.lock"]).source_date_epoch == COMMIT_TIME + 200


def test_redirecting_git_variables_do_not_redirect_the_pin(
    repo: Path, make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's GIT_DIR, GIT_INDEX_FILE ... name another repository: the pin ignores them."""
    other = make_repo({"other.txt": "another repository\n"}, name="other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(other / ".git" / "objects"))
    pin = pin_git_commit(repo)
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_WORK_TREE")
    monkeypatch.delenv("GIT_INDEX_FILE")
    monkeypatch.delenv("GIT_OBJECT_DIRECTORY")
    assert pin.commit == git(repo, "rev-parse", "HEAD") != git(other, "rev-parse", "HEAD")
    assert not pin.dirty  # other.txt and the other index were never looked at
    (repo / "src/train.py").write_text("edited\n")
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    assert pin_git_commit(repo, allow_dirty=True).dirty_paths == ("src/train.py",)


def test_pinning_takes_no_optional_lock(repo: Path) -> None:
    """Pinning never rewrites the index (a concurrent git would find it locked)."""
    index = repo / ".git" / "index"
    before = index.stat().st_mtime_ns
    (repo / "README.md").touch()  # a stat change git status would refresh the index for
    pin_git_commit(repo)
    assert index.stat().st_mtime_ns == before
    assert not (repo / ".git" / "index.lock").exists()


def test_a_rebuild_clones_the_source_at_the_pinned_commit(repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "README.md").write_text("later\n")
    _commit_at(repo, COMMIT_TIME + 10, "later")
    workspace = tmp_path / "ws"
    clone_at_commit(str(repo), first, workspace)
    assert git(workspace, "rev-parse", "HEAD") == first
    assert (workspace / "README.md").read_text() == "hello\n"
    with pytest.raises(OperationalError, match="does not have commit 000000000000"):
        clone_at_commit(str(repo), "0" * 40, tmp_path / "ws2")
    with pytest.raises(OperationalError, match="cannot clone the source"):
        clone_at_commit(str(tmp_path / "nowhere"), first, tmp_path / "ws3")
