"""The data order of a training run: which items each step trains on, from the seed alone.

A trainer may not pick convenient batches, so the order is not the trainer's to choose: it is
a pure function of the recorded seed, the sha256 of the pinned training data and the epoch,
defined here without any library's random generator (whose algorithms change between
versions)::

    keys_e = SHAKE256("bitwright-order/v1" 0x00 || seed || data sha256 || e)
             (seed and e as 8 little-endian bytes) read as n little-endian uint64
    order_e = the item indices 0..n-1 sorted by (keys_e[i], i)

Epoch ``e`` is cut into ``ceil(n / batch_size)`` batches (the last may be short); global step
``t`` is batch ``t mod steps_per_epoch`` of epoch ``t div steps_per_epoch``. A segment's
batch ids are committed as the sha256 of its ids, each as a little-endian signed 64-bit
integer, step after step. numpy sorts faster when it is there; the order is the same.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["ORDER_METHOD", "Schedule"]

ORDER_METHOD = "shake256-sort/v1"
"""The name of this data order, recorded in every trajectory."""

_TAG = b"bitwright-order/v1\x00"


@dataclass(frozen=True)
class Schedule:
    """The data order of a run: ``items`` training items in batches of ``batch_size``.

    Attributes:
        seed: the run's recorded seed.
        data_sha256: the sha256 (hex) of the pinned training data file.
        items: how many items the training data holds.
        batch_size: the items of one step (the last batch of an epoch may be shorter).
    """

    seed: int
    data_sha256: str
    items: int
    batch_size: int

    def __post_init__(self) -> None:
        if self.items < 1 or self.batch_size < 1:
            raise ValueError("a schedule needs at least one item and a positive batch size")
        if len(bytes.fromhex(self.data_sha256)) != 32:
            raise ValueError("data_sha256 is not a sha256")

    @property
    def steps_per_epoch(self) -> int:
        """How many steps one pass over the data takes."""
        return -(-self.items // self.batch_size)

    def epoch_order(self, epoch: int) -> array[int]:
        """Return the item indices of ``epoch`` in training order (signed 64-bit)."""
        return _order(self.seed, self.data_sha256, self.items, epoch)

    def batch(self, step: int) -> array[int]:
        """Return the item ids that global ``step`` trains on."""
        epoch, index = divmod(step, self.steps_per_epoch)
        start = index * self.batch_size
        return self.epoch_order(epoch)[start : start + self.batch_size]

    def batches(self, first: int, end: int) -> Iterator[array[int]]:
        """Yield the item ids of the steps ``first`` to ``end - 1``, in order."""
        step = first
        while step < end:
            epoch, index = divmod(step, self.steps_per_epoch)
            order = self.epoch_order(epoch)  # once per epoch, not per step
            last = min(end - epoch * self.steps_per_epoch, self.steps_per_epoch)
            for position in range(index, last):
                yield order[position * self.batch_size : (position + 1) * self.batch_size]
            step += last - index

    def batches_sha256(self, first: int, end: int) -> str:
        """Return the commitment to the batch ids of the steps ``first`` to ``end - 1``."""
        digest = hashlib.sha256()
        for ids in self.batches(first, end):
            digest.update(ids_bytes(ids))
        return digest.hexdigest()


def ids_bytes(ids: array[int]) -> bytes:
    """Return ``ids`` as little-endian signed 64-bit integers (what a batch commitment hashes)."""
    if sys.byteorder == "little":
        return ids.tobytes()
    swapped = array("q", ids)
    swapped.byteswap()
    return swapped.tobytes()


@lru_cache(maxsize=4)
def _order(seed: int, data_sha256: str, items: int, epoch: int) -> array[int]:
    material = (
        _TAG
        + seed.to_bytes(8, "little", signed=True)
        + bytes.fromhex(data_sha256)
        + epoch.to_bytes(8, "little", signed=False)
    )
    stream = hashlib.shake_256(material).digest(8 * items)
    try:
        import numpy
    except ImportError:  # the bookkeeping needs no numpy; a stable sort gives the same order
        keys = array("Q", stream)
        if sys.byteorder != "little":
            keys.byteswap()
        return array("q", sorted(range(items), key=keys.__getitem__))
    order = numpy.argsort(numpy.frombuffer(stream, dtype="<u8"), kind="stable")
    return array("q", order.astype(numpy.int64).tobytes())
