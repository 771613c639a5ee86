"""Recording a run and replaying segments of it; the trajectory file read as hostile input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _trajloop import CounterState, run_loop

from bitwright.errors import VerificationFailed
from bitwright.fileio import NotRegularFile
from bitwright.trajectory import (
    REPLAY_ENV,
    REPLAY_RESULT,
    TRAJECTORY_FILE,
    Recorder,
    RecordingError,
    TrajectoryInvalid,
    check_trajectory,
    parse_trajectory,
    read_trajectory,
)
from bitwright.trajectory.record import seal


def _recorded(tmp_path: Path, data: Path) -> Path:
    run = run_loop(tmp_path / "run", data)
    return run.finish()


def test_a_recorded_run_holds_together(tmp_path: Path, data: Path) -> None:
    path = _recorded(tmp_path, data)
    assert path.name == TRAJECTORY_FILE
    trajectory = read_trajectory(path)
    check_trajectory(trajectory)
    assert len(trajectory.segments) == 12 and len(trajectory.states) == 13
    assert [(s.first, s.end) for s in trajectory.segments][:2] == [(0, 3), (3, 6)]
    for state in trajectory.states:
        assert (path.parent / state.file).is_file()


def test_two_recordings_write_the_same_bytes(tmp_path: Path, data: Path) -> None:
    assert (
        _recorded(tmp_path / "a", data).read_bytes() == _recorded(tmp_path / "b", data).read_bytes()
    )


def test_a_loop_that_skips_a_step_is_refused(tmp_path: Path, data: Path) -> None:
    with pytest.raises(RecordingError, match="ran 2 of its 3 steps"):
        run_loop(tmp_path / "run", data, skip_last=True)


def test_finish_before_the_last_segment_is_refused(tmp_path: Path, data: Path) -> None:
    run = Recorder(
        tmp_path / "r",
        state=CounterState(),
        seed=5,
        data=data,
        items=20,
        batch_size=4,
        steps=9,
        segment_steps=3,
        model="m",
    )
    with pytest.raises(RecordingError, match="before every segment ran"):
        run.finish()


def test_a_replay_runs_only_the_requested_segments_from_their_states(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trajectory = read_trajectory(_recorded(tmp_path, data))
    run_dir = tmp_path / "run"
    request = tmp_path / "request.json"
    segments = [
        {
            "index": i,
            "steps": [3 * i, 3 * i + 3],
            "start": str(run_dir / trajectory.states[i].file),
            "sha256": trajectory.states[i].sha256,
        }
        for i in (2, 7)
    ]
    request.write_text(
        json.dumps({"init": True, "out": str(tmp_path / "out"), "segments": segments})
    )
    monkeypatch.setenv(REPLAY_ENV, str(request))
    replay = run_loop(tmp_path / "unused", data)
    assert replay.replaying
    result = json.loads(replay.finish().read_text())
    assert replay.finish().name == REPLAY_RESULT
    assert result["init"] == trajectory.states[0].sha256
    for i in (2, 7):
        assert result["segments"][str(i)]["end"] == trajectory.states[i + 1].sha256
        assert result["segments"][str(i)]["batches"] == trajectory.segments[i].batches
    assert not (tmp_path / "unused").exists()


def test_a_replay_refuses_a_start_state_that_is_not_the_committed_one(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trajectory = read_trajectory(_recorded(tmp_path, data))
    request = tmp_path / "request.json"
    start = tmp_path / "run" / trajectory.states[1].file
    segment = {
        "index": 2,
        "steps": [6, 9],
        "start": str(start),
        "sha256": trajectory.states[2].sha256,
    }
    request.write_text(json.dumps({"out": str(tmp_path / "out"), "segments": [segment]}))
    monkeypatch.setenv(REPLAY_ENV, str(request))
    with pytest.raises(RecordingError, match="not the committed one"):
        run_loop(tmp_path / "unused", data)


def _doc(tmp_path: Path, data: Path) -> dict:
    return json.loads(_recorded(tmp_path, data).read_text())


def test_an_altered_commitment_breaks_the_chain(tmp_path: Path, data: Path) -> None:
    doc = _doc(tmp_path, data)
    doc["segments"][4]["commitment"] = "0" * 64
    with pytest.raises(TrajectoryInvalid, match=r"segment 4 \(steps 12-14\)"):
        check_trajectory(parse_trajectory(doc))


def test_reordered_segments_are_refused_even_when_resealed(tmp_path: Path, data: Path) -> None:
    t = read_trajectory(_recorded(tmp_path, data))
    segments = list(t.segments)
    segments[3], segments[4] = segments[4], segments[3]
    resealed = seal(t.header, t.states, tuple(segments))
    with pytest.raises(TrajectoryInvalid, match="not complete and in order"):
        check_trajectory(resealed)


def test_a_dropped_segment_is_refused_even_when_resealed(tmp_path: Path, data: Path) -> None:
    t = read_trajectory(_recorded(tmp_path, data))
    resealed = seal(t.header, t.states[:-1], t.segments[:-1])
    with pytest.raises(TrajectoryInvalid, match="steps skipped or repeated"):
        check_trajectory(resealed)


def test_a_forged_head_or_root_is_refused(tmp_path: Path, data: Path) -> None:
    for key in ("chainHead", "merkleRoot"):
        doc = _doc(tmp_path / key, data)
        doc[key] = "1" * 64
        with pytest.raises(TrajectoryInvalid):
            check_trajectory(parse_trajectory(doc))


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda d: d.update(extra=1), "unknown keys"),
        (lambda d: d["states"][0].update(file="../../etc/passwd"), "malformed"),
        (lambda d: d["states"].pop(), "one more expected"),
        (lambda d: d["segments"][0].update(steps=[0]), "steps must be"),
        (lambda d: d.update(seed=True), "seed must be an integer"),
        (lambda d: d.update(format="other"), "format"),
    ],
)
def test_malformed_trajectories_are_refused(tmp_path: Path, data: Path, edit, problem: str) -> None:  # type: ignore[no-untyped-def]
    doc = _doc(tmp_path, data)
    edit(doc)
    with pytest.raises(TrajectoryInvalid, match=problem):
        parse_trajectory(doc)


def test_hostile_trajectory_files_are_refused(tmp_path: Path, data: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile):
        read_trajectory(fifo)
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    inner = tmp_path / "repo"
    inner.mkdir()
    (inner / "link.json").symlink_to(outside)
    with pytest.raises(NotRegularFile):
        read_trajectory(inner / "link.json", inside=inner)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100 + "]" * 100)
    with pytest.raises(VerificationFailed, match="nested"):
        read_trajectory(deep)
