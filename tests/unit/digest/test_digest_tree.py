"""Tree digests and artifact maps: the listing format, symlinks, special files, excludes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitwright.digest import digest_artifacts, digest_tree, tree_listing, tree_sha256
from bitwright.errors import OperationalError

EMPTY = hashlib.sha256(b"").hexdigest()

_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=12,
).filter(lambda name: name not in {".", ".."} and len(name.encode()) < 200)
_trees = st.dictionaries(
    st.lists(_names, min_size=1, max_size=3).map("/".join), st.binary(max_size=300), max_size=12
)


def _materialize(root: Path, files: dict[str, bytes]) -> dict[str, bytes]:
    """Write ``files``; drop paths that collide with a directory of another path."""
    written: dict[str, bytes] = {}
    for rel, data in sorted(files.items()):
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                continue
            path.write_bytes(data)
        except (FileExistsError, NotADirectoryError):
            continue
        written[rel] = data
    return {rel: data for rel, data in written.items() if (root / rel).is_file()}


@settings(max_examples=40, deadline=None)
@given(files=_trees)
def test_tree_digest_is_sha256_of_the_sorted_listing(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        written = _materialize(Path(tmp), files)

        tree = digest_tree(Path(tmp))

        expected = {rel: hashlib.sha256(data).hexdigest() for rel, data in written.items()}
        assert tree.files == expected
        assert list(tree.files) == sorted(expected, key=lambda rel: rel.encode())
        listing = "".join(f"{expected[rel]}  {rel}\n" for rel in sorted(expected))
        assert tree.sha256 == hashlib.sha256(listing.encode()).hexdigest()
        assert tree_listing(tree.files) == listing.encode()
        assert tree.sha256 == tree_sha256(tree.files)
        assert tree.size == sum(len(data) for data in written.values())


def test_tree_digest_matches_coreutils(tmp_path: Path) -> None:
    files = {"b.txt": b"b", "a/x y.bin": b"\x00" * 70000, "a/é.json": b"{}", "Z": b"", "a.b": b"1"}
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    (tmp_path / "empty-dir").mkdir()
    shell = "find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum"

    coreutils = subprocess.run(
        ["sh", "-c", shell], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()[0]

    assert digest_tree(tmp_path).sha256 == coreutils


def test_empty_tree_has_the_digest_of_the_empty_listing(tmp_path: Path) -> None:
    (tmp_path / "only" / "dirs").mkdir(parents=True)

    tree = digest_tree(tmp_path)

    assert (tree.files, tree.sha256, tree.size) == ({}, EMPTY, 0)


def test_workers_do_not_change_the_result(tmp_path: Path) -> None:
    for index in range(50):
        (tmp_path / f"f{index}").write_bytes(os.urandom(index * 997))

    assert digest_tree(tmp_path, workers=1) == digest_tree(tmp_path, workers=4)


def test_in_tree_symlinks_count_as_their_target(tmp_path: Path) -> None:
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "abc").write_bytes(b"weights")
    (tmp_path / "model.bin").symlink_to("blobs/abc")
    (tmp_path / "mirror").symlink_to("blobs", target_is_directory=True)

    tree = digest_tree(tmp_path)

    weights = hashlib.sha256(b"weights").hexdigest()
    assert tree.files == {"blobs/abc": weights, "mirror/abc": weights, "model.bin": weights}


def test_symlink_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "outside").write_bytes(b"secret")
    (tmp_path / "tree" / "leak").symlink_to(tmp_path / "outside")

    with pytest.raises(OperationalError, match="leak: symlink points outside the tree"):
        digest_tree(tmp_path / "tree")


def test_symlink_to_proc_is_refused(tmp_path: Path) -> None:
    (tmp_path / "env").symlink_to("/proc/self/environ")

    with pytest.raises(OperationalError, match="env: symlink points outside the tree"):
        digest_tree(tmp_path)


def test_dangling_symlink_in_tree_is_named(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to("nowhere")

    with pytest.raises(OperationalError, match="dangling: broken symlink"):
        digest_tree(tmp_path)


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "up").symlink_to("..", target_is_directory=True)

    with pytest.raises(OperationalError, match="directory loop"):
        digest_tree(tmp_path)


def test_fifo_in_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "sub" / "pipe")

    with pytest.raises(OperationalError, match=r"sub/pipe: is a fifo"):
        digest_tree(tmp_path)


def test_file_name_with_newline_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad\nname").write_bytes(b"")

    with pytest.raises(OperationalError, match="line break"):
        digest_tree(tmp_path)


def test_non_utf8_file_name_is_refused(tmp_path: Path) -> None:
    (Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9"))).write_bytes(b"")

    with pytest.raises(OperationalError, match="not valid UTF-8"):
        digest_tree(tmp_path)


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")

    with pytest.raises(OperationalError, match="f: is not a directory"):
        digest_tree(tmp_path / "f")
    with pytest.raises(OperationalError, match="missing: no such file"):
        digest_tree(tmp_path / "missing")


def test_excludes_drop_files_and_whole_directories(tmp_path: Path) -> None:
    for rel in [".git/HEAD", "src/a.py", "src/a.pyc", "src/__pycache__/a.pyc", "data/raw/x"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(rel.encode())
    os.mkfifo(tmp_path / ".git" / "fsmonitor")  # inside an excluded directory: never visited

    tree = digest_tree(tmp_path, exclude=[".git", "*.pyc", "data/raw/"])

    assert list(tree.files) == ["src/a.py"]


def _repo(root: Path) -> Path:
    for rel, data in {
        "data/train.csv": b"1,2\n",
        "data/test.csv": b"3,4\n",
        "data/cache/tmp.bin": b"junk",
        "model/weights.bin": b"w" * 5000,
        "params.yaml": b"lr: 0.1\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_artifacts_expand_directories_into_repo_relative_files(tmp_path: Path) -> None:
    repo = _repo(tmp_path)

    artifacts = digest_artifacts(repo, ["params.yaml", "data", "./data/train.csv", "model/"])

    assert list(artifacts) == [
        "data/cache/tmp.bin",
        "data/test.csv",
        "data/train.csv",
        "model/weights.bin",
        "params.yaml",
    ]
    assert artifacts["params.yaml"] == hashlib.sha256(b"lr: 0.1\n").hexdigest()


def test_artifacts_honour_excludes_also_for_explicit_paths(tmp_path: Path) -> None:
    repo = _repo(tmp_path)

    artifacts = digest_artifacts(repo, ["data", "data/cache/tmp.bin"], exclude=["cache"])

    assert list(artifacts) == ["data/test.csv", "data/train.csv"]


def test_missing_artifact_is_named(tmp_path: Path) -> None:
    repo = _repo(tmp_path)

    with pytest.raises(OperationalError, match="model/missing.pt: not found") as info:
        digest_artifacts(repo, ["params.yaml", "model/missing.pt"])
    assert info.value.hint


@pytest.mark.parametrize("path", ["../outside", "/etc/passwd", "data/../../x"])
def test_artifact_outside_the_root_is_refused(tmp_path: Path, path: str) -> None:
    repo = _repo(tmp_path / "repo")

    with pytest.raises(OperationalError, match="not inside"):
        digest_artifacts(repo, [path])


def test_artifact_through_a_symlinked_directory_out_of_the_repo_is_refused(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path / "repo")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f").write_bytes(b"x")
    (repo / "ext").symlink_to(tmp_path / "elsewhere", target_is_directory=True)

    with pytest.raises(OperationalError, match="ext/f: resolves outside the tree"):
        digest_artifacts(repo, ["ext/f"])


def test_artifacts_of_a_copied_repo_are_identical(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "a")
    shutil.copytree(repo, tmp_path / "b")

    assert digest_artifacts(repo, ["."]) == digest_artifacts(tmp_path / "b", ["."])
