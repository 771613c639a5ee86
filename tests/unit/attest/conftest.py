"""Fixtures of the attest tests: real key pairs on disk, generated once per session."""

from __future__ import annotations

import pytest

from bitwright.attest import generate_keypair, load_signer
from bitwright.attest.keys import KeyPair, Signer


@pytest.fixture(scope="session")
def owner_pair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("keys"), name="owner")


@pytest.fixture(scope="session")
def owner(owner_pair: KeyPair) -> Signer:
    return load_signer(owner_pair.private_path)


@pytest.fixture(scope="session")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    pair = generate_keypair(tmp_path_factory.mktemp("other-keys"), name="stranger")
    return load_signer(pair.private_path)
