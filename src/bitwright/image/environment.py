"""The software environment of a container build: the image's, on the host's hardware.

A stage of a container build runs the image's interpreter and packages, not the host's, so
its environment pin says so: Python is the image's Debian ``python3.11``, the package list is
the image's wheels (and bitwright, mounted from the build), the OS names the image by digest.
The kernel, CPU and GPUs stay the host's: the image does not bring hardware.
"""

from __future__ import annotations

import dataclasses
import hashlib

from bitwright import __version__
from bitwright.model.digests import Sha256
from bitwright.model.pins import EnvironmentPin
from bitwright.pins.container import ImageLock

__all__ = ["image_environment"]


def image_environment(host: EnvironmentPin, lock: ImageLock) -> EnvironmentPin:
    """Return ``host`` with the software facts replaced by those of the locked image."""
    debian = {p.package: p.version for p in lock.debian}
    minor = next((name for name in debian if name.startswith("python3.")), "")
    python = debian.get(minor, "").split("-", 1)[0]
    packages = tuple(
        sorted({f"{w.name}=={w.version}" for w in lock.python} | {f"bitwright=={__version__}"})
    )
    torch = next((w.version for w in lock.python if w.name == "torch"), "")
    kernel = host.os.split(" / ", 1)[0]
    cpu_only = torch.endswith("+cpu") or not torch
    return dataclasses.replace(
        host,
        python=f"CPython {python}" if python else "none",
        packages=packages,
        packages_sha256=Sha256(hashlib.sha256("\n".join(packages).encode()).hexdigest()),
        os=f"{kernel} / image {lock.name}@{lock.digest}",
        torch=torch,
        cuda="" if cpu_only else host.cuda,
        cudnn="" if cpu_only else host.cudnn,
    )
