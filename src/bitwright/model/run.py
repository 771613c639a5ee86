"""The result of one sealed stage run, ready to become a link."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bitwright.model._json import JsonModel
from bitwright.model.digests import ArtifactMap, Sha256
from bitwright.model.receipt import StageReceipts

__all__ = ["SandboxAllowances", "SandboxKind", "SandboxReport", "StageRun"]


class SandboxKind(StrEnum):
    """How a stage was sealed, strongest first."""

    PODMAN = "podman"
    BUBBLEWRAP = "bubblewrap"
    UNSHARE = "unshare"
    NONE = "none"


@dataclass(frozen=True)
class SandboxReport(JsonModel):
    """What the runner enforced for a stage, recorded in its link.

    Attributes:
        kind: the sealing mechanism used.
        network_cut: the stage had no network (only loopback, if any).
        repo_read_only: everything in the repository but the outputs was read-only.
        undeclared_hidden: repository files that are not deps were not visible at all.
        env_cleared: the environment was cleared to the allowlist.
        container_digest: the image digest the stage ran in, "" when on the host.
    """

    kind: SandboxKind
    network_cut: bool
    repo_read_only: bool
    undeclared_hidden: bool
    env_cleared: bool
    container_digest: str = ""


@dataclass(frozen=True)
class SandboxAllowances(JsonModel):
    """What a project's config lets one stage do beyond the seal; recorded in its link.

    Attributes:
        env: names of the caller's environment variables passed through to the stage (their
            values are recorded as digests, never in clear).
        writable: repository-relative directories the stage may write besides its outs; each
            is a fresh scratch directory whose contents are discarded after the run.
        network: the stage keeps the network (the build is then not hermetic).
    """

    env: tuple[str, ...] = ()
    writable: tuple[str, ...] = ()
    network: bool = False

    @property
    def granted(self) -> bool:
        """Whether any allowance is given at all."""
        return bool(self.env or self.writable or self.network)


@dataclass(frozen=True)
class StageRun(JsonModel):
    """One finished run of a stage.

    Attributes:
        stage: the stage name.
        command: the argv the runner executed.
        returncode: the child's exit status.
        materials: deps (and param files) digested before the run.
        products: outs digested after the run.
        stdout_sha256: digest of the child's standard output.
        stderr_sha256: digest of the child's standard error.
        sandbox: what was enforced.
        environment: the exact environment the child started with.
        receipts: the receipts the stage's processes wrote (see :class:`StageReceipts`).
        undeclared_reads: repository files the child opened that are not declared deps.
        started_on: RFC 3339 UTC start time.
        finished_on: RFC 3339 UTC finish time.
        notes: what a human should know about how the run was sealed.
        allowances: what the project config let the stage do beyond the seal.
        umask: the umask the runner gave the stage (octal, as its receipt reports it).
    """

    stage: str
    command: tuple[str, ...]
    returncode: int
    materials: ArtifactMap
    products: ArtifactMap
    stdout_sha256: Sha256
    stderr_sha256: Sha256
    sandbox: SandboxReport
    environment: dict[str, str]
    receipts: StageReceipts = field(default_factory=StageReceipts)
    undeclared_reads: tuple[str, ...] = ()
    started_on: str = ""
    finished_on: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    allowances: SandboxAllowances = field(default_factory=SandboxAllowances)
    umask: str = "0022"
