"""Sandboxes that seal a stage, and the choice of the strongest one that works here.

Strongest first: bubblewrap (no network, read-only repository, undeclared files hidden in
strict mode, cleared environment), ``unshare -n`` (network only), none. Podman, which will run
a stage in an image pinned by digest, is shaped here but not available yet.
"""

from __future__ import annotations

from typing import assert_never

from bitwright.errors import OperationalError
from bitwright.model.run import SandboxKind
from bitwright.runner._base import SANDBOX_PRIVATE_DIR, Sandbox
from bitwright.runner._bubblewrap import BubblewrapSandbox, probe_bubblewrap
from bitwright.runner._weak import NoSandbox, PodmanSandbox, UnshareSandbox, probe_unshare

__all__ = [
    "SANDBOX_PRIVATE_DIR",
    "BubblewrapSandbox",
    "NoSandbox",
    "PodmanSandbox",
    "Sandbox",
    "UnshareSandbox",
    "detect_sandbox",
]


def detect_sandbox(preferred: SandboxKind | None = None) -> Sandbox:
    """Return the sandbox to seal stages with.

    Args:
        preferred: the kind asked for; None picks the strongest that works here
            (bubblewrap, then unshare, then none). Each probe runs once per process.

    Raises:
        OperationalError: the preferred kind cannot run here (the hint says how to get it).
    """
    if preferred is None:
        if probe_bubblewrap() is not None:
            return BubblewrapSandbox.detect()
        if probe_unshare() is not None:
            return UnshareSandbox.detect()
        return NoSandbox()
    if preferred is SandboxKind.BUBBLEWRAP:
        return BubblewrapSandbox.detect()
    if preferred is SandboxKind.UNSHARE:
        return UnshareSandbox.detect()
    if preferred is SandboxKind.NONE:
        return NoSandbox()
    if preferred is SandboxKind.PODMAN:
        raise OperationalError(
            "the podman sandbox is not available yet",
            hint="use the bubblewrap sandbox (apt-get install bubblewrap)",
        )
    assert_never(preferred)
