"""Fixtures of the release tests: real key pairs and a small real artifacts directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitwright.attest import generate_keypair
from bitwright.attest.keys import KeyPair


@pytest.fixture(scope="session")
def owner_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("keys"), name="owner")


@pytest.fixture(scope="session")
def stranger_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("other-keys"), name="stranger")


@pytest.fixture(scope="session")
def ed25519_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("ed-keys"), name="ed", key_type="ed25519")


@pytest.fixture
def release_dir(tmp_path: Path) -> Path:
    """A release directory with ``artifacts/`` as the package stage leaves it."""
    artifacts = tmp_path / "release" / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / "model.safetensors").write_bytes(bytes(range(256)) * 16)
    (artifacts / "metrics.json").write_text('{"accuracy": 0.975, "loss": 0.08}\n')
    (artifacts / "MODEL_CARD.md").write_text("# Model card\n")
    return tmp_path / "release"
