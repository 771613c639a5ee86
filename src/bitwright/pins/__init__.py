"""Pins: the recorded, content-addressed facts a build depends on.

``bitwright build`` pins everything once, before any stage runs, and every link records it:

* :func:`pin_git_commit` -- HEAD, its committer time, its ``origin``, and any difference of
  the work tree from it, found by content (:mod:`.git`, :mod:`.worktree`); bitwright's one
  git layer (GitPython, with a careful environment) is :mod:`._gitcmd`, which also clones a
  source at a commit for a rebuild (:func:`clone_at_commit`);
* :func:`pin_data` -- every ``dvc add`` snapshot, checked against its ``.dvc`` md5 and given
  a sha256 and the DVC remote to fetch it from (:mod:`.data`);
* :func:`pin_container` -- the build image of a container build, from
  ``containers/images.lock`` (:mod:`.container`, which owns the lock's format);
* :func:`pin_determinism` -- the ``determinism:`` settings of ``params.yaml``
  (:mod:`.determinism`);
* :func:`pin_environment` -- Python, packages, OS, CPU, torch/CUDA/cuDNN, GPUs
  (:mod:`.environment`).

:data:`BUILD_TYPE` and :func:`builder_id` name the buildType and builders specified in
``builders/`` of the repository; on CI, :func:`ci_identity` names the workflow run (:mod:`.ci`).
The pinning functions are imported on first use (:pep:`562`): a verifier that needs only
:data:`BUILD_TYPE` or the source signature does not load YAML, DVC's configuration or the
package inventory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from bitwright._lazy import lazy_names
from bitwright.errors import UsageError
from bitwright.model.run import SandboxKind
from bitwright.pins.ci import CiIdentity, ci_identity

if TYPE_CHECKING:
    from bitwright.pins.container import LOCK_PATH, pin_container
    from bitwright.pins.data import DVC_ENV, pin_data
    from bitwright.pins.determinism import pin_determinism
    from bitwright.pins.environment import pin_environment
    from bitwright.pins.git import (
        clone_at_commit,
        head_commit_time,
        is_ignored_untracked,
        pin_git_commit,
    )
    from bitwright.pins.worktree import find_dirty_paths

__all__ = [
    "BUILDER_KINDS",
    "BUILD_TYPE",
    "DVC_ENV",
    "CiIdentity",
    "LOCK_PATH",
    "builder_id",
    "builder_kind",
    "ci_identity",
    "clone_at_commit",
    "find_dirty_paths",
    "head_commit_time",
    "is_ignored_untracked",
    "pin_container",
    "pin_data",
    "pin_determinism",
    "pin_environment",
    "pin_git_commit",
]

BUILD_TYPE = "https://bitwright.dev/buildtypes/dvc-pipeline/v1"
"""The SLSA buildType of a bitwright build (spec: builders/buildtypes/dvc-pipeline/v1.md)."""

BUILDER_KINDS = ("local-host", "sandboxed-host", "container", "ci")
"""The builders defined in ``builders/``, weakest guarantees first."""

_BUILDER_VERSION = "v1"


def builder_id(kind: str, ci: CiIdentity | None = None) -> str:
    """Return the ``runDetails.builder.id`` URI of a builder kind (see ``builders/KIND.md``).

    The ``ci`` builder of a known workflow run (``ci``) is that workflow's own URI
    (:attr:`CiIdentity.builder_id`); every other builder is named by its specification.

    Raises:
        UsageError: ``kind`` is not one of :data:`BUILDER_KINDS`.
    """
    if kind not in BUILDER_KINDS:
        raise UsageError(
            f"unknown builder {kind!r}", hint=f"use one of: {', '.join(BUILDER_KINDS)}"
        )
    if kind == "ci" and ci is not None:
        return ci.builder_id
    return f"https://bitwright.dev/builders/{kind}/{_BUILDER_VERSION}"


def builder_kind(sandbox: SandboxKind, *, ci: bool = False, dirty: bool = False) -> str:
    """Return the strongest builder kind whose guarantees a build sealed with ``sandbox`` meets.

    ``unshare`` alone cuts only the network, which is the local-host builder. The ci builder
    needs a hosted CI run (``ci``: a :func:`ci_identity` was found) of a clean commit sealed by
    bubblewrap or podman; a dirty build on CI is recorded as the builder its sealing meets.
    """
    kind: str
    match sandbox:
        case SandboxKind.PODMAN:
            kind = "container"
        case SandboxKind.BUBBLEWRAP:
            kind = "sandboxed-host"
        case SandboxKind.UNSHARE | SandboxKind.NONE:
            kind = "local-host"
        case _:
            assert_never(sandbox)
    return "ci" if ci and not dirty and kind in {"container", "sandboxed-host"} else kind


__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "LOCK_PATH": "container",
        "pin_container": "container",
        "DVC_ENV": "data",
        "pin_data": "data",
        "pin_determinism": "determinism",
        "pin_environment": "environment",
        "pin_git_commit": "git",
        "clone_at_commit": "git",
        "head_commit_time": "git",
        "is_ignored_untracked": "git",
        "find_dirty_paths": "worktree",
    },
)
