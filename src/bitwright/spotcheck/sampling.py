"""Which segments an audit checks: drawn from randomness the trainer could not know.

The trainer committed to its run (the chain head is signed) before any audit; the auditor then
draws ``n`` distinct segments from ``SHAKE256("bitwright-spotcheck/v1" 0x00 || secret || head)``
by rejection sampling (uniform, no modulo bias). The secret is the auditor's own 32 random
bytes, or, for an audit anyone can repeat, ``--seed S`` (then the secret is the text
``seed:S``). Only ``sha256(secret)`` is published with a secret draw, as the randomness
commitment: revealing the secret later proves the choice was not picked after the fact.

A trainer who forged ``F`` of ``N`` segments escapes ``n`` draws without replacement with
probability ``C(N-F, n) / C(N, n)`` (at most ``(1 - F/N)^n``); :func:`detection_probability`
is one minus that.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass

__all__ = ["Randomness", "choose_segments", "detection_probability"]

_TAG = b"bitwright-spotcheck/v1\x00"


@dataclass(frozen=True)
class Randomness:
    """The auditor's randomness: a secret, how it was made, and its public commitment."""

    secret: bytes
    seed: int | None

    @classmethod
    def draw(cls, seed: int | None = None) -> Randomness:
        """Fresh secret randomness, or the reproducible secret of ``seed``."""
        if seed is None:
            return cls(os.urandom(32), None)
        return cls(f"seed:{seed}".encode(), seed)

    @property
    def method(self) -> str:
        """``seed`` (anyone can repeat the draw) or ``secret`` (the auditor's own)."""
        return "secret" if self.seed is None else "seed"

    @property
    def commitment(self) -> str:
        """``sha256(secret)``, published; the secret itself only for a seeded draw."""
        return hashlib.sha256(self.secret).hexdigest()


def choose_segments(randomness: Randomness, chain_head: str, total: int, n: int) -> tuple[int, ...]:
    """Return ``min(n, total)`` distinct segment indices in ``[0, total)``, sorted.

    Raises:
        ValueError: ``total`` or ``n`` is not positive.
    """
    if total < 1 or n < 1:
        raise ValueError("an audit draws at least one segment of at least one")
    want = min(n, total)
    limit = (1 << 64) - (1 << 64) % total  # values at or above are rejected: no modulo bias
    seed = _TAG + randomness.secret + bytes.fromhex(chain_head)
    chosen: list[int] = []
    block = 0
    while len(chosen) < want:
        stream = hashlib.shake_256(seed + block.to_bytes(8, "little")).digest(8 * 64)
        block += 1
        for offset in range(0, len(stream), 8):
            value = int.from_bytes(stream[offset : offset + 8], "little")
            if value < limit and value % total not in chosen:
                chosen.append(value % total)
                if len(chosen) == want:
                    break
    return tuple(sorted(chosen))


def detection_probability(total: int, fraction: float, n: int) -> float:
    """The chance that ``n`` distinct draws of ``total`` segments hit one of ``ceil(f * total)``."""
    forged = min(total, math.ceil(fraction * total - 1e-9))
    if forged <= 0:
        return 0.0
    draws = min(n, total)
    if total - forged < draws:
        return 1.0
    escape = 1.0
    for j in range(draws):
        escape *= (total - forged - j) / (total - j)
    return 1.0 - escape
