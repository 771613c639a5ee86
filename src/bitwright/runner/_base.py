"""The interface every sandbox implements: turn a stage's argv into a sealed command line."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from bitwright.model.run import SandboxKind, SandboxReport
from bitwright.runner.receipt import shim_argv
from bitwright.runner.view import Bind, RepoView

__all__ = ["SANDBOX_PRIVATE_DIR", "Sandbox"]

SANDBOX_PRIVATE_DIR = Path("/tmp/bitwright")
"""Where a remapping sandbox mounts the run's private directory (home, receipt, trace), so
the paths a stage sees, and its link records, are the same on every run and machine."""


class Sandbox(ABC):
    """A way to run one stage sealed.

    Attributes:
        kind: the mechanism, recorded in the link.
        remaps: whether it builds a private mount namespace: the repository is shown read-only
            through a :class:`RepoView` and writable directories may be mounted elsewhere
            (:class:`Bind` with ``source != target``). A sandbox that does not remap ignores
            the view and needs binds of a path onto itself.
        status_channel: whether ``wrap`` uses ``status_fd`` to report that the stage ran.
    """

    kind: SandboxKind
    remaps: bool = False
    status_channel: bool = False

    @abstractmethod
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
        """Return the command line that runs ``argv`` sealed.

        Args:
            argv: the stage's command.
            view: what the stage may see of its repository (read-only).
            writable: directories the stage may write, shallowest target first.
            env: the complete environment of the stage (nothing else is inherited).
            cwd: the stage's working directory, as the stage sees it.
            status_fd: a file descriptor inherited by the sandbox tool on which it reports
                whether the stage started (bubblewrap's ``--json-status-fd``); None for none.

        Returns:
            The argv to execute; the caller also passes ``env`` and ``cwd`` to the process.
        """

    @abstractmethod
    def report(self, *, strict: bool) -> SandboxReport:
        """Return what this sandbox enforces for a stage run in the given mode."""

    def adapt_environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """Return the environment the stage really starts with (default: ``env`` itself).

        A sandbox that runs the stage on other software (a container image) puts that
        software's paths here, so the link records what the stage was given.
        """
        return dict(env)

    def shim(self, argv: Sequence[str], receipt_fd: int) -> list[str]:
        """Return ``argv`` started through the runner-receipt shim writing on ``receipt_fd``.

        The default runs the shim with this process's Python, which the sandbox shows.
        """
        return shim_argv(argv, receipt_fd)

    def running(self, writable: Sequence[Bind]) -> AbstractContextManager[None]:
        """Surround the one run of the command that ``wrap`` returned (default: nothing)."""
        return contextlib.nullcontext()
