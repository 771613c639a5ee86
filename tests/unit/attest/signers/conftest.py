"""Fixtures of the signer tests: private sigstore instances and keyless bundles, built offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from keyless_data import GITHUB_ISSUER, WORKFLOW, make_statement
from sigstore_testroot import PrivateSigstore

from bitwright.attest import INTOTO_PAYLOAD_TYPE


@pytest.fixture(scope="module")
def instance() -> PrivateSigstore:
    """The sigstore instance the verifier trusts."""
    return PrivateSigstore("bitwright-test")


@pytest.fixture(scope="module")
def rogue_instance() -> PrivateSigstore:
    """Another instance, with its own CA and logs, that the verifier does not trust."""
    return PrivateSigstore("rogue")


@pytest.fixture(scope="module")
def statement() -> bytes:
    return make_statement()


@pytest.fixture(scope="module")
def keyless_bundle(instance: PrivateSigstore, statement: bytes) -> dict[str, Any]:
    return instance.sign_dsse(
        statement, INTOTO_PAYLOAD_TYPE, identity=WORKFLOW, issuer=GITHUB_ISSUER
    )


@pytest.fixture(scope="module")
def trust_config(instance: PrivateSigstore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trusted instance's ClientTrustConfig on disk."""
    path = tmp_path_factory.mktemp("sigstore") / "trust_config.json"
    path.write_text(json.dumps(instance.client_trust_config()), encoding="utf-8")
    return path
