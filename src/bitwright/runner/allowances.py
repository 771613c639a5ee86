"""Sandbox allowances: what a project lets one stage do beyond the seal, applied and recorded.

A project declares allowances in its config (:mod:`bitwright.project.config`): variables of
the caller's environment passed through, extra writable directories, the network. The runner
applies them here and records them in the stage's link; nothing else loosens a seal.

* Passed variables reach the stage with their values; the link records a digest of each value,
  never the value (an API key must not end up in a signed, published file).
* A writable directory is a fresh scratch directory mounted over the repository path: the stage
  may write there (dvclive's signal files under ``.dvc/tmp``, a tool's lock files), and what it
  writes is discarded after the run, so it can never reach the repository unattested. A sandbox
  that does not remap paths leaves the repository writable anyway and needs no mount.
* The network: bubblewrap keeps the host's network namespace; ``unshare``, whose only seal is
  the network, then seals nothing. The link's sandbox report says ``network_cut: false`` and
  the provenance records the build as not hermetic.

DVC's own variables (:data:`DVC_VARIABLES`) are passed to every stage DVC runs: dvclive and
DVC's Python API find the repository and the experiment through them.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from bitwright.errors import OperationalError, UsageError
from bitwright.model.run import SandboxAllowances
from bitwright.runner._base import Sandbox
from bitwright.runner._bubblewrap import BubblewrapSandbox
from bitwright.runner._podman import PodmanSandbox
from bitwright.runner._weak import NoSandbox, UnshareSandbox
from bitwright.runner.view import HIDDEN, Bind, is_under, out_parents

__all__ = [
    "DVC_VARIABLES",
    "RESERVED_VARIABLES",
    "check_allowances",
    "passed_variables",
    "recorded_environment",
    "with_network",
    "writable_binds",
]

DVC_VARIABLES: tuple[str, ...] = ("DVC_ROOT", "DVC_STAGE", "DVC_EXP_BASELINE_REV", "DVC_EXP_NAME")
"""What DVC sets for a stage command and tools inside it read (never its tokens or URLs)."""

RESERVED_VARIABLES: tuple[str, ...] = (
    "PATH",
    "HOME",
    "PWD",
    "LANG",
    "LANGUAGE",
    "TZ",
    "SOURCE_DATE_EPOCH",
    "CUBLAS_WORKSPACE_CONFIG",
    "MKL_CBWR",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "DVC_SITE_CACHE_DIR",
)
"""Variables the sealed environment sets itself or that would change what runs: never passed.
Names starting with ``LC_``, ``PYTHON``, ``BITWRIGHT_`` or ``DVC_`` are reserved too."""

_RESERVED_PREFIXES = ("LC_", "PYTHON", "BITWRIGHT_", "DVC_")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NEVER_WRITABLE = tuple(h for h in HIDDEN if h != ".dvc/tmp")
"""History, keys and the DVC cache stay out of reach; DVC's scratch may be allowed, whole."""


def check_allowances(where: str, allowances: SandboxAllowances) -> SandboxAllowances:
    """Return ``allowances`` with normalized paths, or say what is wrong with them.

    Args:
        where: what to name in a message (``.bitwright/config.toml: stage 'train'``).
        allowances: the allowances as written.

    Raises:
        UsageError: a variable name is not a name or is reserved; a writable path is absolute,
            leaves the repository, is the whole repository, or lies in ``.git``,
            ``.bitwright``, ``.dvc/cache`` or inside ``.dvc/tmp``.
    """
    for name in allowances.env:
        if not _NAME_RE.fullmatch(name):
            raise UsageError(f"{where}: {name!r} is not an environment variable name")
        if name in RESERVED_VARIABLES or name.startswith(_RESERVED_PREFIXES):
            raise UsageError(
                f"{where}: the variable {name} cannot be passed to a stage",
                hint="bitwright sets it itself (determinism, locale, paths) or it would change "
                "what runs; DVC's own variables are passed without being asked",
            )
    paths = tuple(dict.fromkeys(_writable_path(where, p) for p in allowances.writable))
    return SandboxAllowances(
        env=tuple(dict.fromkeys(allowances.env)), writable=paths, network=allowances.network
    )


def _writable_path(where: str, path: str) -> str:
    norm = posixpath.normpath(path.strip())
    if posixpath.isabs(norm) or norm == ".." or norm.startswith("../"):
        raise UsageError(
            f"{where}: writable path {path!r} is not inside the repository",
            hint="give directories relative to the repository root",
        )
    if norm == ".":
        raise UsageError(
            f"{where}: the whole repository cannot be made writable",
            hint="name the directories the stage writes, or declare them as outs in dvc.yaml",
        )
    for hidden in _NEVER_WRITABLE:
        if is_under(norm, hidden):
            raise UsageError(
                f"{where}: writable path {path!r} lies in {hidden}, which a stage never sees",
                hint="it holds history, keys or the DVC cache",
            )
    if norm != ".dvc/tmp" and is_under(norm, ".dvc/tmp"):
        raise UsageError(
            f"{where}: writable path {path!r} lies inside .dvc/tmp",
            hint="allow .dvc/tmp as a whole (a stage sees it empty; its writes are discarded)",
        )
    return norm


def passed_variables(allowances: SandboxAllowances) -> tuple[str, ...]:
    """The caller's variables a stage receives when they are set: DVC's own, then the allowed."""
    return tuple(dict.fromkeys((*DVC_VARIABLES, *allowances.env)))


def recorded_environment(env: Mapping[str, str], allowances: SandboxAllowances) -> dict[str, str]:
    """The environment as a link records it: allowed variables' values as their sha256."""
    return {
        name: _digest_of(value) if name in allowances.env else value for name, value in env.items()
    }


def _digest_of(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def writable_binds(
    allowances: SandboxAllowances,
    *,
    root: Path,
    scratch: Path,
    sandbox: Sandbox,
    outs: Sequence[str],
) -> list[Bind]:
    """Scratch directories mounted over the allowed writable paths, shallowest first.

    Creates each path's directory in the repository when it is missing (the mount needs a
    mount point in the read-only view) and a scratch directory for it under ``scratch``.

    Raises:
        UsageError: a writable path overlaps the directory of one of the stage's outs.
        OperationalError: a writable path exists and is not a directory.
    """
    if not allowances.writable or not sandbox.remaps:
        return []
    parents = out_parents(outs)
    binds: list[Bind] = []
    ordered = sorted(allowances.writable, key=lambda p: (p.count("/"), p))
    for index, rel in enumerate(ordered):
        clash = [p for p in (*parents, *outs) if is_under(p, rel) or is_under(rel, p)]
        if clash:
            raise UsageError(
                f"writable path {rel!r} overlaps {clash[0]!r}, where the stage writes its outs",
                hint="remove it from the config: a stage may already write beside its outs",
            )
        target = root / rel
        if target.exists() and not target.is_dir():
            raise OperationalError(
                f"writable path {rel!r} is not a directory", hint="allow directories only"
            )
        target.mkdir(parents=True, exist_ok=True)
        source = scratch / f"writable-{index}"
        source.mkdir(parents=True)
        binds.append(Bind(source, target))
    return binds


def with_network(sandbox: Sandbox, allowances: SandboxAllowances) -> Sandbox:
    """The sandbox for a stage: ``sandbox`` itself, or one that keeps the network if allowed.

    Raises:
        OperationalError: the sandbox cannot keep the network (the container builder runs
            every stage with ``--network=none``).
    """
    if not allowances.network:
        return sandbox
    if isinstance(sandbox, BubblewrapSandbox):
        kept = tuple(flag for flag in sandbox.isolation if flag != "--unshare-net")
        return BubblewrapSandbox(sandbox.executable, kept, hostname=sandbox.hostname)
    if isinstance(sandbox, UnshareSandbox | NoSandbox):
        return NoSandbox()
    if isinstance(sandbox, PodmanSandbox):
        raise OperationalError(
            "the container builder runs every stage without network; a stage allowed the "
            "network cannot run in the build image",
            hint="build with --builder sandbox, or remove network = true from the config",
        )
    return sandbox
