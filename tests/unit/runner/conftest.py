"""Fixtures of the runner tests: a small repository in tmp_path and real sandboxes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_project import Project

from bitwright.errors import OperationalError
from bitwright.runner import BubblewrapSandbox, UnshareSandbox


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "repo"
    proj = Project(root=root, logs=tmp_path / "logs")
    proj.write("data/in.txt", "declared input\n")
    proj.write("secret.txt", "undeclared input\n")
    proj.write(".bitwright/keys/owner.key", "PRIVATE KEY\n")
    proj.write(".git/HEAD", "ref: refs/heads/main\n")
    proj.write("params.yaml", "train:\n  epochs: 1\n")
    return proj


@pytest.fixture(scope="session")
def bwrap() -> BubblewrapSandbox:
    try:
        return BubblewrapSandbox.detect()
    except OperationalError as exc:
        pytest.skip(f"bubblewrap cannot run here: {exc.message}")


@pytest.fixture(scope="session")
def unshare() -> UnshareSandbox:
    try:
        return UnshareSandbox.detect()
    except OperationalError as exc:
        pytest.skip(f"unshare cannot create a network namespace here: {exc.message}")


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A TCP server on the host's loopback; only an unsealed stage can reach it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]
