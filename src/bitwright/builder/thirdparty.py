"""Third-party inputs of a build: pinned ones checked and recorded, unpinned ones named.

Before any stage runs, the pins (``thirdparty.pins.json``, :mod:`bitwright.pins.tofu`) that
stages read are checked against their local files, so the provenance never records a digest
the stages did not read; they become resolved dependencies. A stage that reads files git does
not track and nothing else provides (no stage, no DVC snapshot, no pin) reads an unpinned
third-party input: the build names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bitwright.attest.provenance import ThirdParty
from bitwright.digest import memory_cache
from bitwright.model import BuildPins, Pipeline
from bitwright.pins.tofu import (
    ThirdPartyPin,
    check_local,
    pins_read_by,
    read_pins,
    unpinned_inputs,
)

__all__ = ["ThirdPartyInputs", "third_party_inputs"]


@dataclass(frozen=True)
class ThirdPartyInputs:
    """What a build reads from outside the repository.

    Attributes:
        pinned: the pins some stage reads, checked against their local files.
        unpinned: stage -> third-party files it reads that no pin covers.
    """

    pinned: tuple[ThirdPartyPin, ...] = ()
    unpinned: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def dependencies(self) -> list[ThirdParty]:
        """The pinned inputs as the provenance records them."""
        return [ThirdParty(p.uri, p.sha256, p.kind, p.path) for p in self.pinned]


def third_party_inputs(repo: Path, pipeline: Pipeline, pins: BuildPins) -> ThirdPartyInputs:
    """Check the pinned inputs of ``pipeline`` and find the unpinned ones.

    Raises:
        CheckFailed: a pinned input's local files are not as pinned.
        UsageError: the pins file is malformed.
    """
    pins_file = read_pins(repo)
    pinned = pins_read_by(pipeline, pins_file)
    check_local(repo, pinned, memory_cache())  # what the build attests, it hashes itself
    unpinned = unpinned_inputs(repo, pipeline, pins_file, [data.path for data in pins.data])
    return ThirdPartyInputs(tuple(pinned), unpinned)
