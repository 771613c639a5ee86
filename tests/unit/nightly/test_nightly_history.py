"""The history: append-only JSON lines, read as hostile input, and "first different on"."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from nightly_factory import night

from bitwright.errors import OperationalError
from bitwright.fileio import NotRegularFile
from bitwright.nightly.history import append_night, first_different, read_history
from bitwright.nightly.night import Night, Result


def test_a_second_night_appends_and_both_read_back(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    first, second = night(1, "a"), night(2, "b", train=Result.DIFFERENT)
    append_night(path, first)
    before = path.read_bytes()
    append_night(path, second)
    assert path.read_bytes().startswith(before)  # append-only: the first line is untouched
    assert len(path.read_bytes().splitlines()) == 2
    read = read_history(path)
    assert read.nights == (first, second)
    assert read.skipped_lines == ()


def test_first_different_names_the_first_night_of_the_current_streak() -> None:
    nights = [
        night(1, "a"),
        night(2, "b", train=Result.DIFFERENT),  # a failure that went away
        night(3, "c"),
        night(4, "d", train=Result.DIFFERENT),
        night(5, "e", train=Result.FAILED),
        night(6, "f", train=Result.DIFFERENT),
    ]
    (since,) = first_different(nights)
    assert (since.stage, since.night[:10], since.commit, since.nights) == (
        "train",
        "2026-03-04",
        "d" * 40,
        3,
    )
    assert (
        since.describe() == "stage train: first different on 2026-03-04 at dddddddddddd (3 nights)"
    )
    assert first_different([*nights, night(7, "g")]) == ()
    assert first_different([]) == ()


def test_a_stage_new_in_the_pipeline_starts_its_streak_there() -> None:
    old = night(1, "a", stages=("prepare",))
    (since,) = first_different([old, night(2, "b", train=Result.DIFFERENT)])
    assert (since.commit, since.nights) == ("b" * 40, 1)


def test_a_truncated_or_foreign_line_is_skipped_and_the_next_append_starts_a_new_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.jsonl"
    append_night(path, night(1, "a"))
    record = json.dumps(night(2, "b").to_record())
    unknown = json.loads(record)
    unknown["surprise"] = True
    nested = "[" * 5000 + "]" * 5000
    with path.open("a") as fh:
        fh.write(json.dumps(unknown) + "\n")
        fh.write(json.dumps({"schema": "https://example.org/other"}) + "\n")
        fh.write(nested + "\n")
        fh.write("[1, 2]\n")
        fh.write(record[: len(record) // 2])  # a crash mid-write: no newline
    append_night(path, night(3, "c"))
    read = read_history(path)
    assert [n.commit[0] for n in read.nights] == ["a", "c"]
    assert read.skipped_lines == (2, 3, 4, 5, 6)


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "history.jsonl"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def attempt() -> None:
        try:
            read_history(fifo)
        except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
            done.append(exc)
        try:
            append_night(fifo, night(1, "a"))
        except BaseException as exc:  # noqa: BLE001
            done.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "reading or appending to a FIFO hung"
    assert len(done) == 2 and all(isinstance(e, NotRegularFile) for e in done), done


def test_a_symlink_is_neither_read_nor_written_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("")
    link = tmp_path / "history.jsonl"
    link.symlink_to(target)
    with pytest.raises(NotRegularFile):
        read_history(link)
    with pytest.raises(NotRegularFile):
        append_night(link, night(1, "a"))
    assert target.read_text() == ""


def test_a_huge_history_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bitwright.nightly.history.MAX_HISTORY_BYTES", 1024)
    path = tmp_path / "history.jsonl"
    path.write_bytes(b" " * 2048)
    with pytest.raises(OperationalError, match="more than the 1024 accepted"):
        read_history(path)


def test_a_missing_history_is_empty(tmp_path: Path) -> None:
    assert read_history(tmp_path / "none.jsonl").nights == ()


def test_a_record_round_trips_and_refuses_unknown_fields() -> None:
    record = night(2, "b", train=Result.DIFFERENT).to_record()
    assert Night.from_record(record) == night(2, "b", train=Result.DIFFERENT)
    with pytest.raises(ValueError):
        Night.from_record({**record, "schema": "v0"})
    broken = json.loads(json.dumps(record))
    broken["variations"][0]["stages"][0]["result"] = "MAYBE"
    with pytest.raises(ValueError):
        Night.from_record(broken)
