"""The weaker sandboxes: ``unshare -n`` (network only) and none.

Neither ``unshare`` nor a plain run can make the repository read-only or hide files; their
reports say so, and a stage run this way is recorded as such in its link.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from bitwright.errors import OperationalError
from bitwright.model.run import SandboxKind, SandboxReport
from bitwright.runner._base import Sandbox
from bitwright.runner.view import Bind, RepoView

__all__ = ["NoSandbox", "UnshareSandbox", "probe_unshare"]

# Brings loopback up inside the new network namespace (it starts down), then runs the stage.
_LOOPBACK_UP = '"$0" link set lo up 2>/dev/null; exec "$@"'


@functools.cache
def probe_unshare(executable: str = "unshare") -> tuple[str, ...] | None:
    """Return the ``unshare`` argv prefix that cuts the network here, or None if none works.

    Root gets a new network namespace; a plain user also needs a user namespace, in which
    the stage runs as a mapped root (it has no more rights on the host than its user).
    """
    path = shutil.which(executable)
    if path is None:
        return None
    prefix = [path, "--net"] if os.geteuid() == 0 else [path, "--user", "--map-root-user", "--net"]
    try:
        done = subprocess.run(
            [*prefix, "--", "true"], capture_output=True, timeout=30, check=False, env={}
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return tuple(prefix) if done.returncode == 0 else None


class UnshareSandbox(Sandbox):
    """Cuts the network with ``unshare``; the repository stays writable and fully visible.

    Args:
        prefix: the working ``unshare`` argv prefix (see :func:`probe_unshare`).
    """

    kind = SandboxKind.UNSHARE

    def __init__(self, prefix: Sequence[str]) -> None:
        self.prefix = tuple(prefix)

    @classmethod
    def detect(cls) -> UnshareSandbox:
        """Return an unshare sandbox seen to work here; OperationalError if none does."""
        prefix = probe_unshare()
        if prefix is None:
            raise OperationalError(
                "unshare cannot create a network namespace here",
                hint="install util-linux, or allow user namespaces (user.max_user_namespaces)",
            )
        return cls(prefix)

    def wrap(
        self,
        argv: Sequence[str],
        *,
        view: RepoView,
        writable: Sequence[Bind],
        env: Mapping[str, str],
        cwd: Path,
        status_fd: int | None = None,
    ) -> list[str]:
        """Return ``unshare ... ARGV``, bringing loopback up first when ``ip`` is installed."""
        _require_in_place(writable)
        ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
        if ip is None:
            return [*self.prefix, "--", *argv]
        return [*self.prefix, "--", "/bin/sh", "-c", _LOOPBACK_UP, ip, *argv]

    def report(self, *, strict: bool) -> SandboxReport:
        """Only the network is cut."""
        return SandboxReport(
            kind=self.kind,
            network_cut=True,
            repo_read_only=False,
            undeclared_hidden=False,
            env_cleared=False,
        )


class NoSandbox(Sandbox):
    """Runs the stage as it is: the run is recorded as sealed by nothing."""

    kind = SandboxKind.NONE

    def wrap(
        self,
        argv: Sequence[str],
        *,
        view: RepoView,
        writable: Sequence[Bind],
        env: Mapping[str, str],
        cwd: Path,
        status_fd: int | None = None,
    ) -> list[str]:
        """Return ``argv`` unchanged."""
        _require_in_place(writable)
        return list(argv)

    def report(self, *, strict: bool) -> SandboxReport:
        """Nothing is enforced (the environment is passed cleared, but is not sealed)."""
        return SandboxReport(
            kind=self.kind,
            network_cut=False,
            repo_read_only=False,
            undeclared_hidden=False,
            env_cleared=False,
        )


def _require_in_place(writable: Sequence[Bind]) -> None:
    moved = [b for b in writable if b.source != b.target]
    if moved:
        raise ValueError(f"this sandbox cannot mount {moved[0].source} at {moved[0].target}")
