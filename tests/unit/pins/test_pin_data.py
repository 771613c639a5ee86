"""pin_data: every ``dvc add`` snapshot, verified against its .dvc file, with sha256 and remote."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml
from _pinkit import dvc

from bitwright.digest import digest_tree
from bitwright.errors import DirtyTreeError, OperationalError
from bitwright.pins import pin_data
from bitwright.pins.data import find_dvc_files


def recorded(repo: Path, dvc_file: str) -> dict[str, object]:
    out: dict[str, object] = yaml.safe_load((repo / dvc_file).read_text())["outs"][0]
    return out


def test_pins_each_snapshot_with_dvc_md5_and_sha256(dvc_repo: Path) -> None:
    images, raw = pin_data(dvc_repo)  # sorted by path
    assert (images.path, raw.path) == ("data/images", "data/raw.csv")
    assert raw.dvc_md5 == recorded(dvc_repo, "data/raw.csv.dvc")["md5"]
    assert raw.sha256 == hashlib.sha256((dvc_repo / "data/raw.csv").read_bytes()).hexdigest()
    assert (raw.size, raw.nfiles, raw.remote_url) == (21, 1, "")
    assert images.dvc_md5 == recorded(dvc_repo, "data/images.dvc")["md5"]
    assert str(images.dvc_md5).endswith(".dir")
    # the .dvcignore'd scratch file is in neither DVC's hash nor the sha256
    assert (images.nfiles, images.size) == (2, 16)
    (dvc_repo / "data/images/scratch.tmp").unlink()
    assert images.sha256 == digest_tree(dvc_repo / "data/images").sha256


def test_stage_outputs_are_not_pins(dvc_repo: Path) -> None:
    assert "model.pt" not in {pin.path for pin in pin_data(dvc_repo)}
    assert [p.name for p in find_dvc_files(dvc_repo)] == ["images.dvc", "raw.csv.dvc"]


def test_tampered_file_is_refused_with_dvc_hint(dvc_repo: Path) -> None:
    (dvc_repo / "data/raw.csv").write_text("id,label\n1,cat\n2,cow\n")  # same size
    with pytest.raises(DirtyTreeError, match=r"data/raw\.csv differs from data/raw\.csv\.dvc") as e:
        pin_data(dvc_repo)
    assert "dvc add data/raw.csv" in e.value.hint and "dvc checkout" in e.value.hint


def test_tampered_directory_with_restored_mtime_is_refused(dvc_repo: Path) -> None:
    target = dvc_repo / "data/images/nested/b.txt"
    before = target.stat()
    target.write_text("image B\n")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(DirtyTreeError, match="data/images differs"):
        pin_data(dvc_repo)


def test_file_added_to_tracked_directory_is_refused(dvc_repo: Path) -> None:
    (dvc_repo / "data/images/c.txt").write_text("new\n")
    with pytest.raises(DirtyTreeError, match="data/images differs"):
        pin_data(dvc_repo)


def test_missing_snapshot_asks_for_dvc_pull(dvc_repo: Path) -> None:
    (dvc_repo / "data/raw.csv").unlink()
    with pytest.raises(DirtyTreeError, match="not in the workspace") as caught:
        pin_data(dvc_repo)
    assert "dvc pull" in caught.value.hint


def test_default_remote_url_from_dvc_config(dvc_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    dvc(dvc_repo, "remote", "add", "-d", "store", str(store))
    assert {pin.remote_url for pin in pin_data(dvc_repo)} == {str(store)}
    dvc(dvc_repo, "remote", "add", "--local", "-d", "mine", "s3://bucket/dvc")
    assert {pin.remote_url for pin in pin_data(dvc_repo)} == {"s3://bucket/dvc"}


def test_relative_remote_resolves_against_dvc_dir(dvc_repo: Path) -> None:
    (dvc_repo / ".dvc/config").write_text(
        "[core]\n    remote = shared\n"
        "['remote \"shared\"']\n    url = ../../dvc-store\n"
        "['remote \"web\"']\n    url = https://user:token@data.example.org/dvc\n"
    )
    assert pin_data(dvc_repo)[0].remote_url == str(dvc_repo.parent / "dvc-store")
    (dvc_repo / ".dvc/config.local").write_text("[core]\n    remote = web\n")
    assert pin_data(dvc_repo)[0].remote_url == "https://data.example.org/dvc"


def test_default_remote_without_url_is_an_error(dvc_repo: Path) -> None:
    (dvc_repo / ".dvc/config").write_text("[core]\n    remote = nowhere\n")
    with pytest.raises(OperationalError, match="'nowhere' has no url"):
        pin_data(dvc_repo)


def test_malformed_dvc_file_is_an_operational_error(dvc_repo: Path) -> None:
    (dvc_repo / "data/raw.csv.dvc").write_text("outs:\n- size: 3\n  path: raw.csv\n")
    with pytest.raises(OperationalError, match=r"raw\.csv\.dvc: out raw\.csv has no md5"):
        pin_data(dvc_repo)
    (dvc_repo / "data/raw.csv.dvc").write_text("outs: [\n")
    with pytest.raises(OperationalError, match="unreadable .dvc file"):
        pin_data(dvc_repo)


def test_legacy_dvc2_file_is_checked_with_dos2unix_md5(dvc_repo: Path) -> None:
    (dvc_repo / "data/notes.txt").write_bytes(b"a\r\nb\r\n")
    legacy_md5 = hashlib.md5(b"a\nb\n").hexdigest()  # DVC 2 hashed text as dos2unix
    (dvc_repo / "data/notes.txt.dvc").write_text(
        json.dumps({"outs": [{"md5": legacy_md5, "size": 6, "path": "notes.txt"}]})
    )
    notes = next(pin for pin in pin_data(dvc_repo) if pin.path == "data/notes.txt")
    assert notes.dvc_md5 == legacy_md5
    assert notes.sha256 == hashlib.sha256(b"a\r\nb\r\n").hexdigest()


def test_repository_without_dvc_has_no_data_pins(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print()\n")
    assert pin_data(tmp_path) == ()


def test_relative_repository_path(dvc_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(dvc_repo / "data")
    assert [pin.path for pin in pin_data(Path(".."))] == ["data/images", "data/raw.csv"]
