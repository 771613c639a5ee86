"""Sandboxes that seal a stage, and the choice of the strongest one that works here.

Strongest first: podman (everything bubblewrap enforces, inside the build image started by
its manifest digest: only when asked for, with the image), bubblewrap (no network, read-only
repository, undeclared files hidden in strict mode, cleared environment), ``unshare -n``
(network only), none.
"""

from __future__ import annotations

from typing import assert_never

from bitwright.errors import UsageError
from bitwright.model.pins import ContainerPin
from bitwright.model.run import SandboxKind
from bitwright.runner._base import SANDBOX_PRIVATE_DIR, Sandbox
from bitwright.runner._bubblewrap import BubblewrapSandbox, probe_bubblewrap
from bitwright.runner._podman import PodmanSandbox
from bitwright.runner._weak import NoSandbox, UnshareSandbox, probe_unshare

__all__ = [
    "SANDBOX_PRIVATE_DIR",
    "BubblewrapSandbox",
    "NoSandbox",
    "PodmanSandbox",
    "Sandbox",
    "UnshareSandbox",
    "detect_sandbox",
]


def detect_sandbox(
    preferred: SandboxKind | None = None, *, image: ContainerPin | None = None
) -> Sandbox:
    """Return the sandbox to seal stages with.

    Args:
        preferred: the kind asked for; None picks the strongest host sandbox that works here
            (bubblewrap, then unshare, then none). Each probe runs once per process.
        image: the build image, for podman (which is never picked unasked).

    Raises:
        OperationalError: the preferred kind cannot run here (the hint says how to get it).
        UsageError: podman is asked for without an image, or with no real digest.
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
        if image is None:
            raise UsageError(
                "the container builder needs the build image",
                hint="build and lock it with `bitwright image build`",
            )
        return PodmanSandbox.detect(image.image, image.digest)
    assert_never(preferred)
