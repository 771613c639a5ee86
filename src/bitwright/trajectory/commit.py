"""Segment commitments, the hash chain over them, and their Merkle tree with inclusion proofs.

A training run is cut into segments of consecutive steps. Segment ``i`` is committed as::

    c_i = SHA256("bitwright-segment/v1" 0x00 || JSON{index, steps: [a, b], start, end, batches})

where ``start`` and ``end`` are the sha256 of the state files before step ``a`` and after
step ``b - 1`` (weights, optimizer state, generator states, step) and ``batches`` the sha256
of the segment's batch ids. The chain starts from the run's header and takes every
commitment in order::

    h_-1 = SHA256("bitwright-chain/v1" 0x00 || JSON(header))      h_i = SHA256(h_i-1 || c_i)

so its head fixes the whole run, in order. The Merkle tree over the commitments follows
RFC 6962 (leaf ``SHA256(0x00 || c_i)``, node ``SHA256(0x01 || left || right)``, split at the
largest power of two below the size): an inclusion proof shows that one segment belongs to
the signed root without the other commitments. JSON here is sorted keys, no spaces, ASCII:
every value is an integer or a hex string, so that is canonical.

Standard library only: stage code, the builder and the auditor all compute these.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "chain_head",
    "chain_start",
    "inclusion_proof",
    "merkle_root",
    "segment_commitment",
    "verify_inclusion",
]

_SEGMENT_TAG = b"bitwright-segment/v1\x00"
_CHAIN_TAG = b"bitwright-chain/v1\x00"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def segment_commitment(
    index: int, steps: tuple[int, int], start: str, end: str, batches: str
) -> str:
    """Return ``c_i`` (hex) of segment ``index`` covering ``steps`` = [first, end)."""
    body = {
        "index": index,
        "steps": [steps[0], steps[1]],
        "start": start,
        "end": end,
        "batches": batches,
    }
    return hashlib.sha256(_SEGMENT_TAG + _canonical(body)).hexdigest()


def chain_start(header: Mapping[str, Any]) -> str:
    """Return ``h_-1`` (hex): the chain's origin, bound to the run's header."""
    return hashlib.sha256(_CHAIN_TAG + _canonical(dict(header))).hexdigest()


def chain_head(start: str, commitments: Sequence[str]) -> str:
    """Return the head ``h_n-1`` (hex) of the chain from ``start`` over ``commitments``."""
    head = bytes.fromhex(start)
    for commitment in commitments:
        head = hashlib.sha256(head + bytes.fromhex(commitment)).digest()
    return head.hex()


def _leaf(commitment: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(commitment)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _root(leaves: Sequence[bytes]) -> bytes:
    level = list(leaves)
    # Bottom-up pairing gives RFC 6962's tree: a lone last node moves up unchanged.
    while len(level) > 1:
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def merkle_root(commitments: Sequence[str]) -> str:
    """Return the RFC 6962 Merkle tree hash (hex) of ``commitments`` (at least one)."""
    if not commitments:
        raise ValueError("a Merkle tree needs at least one leaf")
    return _root([_leaf(c) for c in commitments]).hex()


def inclusion_proof(commitments: Sequence[str], index: int) -> list[str]:
    """Return the RFC 6962 audit path (hex hashes, leaf to root) of leaf ``index``."""
    if not 0 <= index < len(commitments):
        raise ValueError(f"leaf {index} is not in a tree of {len(commitments)}")
    leaves = [_leaf(c) for c in commitments]
    path: list[bytes] = []
    while len(leaves) > 1:
        k = _split(len(leaves))
        if index < k:
            path.append(_root(leaves[k:]))
            leaves = leaves[:k]
        else:
            path.append(_root(leaves[:k]))
            leaves, index = leaves[k:], index - k
    return [h.hex() for h in reversed(path)]


def verify_inclusion(
    commitment: str, index: int, size: int, proof: Sequence[str], root: str
) -> bool:
    """Return whether ``proof`` shows ``commitment`` as leaf ``index`` of the tree ``root``.

    RFC 9162 section 2.1.3.2: recompute the root from the leaf and its audit path.
    """
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    result = _leaf(commitment)
    for hex_hash in proof:
        if sn == 0:
            return False
        sibling = bytes.fromhex(hex_hash)
        if fn % 2 == 1 or fn == sn:
            result = _node(sibling, result)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = _node(result, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result.hex() == root
