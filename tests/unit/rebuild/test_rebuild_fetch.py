"""Where a rebuild fetches data from: the recorded remote, --data-remote, or the checkout's own."""

from __future__ import annotations

from pathlib import Path

from bitwright.rebuild.fetch import RecordedSnapshot, choose_remote


def snapshot(uri: str) -> RecordedSnapshot:
    return RecordedSnapshot("data/raw", "a" * 64, "b" * 32 + ".dir", uri)


def test_data_remote_wins(tmp_path: Path) -> None:
    url, note = choose_remote(tmp_path, (snapshot("s3://bucket/x"),), "s3://mine/dvc")
    assert url == "s3://mine/dvc" and "--data-remote" in note


def test_recorded_remote_is_used_when_reachable(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    assert choose_remote(tmp_path, (snapshot(remote.as_uri()),), None)[0] == str(remote)
    assert choose_remote(tmp_path, (snapshot("s3://bucket/x"),), None)[0] == "s3://bucket/x"


def test_a_recorded_local_remote_missing_here_falls_back_to_the_checkouts_own(
    tmp_path: Path,
) -> None:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    remote = origin\n['remote \"origin\"']\n    url = ../data/remote\n"
    )
    url, note = choose_remote(tmp_path, (snapshot("file:///elsewhere/data/remote"),), None)
    assert url is None
    assert "not on this machine" in note and str(tmp_path / "data" / "remote") in note
