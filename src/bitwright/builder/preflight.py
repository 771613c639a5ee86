"""Preflight of a build: check the key, params and tree, then pin everything once."""

from __future__ import annotations

import datetime as dt
import platform
import uuid
from collections.abc import Callable
from pathlib import Path

from bitwright.attest import load_signer
from bitwright.builder.context import BuildContext
from bitwright.builder.data import pull_missing_data
from bitwright.builder.paths import ProjectPaths
from bitwright.digest import memory_cache, sha256_file
from bitwright.errors import KeyProblem
from bitwright.image import image_environment, obtain_image
from bitwright.model import BuildPins, ContainerPin, EnvironmentPin, SandboxKind
from bitwright.pins import (
    pin_container,
    pin_data,
    pin_determinism,
    pin_environment,
    pin_git_commit,
)
from bitwright.pins.container import read_image_lock
from bitwright.pins.data import find_dvc_files
from bitwright.pins.determinism import check_kernel_path
from bitwright.pins.environment import cpu_flags
from bitwright.pipeline import check_params_file, load_params
from bitwright.runner import detect_sandbox

__all__ = ["BUILD_OUTPUTS", "build_environment", "container_pin", "preflight", "utc_now"]

BUILD_OUTPUTS = ("dvc.lock",)
"""Tracked files a build itself rewrites: a difference there does not make the tree dirty."""


def container_pin(repo: Path, notify: Callable[[str], None] = lambda _: None) -> ContainerPin:
    """Pin the locked build image and make sure podman holds it by digest.

    Raises:
        OperationalError: the lock is missing, stale or a placeholder, podman does not run
            here, or the image cannot be obtained (the message names its digest).
        VerificationFailed: an archive kept under its digest is not that image.
    """
    pin = pin_container(repo)
    detect_sandbox(SandboxKind.PODMAN, image=pin)  # podman itself first: the plainest answer
    obtain_image(pin, project=repo, notify=notify)
    return pin


def build_environment(repo: Path, container: ContainerPin | None) -> EnvironmentPin:
    """The environment stages run in: the host's, or the image's on the host's hardware."""
    host = pin_environment()
    return host if container is None else image_environment(host, read_image_lock(repo))


def utc_now() -> str:
    """The current time as RFC 3339 UTC with seconds."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def preflight(
    repo: Path,
    *,
    key_path: Path,
    allow_dirty: bool,
    strict: bool,
    sandbox: SandboxKind | None = None,
    notify: Callable[[str], None] = lambda _: None,
) -> BuildContext:
    """Check that a build can start and pin its inputs.

    With the podman sandbox (the container builder) the build image is pinned from the
    image lock and obtained by digest before anything runs; other builds pin no image.

    Raises:
        KeyProblem: the signing key is missing or unusable.
        UsageError: ``params.yaml`` is not the composition of ``configs/``.
        OperationalError: this CPU cannot run the pinned CPU kernel path.
        DirtyTreeError: the tree differs from HEAD and ``allow_dirty`` is false.
        OperationalError: the container builder's image lock is missing or stale, or its
            image cannot be obtained.
    """
    if not key_path.is_file():
        raise KeyProblem(
            f"signing key {key_path} does not exist", hint="create one with `bitwright keygen`"
        )
    load_signer(key_path)
    cache = memory_cache()
    if (repo / "configs").is_dir():
        check_params_file(repo, memo=ProjectPaths(repo).params_memo, cache=cache)
    params = load_params(repo)
    determinism = pin_determinism(params)
    check_kernel_path(determinism, cpu_flags(), platform.machine())
    git = pin_git_commit(repo, allow_dirty=allow_dirty, ignore=BUILD_OUTPUTS)
    dvc_files = find_dvc_files(repo)  # walked once, for the pull and the pins
    pull_missing_data(repo, dvc_files=dvc_files)
    container = container_pin(repo, notify) if sandbox is SandboxKind.PODMAN else None
    chosen = detect_sandbox(sandbox, image=container)
    pins = BuildPins(
        git=git,
        data=pin_data(repo, cache=cache, dvc_files=dvc_files),
        container=container,
        determinism=determinism,
        environment=build_environment(repo, container),
        params_sha256={"params.yaml": sha256_file(repo / "params.yaml", cache)},
    )
    return BuildContext(
        pins=pins,
        key_path=str(key_path.resolve()),
        strict=strict,
        sandbox=chosen.kind,
        invocation_id=str(uuid.uuid4()),
        started_on=utc_now(),
    )
