"""Environment drift: how the verifier's machine differs from the one the release was built on.

Drift explains differing outputs but never excuses them: it is reported line by line, and
``--strict-env`` makes any of it fatal before a stage runs. Compared: the package lock digest
(with the packages that differ), Python, OS, machine, CPU model and flags class, torch, CUDA,
cuDNN, GPU driver and models, the build image digest and whether it was enforced, and the
sandbox kind.
"""

from __future__ import annotations

from collections.abc import Sequence

from bitwright.attest.statement import PYTHON_PACKAGES, InternalParameters, Statement
from bitwright.model import ContainerPin, EnvironmentPin, SandboxKind

__all__ = ["environment_drift"]

_MAX_PACKAGES = 6


def _package_lines(statement: Statement) -> tuple[str, ...]:
    dep = statement.dependency(PYTHON_PACKAGES)
    lines = (dep.annotations or {}).get("packages") if dep is not None else None
    return tuple(str(x) for x in lines) if isinstance(lines, list) else ()


def _package_drift(recorded: Sequence[str], current: Sequence[str]) -> str:
    gone = sorted(set(recorded) - set(current))
    new = sorted(set(current) - set(recorded))
    shown = [f"-{x}" for x in gone] + [f"+{x}" for x in new]
    more = f" (+{len(shown) - _MAX_PACKAGES} more)" if len(shown) > _MAX_PACKAGES else ""
    return f"python packages differ: {', '.join(shown[:_MAX_PACKAGES])}{more}"


def environment_drift(
    statement: Statement,
    internal: InternalParameters,
    *,
    environment: EnvironmentPin,
    container: ContainerPin | None,
    sandbox: SandboxKind,
) -> tuple[str, ...]:
    """Return one line per difference between the recorded build machine and this one.

    Args:
        statement: the release's provenance.
        internal: its typed ``internalParameters``.
        environment: :func:`bitwright.pins.pin_environment` here.
        container: the build image this rebuild runs its stages in, ``None`` on the host.
        sandbox: the sandbox a rebuild here runs its stages in.
    """
    drift: list[str] = []
    dep = statement.dependency(PYTHON_PACKAGES)
    recorded_lock = (dep.digest or {}).get("sha256", "") if dep is not None else ""
    if recorded_lock != environment.packages_sha256:
        drift.append(_package_drift(_package_lines(statement), environment.packages))
    env = internal.environment
    pairs = (
        ("python", env.python, environment.python),
        ("os", env.os, environment.os),
        ("machine", env.machine, environment.machine),
        ("CPU model", env.cpu_model, environment.cpu_model),
        ("torch", env.torch, environment.torch),
        ("CUDA", env.cuda, environment.cuda),
        ("cuDNN", env.cudnn, environment.cudnn),
        ("GPU driver", env.gpu_driver, environment.gpu_driver),
    )
    drift.extend(f"{what}: built with {a!r}, here {b!r}" for what, a, b in pairs if a != b)
    if env.cpu_flags_sha256 != environment.cpu_flags_sha256:
        drift.append("CPU flags differ (another instruction-set class: float kernels may differ)")
    built_gpus = sorted(g.name for g in env.gpus)
    here_gpus = sorted(g.name for g in environment.gpus)
    if built_gpus != here_gpus:
        drift.append(f"GPUs: built with {built_gpus or 'none'}, here {here_gpus or 'none'}")
    built = internal.container
    if built is not None and container is not None and container.digest != built.digest:
        drift.append(
            f"build image {built.image}: built with {built.digest}, the checkout pins "
            f"{container.digest}"
        )
    if built is not None and built.enforced and container is None:
        drift.append("the build ran inside its image; this rebuild runs on the host")
    if built is None and container is not None:
        drift.append("the build ran on its host; this rebuild runs inside an image")
    if sandbox.value != internal.sandbox.kind:
        drift.append(f"sandbox: built under {internal.sandbox.kind}, here {sandbox.value}")
    return tuple(drift)
