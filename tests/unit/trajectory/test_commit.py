"""Commitments, chain and Merkle proofs: RFC 6962 trees, proofs that fail when they should."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from bitwright.trajectory import (
    chain_head,
    chain_start,
    inclusion_proof,
    merkle_root,
    segment_commitment,
    verify_inclusion,
)


def _leaves(n: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, as written: split at the largest power of two below n."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    left, right = _reference_root(leaves[:k]), _reference_root(leaves[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


@given(st.integers(min_value=1, max_value=70))
def test_merkle_root_is_rfc6962s_and_every_proof_verifies(n: int) -> None:
    leaves = _leaves(n)
    root = merkle_root(leaves)
    assert root == _reference_root([bytes.fromhex(c) for c in leaves]).hex()
    for index in range(n):
        proof = inclusion_proof(leaves, index)
        assert verify_inclusion(leaves[index], index, n, proof, root)


def test_a_proof_fails_for_another_leaf_index_root_or_size() -> None:
    leaves = _leaves(21)
    root = merkle_root(leaves)
    proof = inclusion_proof(leaves, 5)
    assert not verify_inclusion(leaves[6], 5, 21, proof, root)
    assert not verify_inclusion(leaves[5], 6, 21, proof, root)
    assert not verify_inclusion(leaves[5], 5, 21, proof, merkle_root(leaves[:20]))
    assert not verify_inclusion(leaves[5], 5, 21, proof[:-1], root)


def test_the_chain_head_fixes_order_and_header() -> None:
    commitments = _leaves(5)
    start = chain_start({"seed": 1})
    head = chain_head(start, commitments)
    swapped = [commitments[1], commitments[0], *commitments[2:]]
    assert chain_head(start, swapped) != head
    assert chain_head(chain_start({"seed": 2}), commitments) != head
    assert chain_head(start, commitments[:-1]) != head


def test_a_commitment_covers_every_field() -> None:
    sha = "a" * 64
    base = segment_commitment(3, (12, 16), sha, "b" * 64, "c" * 64)
    assert segment_commitment(4, (12, 16), sha, "b" * 64, "c" * 64) != base
    assert segment_commitment(3, (12, 17), sha, "b" * 64, "c" * 64) != base
    assert segment_commitment(3, (12, 16), "d" * 64, "b" * 64, "c" * 64) != base
    assert segment_commitment(3, (12, 16), sha, "d" * 64, "c" * 64) != base
    assert segment_commitment(3, (12, 16), sha, "b" * 64, "d" * 64) != base
