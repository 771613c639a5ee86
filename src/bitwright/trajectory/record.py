"""The trajectory file: what a training run committed to, written by the stage, read by anyone.

``bitwright-trajectory.json`` sits beside the run's state files in a declared out of the
training stage. It holds the run's header (seed, pinned data, data order, step count, segment
length, the model file the run produced, the state format), one entry per state file (the
state before each segment, and the final state), one entry per segment (its steps, the
commitment to its batch ids, ``c_i``), the chain head and the Merkle root (see
:mod:`bitwright.trajectory.commit`).

:func:`parse_trajectory` reads it as hostile input: a regular file, bounded in size and
depth, exact keys, typed values, plain file names (no path can leave the directory).
:func:`check_trajectory` then recomputes every commitment, the chain and the root, and
checks that the segments cover the steps completely, in order, none skipped or repeated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwright.errors import VerificationFailed
from bitwright.fileio import read_json_object
from bitwright.trajectory.commit import chain_head, chain_start, merkle_root, segment_commitment

__all__ = [
    "FORMAT",
    "MAX_SEGMENTS",
    "TRAJECTORY_FILE",
    "Header",
    "SegmentRecord",
    "StateRecord",
    "Trajectory",
    "TrajectoryInvalid",
    "check_trajectory",
    "parse_trajectory",
    "read_trajectory",
]

FORMAT = "https://bitwright.dev/trajectory/v1"
TRAJECTORY_FILE = "bitwright-trajectory.json"
"""The reserved file name that makes a stage's out a committed training trajectory."""

MAX_SEGMENTS = 1 << 20
MAX_FILE_BYTES = 512 << 20

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_REPO_PATH = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9._/-]{0,1023}")
_HINT = "the trajectory is damaged or was not written by bitwright.trajectory"


class TrajectoryInvalid(VerificationFailed):
    """A trajectory file is malformed, or its commitments do not hold together."""


@dataclass(frozen=True)
class Header:
    """What the whole run is bound to (the chain starts from it)."""

    seed: int
    data_path: str
    data_sha256: str
    items: int
    batch_size: int
    order: str
    steps: int
    segment_steps: int
    model: str
    state_format: str

    def to_json(self) -> dict[str, Any]:
        """The header as it is written and hashed into the chain's origin."""
        return {
            "seed": self.seed,
            "data": {"path": self.data_path, "sha256": self.data_sha256, "items": self.items},
            "order": {"method": self.order, "batchSize": self.batch_size},
            "steps": self.steps,
            "segmentSteps": self.segment_steps,
            "model": self.model,
            "stateFormat": self.state_format,
        }


@dataclass(frozen=True)
class StateRecord:
    """One state file: its name in the trajectory's directory, sha256, DVC md5 and size."""

    file: str
    sha256: str
    md5: str
    size: int

    def to_json(self) -> dict[str, Any]:
        """The entry as written."""
        return {"file": self.file, "sha256": self.sha256, "md5": self.md5, "size": self.size}


@dataclass(frozen=True)
class SegmentRecord:
    """One segment: steps ``first`` to ``end - 1``, its batch ids' sha256 and ``c_i``."""

    index: int
    first: int
    end: int
    batches: str
    commitment: str

    def to_json(self) -> dict[str, Any]:
        """The entry as written."""
        return {
            "index": self.index,
            "steps": [self.first, self.end],
            "batches": self.batches,
            "commitment": self.commitment,
        }


@dataclass(frozen=True)
class Trajectory:
    """A committed training run (see the module doc)."""

    header: Header
    states: tuple[StateRecord, ...]
    segments: tuple[SegmentRecord, ...]
    chain_head: str
    merkle_root: str

    def to_json(self) -> dict[str, Any]:
        """The trajectory file's JSON object."""
        return {
            "format": FORMAT,
            **self.header.to_json(),
            "states": [s.to_json() for s in self.states],
            "segments": [s.to_json() for s in self.segments],
            "chainHead": self.chain_head,
            "merkleRoot": self.merkle_root,
        }

    @property
    def commitments(self) -> tuple[str, ...]:
        """``c_0 .. c_n-1`` as recorded."""
        return tuple(s.commitment for s in self.segments)

    def start_state(self, segment: int) -> StateRecord:
        """The state a segment starts from."""
        return self.states[segment]

    def end_state(self, segment: int) -> StateRecord:
        """The state a segment ends in (the next one's start, or the final state)."""
        return self.states[segment + 1]

    @property
    def final_state(self) -> StateRecord:
        """The state after the last step: the released model must be its weights."""
        return self.states[-1]


def expected_commitment(t: Trajectory, seg: SegmentRecord) -> str:
    """Recompute ``c_i`` of ``seg`` from the recorded fields."""
    return segment_commitment(
        seg.index,
        (seg.first, seg.end),
        t.states[seg.index].sha256,
        t.states[seg.index + 1].sha256,
        seg.batches,
    )


def seal(
    header: Header, states: tuple[StateRecord, ...], segments: tuple[SegmentRecord, ...]
) -> Trajectory:
    """Return the trajectory of these records with its chain head and Merkle root computed."""
    commitments = [s.commitment for s in segments]
    return Trajectory(
        header=header,
        states=states,
        segments=segments,
        chain_head=chain_head(chain_start(header.to_json()), commitments),
        merkle_root=merkle_root(commitments),
    )


def check_trajectory(t: Trajectory) -> None:
    """Check that ``t`` holds together: complete, consecutive, every hash recomputed.

    Raises:
        TrajectoryInvalid: the first problem, naming the segment and its steps.
    """
    h = t.header
    count = -(-h.steps // h.segment_steps)
    if len(t.segments) != count:
        _invalid(
            f"{len(t.segments)} segments for {h.steps} steps of {h.segment_steps}: "
            f"expected {count} (steps skipped or repeated)"
        )
    for position, seg in enumerate(t.segments):
        first = position * h.segment_steps
        end = min(first + h.segment_steps, h.steps)
        where = f"segment {position} (steps {first}-{end - 1})"
        if seg.index != position or (seg.first, seg.end) != (first, end):
            _invalid(
                f"{where} is recorded as segment {seg.index} with steps {seg.first}-{seg.end - 1}: "
                "the chain is not complete and in order"
            )
        if expected_commitment(t, seg) != seg.commitment:
            _invalid(f"{where}: its commitment is not that of its states and batches")
    if chain_head(chain_start(h.to_json()), t.commitments) != t.chain_head:
        _invalid("the chain head is not the chain of the header and the segment commitments")
    if merkle_root(t.commitments) != t.merkle_root:
        _invalid("the Merkle root is not that of the segment commitments")
    names = [s.file for s in t.states]
    if len(set(names)) != len(names):
        _invalid("two states share a file name")


def read_trajectory(path: Path, *, inside: Path | None = None) -> Trajectory:
    """Read and parse a trajectory file (bounded, regular file only); see :func:`parse_trajectory`.

    Raises:
        NotRegularFile, OperationalError: the file cannot be read safely.
        TrajectoryInvalid: it is not a trajectory.
    """
    data = read_json_object(
        path, "a bitwright trajectory", hint=_HINT, limit=MAX_FILE_BYTES, max_depth=8, inside=inside
    )
    return parse_trajectory(data, source=str(path))


def parse_trajectory(data: Mapping[str, Any], *, source: str = "trajectory") -> Trajectory:
    """Parse the JSON object of a trajectory file, refusing anything unexpected.

    Raises:
        TrajectoryInvalid: unknown or missing keys, wrong types, bad digests or file names,
            too many segments, or not one more state than segments.
    """
    try:
        return _parse(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise TrajectoryInvalid(
            f"{source} is not a bitwright trajectory: {exc}", hint=_HINT
        ) from None


def _parse(data: Mapping[str, Any]) -> Trajectory:
    _keys(
        data,
        {
            "format",
            "seed",
            "data",
            "order",
            "steps",
            "segmentSteps",
            "model",
            "stateFormat",
            "states",
            "segments",
            "chainHead",
            "merkleRoot",
        },
        "document",
    )
    if data["format"] != FORMAT:
        raise ValueError(f"format {data['format']!r} is not {FORMAT}")
    dat = _keys(data["data"], {"path", "sha256", "items"}, "data")
    order = _keys(data["order"], {"method", "batchSize"}, "order")
    header = Header(
        seed=_int(data["seed"], "seed", low=-(1 << 63), high=(1 << 63) - 1),
        data_path=_match(dat["path"], _REPO_PATH, "data.path"),
        data_sha256=_match(dat["sha256"], _HEX64, "data.sha256"),
        items=_int(dat["items"], "data.items", low=1),
        batch_size=_int(order["batchSize"], "order.batchSize", low=1),
        order=_text(order["method"], "order.method"),
        steps=_int(data["steps"], "steps", low=1),
        segment_steps=_int(data["segmentSteps"], "segmentSteps", low=1),
        model=_match(data["model"], _REPO_PATH, "model"),
        state_format=_text(data["stateFormat"], "stateFormat"),
    )
    states_raw, segments_raw = data["states"], data["segments"]
    if not isinstance(segments_raw, list) or not isinstance(states_raw, list):
        raise TypeError("states and segments must be lists")
    if not 1 <= len(segments_raw) <= MAX_SEGMENTS:
        raise ValueError(f"{len(segments_raw)} segments (1 to {MAX_SEGMENTS} accepted)")
    if len(states_raw) != len(segments_raw) + 1:
        raise ValueError(
            f"{len(states_raw)} states for {len(segments_raw)} segments (one more expected)"
        )
    states = tuple(_state(s, i) for i, s in enumerate(states_raw))
    segments = tuple(_segment(s, i) for i, s in enumerate(segments_raw))
    return Trajectory(
        header=header,
        states=states,
        segments=segments,
        chain_head=_match(data["chainHead"], _HEX64, "chainHead"),
        merkle_root=_match(data["merkleRoot"], _HEX64, "merkleRoot"),
    )


def _state(raw: Any, i: int) -> StateRecord:
    entry = _keys(raw, {"file", "sha256", "md5", "size"}, f"states[{i}]")
    return StateRecord(
        file=_match(entry["file"], _FILE_NAME, f"states[{i}].file"),
        sha256=_match(entry["sha256"], _HEX64, f"states[{i}].sha256"),
        md5=_match(entry["md5"], _HEX32, f"states[{i}].md5"),
        size=_int(entry["size"], f"states[{i}].size", low=0),
    )


def _segment(raw: Any, i: int) -> SegmentRecord:
    entry = _keys(raw, {"index", "steps", "batches", "commitment"}, f"segments[{i}]")
    steps = entry["steps"]
    if not isinstance(steps, list) or len(steps) != 2:
        raise TypeError(f"segments[{i}].steps must be [first, end]")
    first = _int(steps[0], f"segments[{i}].steps[0]", low=0)
    end = _int(steps[1], f"segments[{i}].steps[1]", low=first + 1)
    return SegmentRecord(
        index=_int(entry["index"], f"segments[{i}].index", low=0),
        first=first,
        end=end,
        batches=_match(entry["batches"], _HEX64, f"segments[{i}].batches"),
        commitment=_match(entry["commitment"], _HEX64, f"segments[{i}].commitment"),
    )


def _keys(value: Any, expected: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{where} must be an object")
    if set(value) != expected:
        extra, missing = sorted(set(value) - expected), sorted(expected - set(value))
        raise ValueError(f"{where}: unknown keys {extra}, missing keys {missing}")
    return value


def _int(value: Any, where: str, *, low: int = 0, high: int = (1 << 62)) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{where} must be an integer from {low} to {high}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 256:
        raise ValueError(f"{where} must be a short string")
    return value


def _match(value: Any, pattern: re.Pattern[str], where: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ValueError(f"{where} {str(value)[:80]!r} is malformed")
    if ".." in value.split("/"):
        raise ValueError(f"{where} {value!r} leaves its directory")
    return value


def _invalid(problem: str) -> None:
    raise TrajectoryInvalid(
        f"trajectory: {problem}", hint="the run's commitments do not hold together; do not trust it"
    )
