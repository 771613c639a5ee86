"""Committed training trajectories: the stage records them, anyone checks them.

:class:`Recorder` cuts a training loop into segments, writes each segment's start state and
commits to it (:mod:`.commit`: ``c_i``, the hash chain, the Merkle root); the data order comes
from the seed and the pinned data alone (:mod:`.schedule`); :mod:`.record` reads and checks
the trajectory file. The torch state codec is :mod:`bitwright.trajectory.torchstate`
(imported on its own: the bookkeeping needs no torch).
"""

from bitwright.trajectory.commit import (
    chain_head,
    chain_start,
    inclusion_proof,
    merkle_root,
    segment_commitment,
    verify_inclusion,
)
from bitwright.trajectory.record import (
    FORMAT,
    TRAJECTORY_FILE,
    Header,
    SegmentRecord,
    StateRecord,
    Trajectory,
    TrajectoryInvalid,
    check_trajectory,
    parse_trajectory,
    read_trajectory,
)
from bitwright.trajectory.recorder import (
    REPLAY_ENV,
    REPLAY_RESULT,
    Recorder,
    RecordingError,
    Segment,
    StateCodec,
    state_file_name,
)
from bitwright.trajectory.schedule import ORDER_METHOD, Schedule

__all__ = [
    "FORMAT",
    "ORDER_METHOD",
    "REPLAY_ENV",
    "REPLAY_RESULT",
    "TRAJECTORY_FILE",
    "Header",
    "Recorder",
    "RecordingError",
    "Schedule",
    "Segment",
    "SegmentRecord",
    "StateCodec",
    "StateRecord",
    "Trajectory",
    "TrajectoryInvalid",
    "chain_head",
    "chain_start",
    "check_trajectory",
    "inclusion_proof",
    "merkle_root",
    "parse_trajectory",
    "read_trajectory",
    "segment_commitment",
    "state_file_name",
    "verify_inclusion",
]
