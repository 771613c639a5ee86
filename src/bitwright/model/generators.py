"""Fingerprints of random generator states, and the states a declared seed produces.

A stage seeds Python's ``random``, numpy's legacy global generator and torch's CPU generator
(:mod:`bitwright.stagekit`); its receipt carries the sha256 of each state right after. The
runner recomputes, from the declared seed alone and without importing numpy or torch, the
state each generator must then be in, so a receipt whose generator was seeded otherwise (or
not at all) is caught. The encodings are fixed here, for both sides:

* ``random``: the 625 words of ``random.getstate()`` (little-endian uint32) and the cached
  Gaussian (``repr``);
* ``numpy``: ``RandomState.get_state()``: the 624 key words, position, has-Gaussian flag and
  cached Gaussian (``MT19937`` seeded by ``init_genrand``, as numpy's legacy seeding does);
* ``torch``: the bytes of ``torch.get_rng_state()``: torch's serialized CPU generator (the
  stable legacy layout that checkpoints store: seed, ``left``, ``seeded``, ``next``, the 624
  MT19937 words as uint64, three unused doubles, a flag, the cached float normal).
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Sequence

__all__ = [
    "GENERATORS",
    "expected_fingerprints",
    "numpy_fingerprint",
    "random_fingerprint",
    "torch_fingerprint",
]

GENERATORS = ("random", "numpy", "torch")
"""The generators a receipt may fingerprint."""

_MT_WORDS = 624
_UINT32 = 0xFFFFFFFF


def random_fingerprint(state: tuple[object, ...]) -> str:
    """Fingerprint of ``random.getstate()``."""
    version, words, gauss = state
    if version != 3 or not isinstance(words, tuple):
        raise ValueError(f"unknown random state version {version!r}")
    packed = struct.pack(f"<{len(words)}I", *words)
    return _sha256(b"random\0" + packed + repr(gauss).encode())


def numpy_fingerprint(keys: Sequence[int], pos: int, has_gauss: int, gauss: float) -> str:
    """Fingerprint of numpy's legacy ``get_state()`` (``keys`` as Python ints)."""
    packed = struct.pack(f"<{len(keys)}I", *keys) + struct.pack("<iid", pos, has_gauss, gauss)
    return _sha256(b"numpy\0" + packed)


def torch_fingerprint(state: bytes) -> str:
    """Fingerprint of the bytes of ``torch.get_rng_state()``."""
    return _sha256(b"torch\0" + state)


def expected_fingerprints(seed: int) -> dict[str, str]:
    """The fingerprint of every generator in :data:`GENERATORS` right after seeding ``seed``."""
    words = _mt19937_init(seed)
    torch_state = (
        struct.pack("<QiiQ", seed & 0xFFFFFFFFFFFFFFFF, 1, 1, 0)
        + struct.pack(f"<{_MT_WORDS}Q", *words)
        + struct.pack("<dddi", 0.0, 0.0, 0.0, 0)
        + bytes(4)  # padding of the legacy struct to 8 bytes
        + struct.pack("<f?", 0.0, False)
        + bytes(3)
    )
    return {
        "random": random_fingerprint(random.Random(seed).getstate()),
        "numpy": numpy_fingerprint(words, _MT_WORDS, 0, 0.0),
        "torch": torch_fingerprint(torch_state),
    }


def _mt19937_init(seed: int) -> list[int]:
    """MT19937's ``init_genrand``: the state words after seeding with a 32-bit ``seed``."""
    words = [seed & _UINT32]
    for index in range(1, _MT_WORDS):
        last = words[-1]
        words.append((1812433253 * (last ^ (last >> 30)) + index) & _UINT32)
    return words


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
