"""A training loop without torch: its state is one number the batches fold into."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bitwright.trajectory import Recorder


class CounterState:
    """A :class:`StateCodec` of one integer, folded with each batch's ids."""

    suffix = ".json"
    format = "counter/v1"

    def __init__(self) -> None:
        self.value = 0

    def save(self, step: int) -> bytes:
        return json.dumps({"step": step, "value": self.value}).encode()

    def load(self, data: bytes) -> int:
        state = json.loads(data)
        self.value = state["value"]
        return int(state["step"])

    def train(self, batch: object) -> None:
        digest = hashlib.sha256(f"{self.value}:{list(batch)}".encode()).digest()  # type: ignore[call-overload]
        self.value = int.from_bytes(digest[:6], "little")


def run_loop(
    directory: Path, data: Path, *, segments: int = 12, skip_last: bool = False
) -> Recorder:
    """Train the counter for ``segments`` segments of 3 steps, recorded in ``directory``."""
    state = CounterState()
    run = Recorder(
        directory,
        state=state,
        seed=5,
        data=data,
        items=20,
        batch_size=4,
        steps=3 * segments,
        segment_steps=3,
        model="model.json",
    )
    for segment in run.segments():
        for n, batch in enumerate(segment):
            if skip_last and segment.index == segments - 1 and n == 2:
                break
            state.train(batch)
    return run
