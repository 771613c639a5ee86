"""Fixtures of the verify tests: real keys and real releases, built once and copied per test."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from release_factory import Keys, Release, make_keys, make_release


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("verify-keys"))


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Release:
    return make_release(tmp_path_factory.mktemp("verify-build"), keys)


@pytest.fixture(scope="session")
def other_build(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Release:
    """The same pipeline built by the same owner with other params: another model."""
    params = b"prepare:\n  test_fraction: 0.5\ntrain:\n  lr: 0.02\n"
    return make_release(tmp_path_factory.mktemp("verify-other"), keys, params=params)


@pytest.fixture
def release(pristine: Release, tmp_path: Path) -> Release:
    """A private copy of the honest release, free to tamper with."""
    root = tmp_path / "release"
    shutil.copytree(pristine.root, root)
    return dataclasses.replace(pristine, root=root)
