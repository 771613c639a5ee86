"""The stage side of a committed training run: record every segment, or replay a few.

A training loop hands its data order and its state to a :class:`Recorder`::

    run = Recorder("checkpoints", state=TorchState(model, optimizer), seed=seed,
                   data="data/prepared/train.safetensors", items=len(labels),
                   batch_size=64, steps=steps, segment_steps=100, model="models/model.safetensors")
    for segment in run.segments():
        for batch in segment:          # the item ids of one step, from the seed alone
            ...one optimizer step on those items...
    run.finish()
    if run.replaying:
        return                         # an audit replays segments: nothing else to write

Recording (the default), each segment's start state is written to the directory (a declared
out of the stage) and committed with its steps, its end state and its batch ids; ``finish``
writes ``bitwright-trajectory.json`` with the chain head and Merkle root. Replaying (when
``BITWRIGHT_REPLAY`` names a request, as ``bitwright rebuild --spot-check`` does in a sealed
process), only the requested segments run, each from its recorded start state, and their end
states are written where the request says. The same code runs either way, so a replay is a
replay of the trainer's own steps.

Standard library only; the state is the caller's (:class:`StateCodec`,
:class:`bitwright.trajectory.torchstate.TorchState` for torch).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bitwright.fileio import read_json_object, write_atomic, write_text_atomic
from bitwright.trajectory.commit import segment_commitment
from bitwright.trajectory.record import (
    TRAJECTORY_FILE,
    Header,
    SegmentRecord,
    StateRecord,
    seal,
)
from bitwright.trajectory.schedule import ORDER_METHOD, Schedule, ids_bytes

__all__ = [
    "REPLAY_ENV",
    "REPLAY_RESULT",
    "Recorder",
    "RecordingError",
    "Segment",
    "StateCodec",
    "state_file_name",
]

REPLAY_ENV = "BITWRIGHT_REPLAY"
"""Names a replay request (JSON); set only by the auditor's sealed replay."""

REPLAY_RESULT = "replay.json"
"""What a replay writes in its out directory: the end state of each segment it ran."""


class RecordingError(RuntimeError):
    """The training loop did not follow its trajectory (a bug of the stage code)."""


class StateCodec(Protocol):
    """Turns the whole training state (weights, optimizer, generators, step) into bytes and back.

    The bytes must be a pure function of the state: equal states, equal bytes.
    """

    suffix: str
    format: str

    def save(self, step: int) -> bytes:
        """Return the current state, recorded as being before ``step``."""

    def load(self, data: bytes) -> int:
        """Restore the state from ``data``; return the step it was recorded before."""


def state_file_name(position: int, suffix: str) -> str:
    """The name of the state before segment ``position`` (``position == n``: the final state)."""
    return f"state-{position:07d}{suffix}"


@dataclass
class Segment:
    """One segment of the run: iterate it for the batches of its steps, in order."""

    index: int
    first: int
    end: int
    schedule: Schedule
    consumed: int = 0
    _digest: Any = field(default_factory=hashlib.sha256, repr=False)

    def __iter__(self) -> Iterator[array[int]]:
        for ids in self.schedule.batches(self.first, self.end):
            yield ids
            # counted once the loop comes back for more: a step it broke off is not run
            self._digest.update(ids_bytes(ids))
            self.consumed += 1

    @property
    def steps(self) -> int:
        """How many steps the segment has."""
        return self.end - self.first

    def batches_sha256(self) -> str:
        """The commitment to the batch ids consumed; raises unless every step was run."""
        if self.consumed != self.steps:
            raise RecordingError(
                f"segment {self.index} (steps {self.first}-{self.end - 1}) ran {self.consumed} "
                f"of its {self.steps} steps: iterate each segment to its end"
            )
        return str(self._digest.hexdigest())


class Recorder:
    """Records a training run segment by segment, or replays requested segments (module doc)."""

    def __init__(
        self,
        directory: str | Path,
        *,
        state: StateCodec,
        seed: int,
        data: str | Path,
        items: int,
        batch_size: int,
        steps: int,
        segment_steps: int,
        model: str | Path,
    ) -> None:
        if steps < 1 or segment_steps < 1:
            raise RecordingError("a run needs at least one step and one step per segment")
        self.directory = Path(directory)
        self.state = state
        with Path(data).open("rb") as fh:
            data_sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
        self.schedule = Schedule(seed, data_sha256, items, batch_size)
        self.header = Header(
            seed=seed,
            data_path=Path(data).as_posix(),
            data_sha256=data_sha256,
            items=items,
            batch_size=batch_size,
            order=ORDER_METHOD,
            steps=steps,
            segment_steps=segment_steps,
            model=Path(model).as_posix(),
            state_format=state.format,
        )
        request = os.environ.get(REPLAY_ENV)
        self._request = _read_request(Path(request)) if request else None
        self._states: list[StateRecord] = []
        self._segments: list[SegmentRecord] = []
        self._results: dict[str, Any] = {}
        self._done = False

    @property
    def replaying(self) -> bool:
        """Whether this process replays segments for an audit instead of recording a run."""
        return self._request is not None

    @property
    def segment_count(self) -> int:
        """How many segments the run has."""
        return -(-self.header.steps // self.header.segment_steps)

    def _bounds(self, index: int) -> tuple[int, int]:
        first = index * self.header.segment_steps
        return first, min(first + self.header.segment_steps, self.header.steps)

    def segments(self) -> Iterator[Segment]:
        """Yield the segments to run: all of them in order, or the requested ones."""
        if self._request is None:
            yield from self._record()
        else:
            yield from self._replay(self._request)
        self._done = True

    def _record(self) -> Iterator[Segment]:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._states.append(self._write_state(0, 0))
        for index in range(self.segment_count):
            segment = Segment(index, *self._bounds(index), self.schedule)
            yield segment
            batches = segment.batches_sha256()
            self._states.append(self._write_state(index + 1, segment.end))
            start, end = self._states[index], self._states[index + 1]
            commitment = segment_commitment(
                index, (segment.first, segment.end), start.sha256, end.sha256, batches
            )
            self._segments.append(
                SegmentRecord(index, segment.first, segment.end, batches, commitment)
            )

    def _write_state(self, position: int, step: int) -> StateRecord:
        data = self.state.save(step)
        name = state_file_name(position, self.state.suffix)
        # no fsync per state (~10 ms each on a busy disk): the trajectory file, written last
        # and durably, commits every state by its digest, and the build checks them
        write_atomic(self.directory / name, data, durable=False)
        return _state_record(name, data)

    def _replay(self, request: dict[str, Any]) -> Iterator[Segment]:
        out = Path(request["out"])
        out.mkdir(parents=True, exist_ok=True)
        self._results = {"header": self.header.to_json(), "segments": {}}
        if request.get("init"):
            initial = self.state.save(0)
            self._results["init"] = hashlib.sha256(initial).hexdigest()
        for item in request["segments"]:
            index = int(item["index"])
            first, end = self._bounds(index)
            if [first, end] != item["steps"]:
                raise RecordingError(
                    f"segment {index}: this code runs steps {first}-{end - 1}, the request "
                    f"names {item['steps']}"
                )
            data = Path(item["start"]).read_bytes()  # checked by the auditor, and here
            if hashlib.sha256(data).hexdigest() != item["sha256"]:
                raise RecordingError(f"segment {index}: the start state is not the committed one")
            if self.state.load(data) != first:
                raise RecordingError(f"segment {index}: the start state is not before step {first}")
            segment = Segment(index, first, end, self.schedule)
            yield segment
            batches = segment.batches_sha256()
            final = self.state.save(end)
            name = f"end-{index:07d}{self.state.suffix}"
            write_atomic(out / name, final)
            self._results["segments"][str(index)] = {
                "end": hashlib.sha256(final).hexdigest(),
                "file": name,
                "batches": batches,
            }

    def finish(self) -> Path:
        """Write the trajectory (recording) or the replay result; return the file written.

        Raises:
            RecordingError: the loop stopped before the last segment ended.
        """
        if not self._done:
            raise RecordingError("finish() before every segment ran: iterate segments() to its end")
        if self._request is not None:
            usage = resource.getrusage(resource.RUSAGE_SELF)  # start-up and imports included
            self._results["cpuSeconds"] = usage.ru_utime + usage.ru_stime
            target = Path(self._request["out"]) / REPLAY_RESULT
            write_text_atomic(target, json.dumps(self._results, sort_keys=True, indent=1))
            return target
        trajectory = seal(self.header, tuple(self._states), tuple(self._segments))
        target = self.directory / TRAJECTORY_FILE
        write_text_atomic(target, json.dumps(trajectory.to_json(), sort_keys=True, indent=1) + "\n")
        return target


def _state_record(name: str, data: bytes) -> StateRecord:
    return StateRecord(
        file=name,
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        size=len(data),
    )


def _read_request(path: Path) -> dict[str, Any]:
    request = read_json_object(path, "a replay request", hint="only a spot-check audit writes one")
    if not isinstance(request.get("segments"), list) or not isinstance(request.get("out"), str):
        raise RecordingError(f"{path} is not a replay request")
    return request
