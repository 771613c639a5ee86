"""Pins: content-addressed facts a build depends on (commit, data, image, settings, environment)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bitwright.model.digests import Sha256

__all__ = [
    "BuildPins",
    "ContainerPin",
    "DataPin",
    "DeterminismSettings",
    "EnvironmentPin",
    "GitPin",
    "GpuInfo",
    "SourceSignature",
]


@dataclass(frozen=True)
class SourceSignature:
    """A git signature (SSH, GPG or X.509) carried by the source commit.

    Attributes:
        kind: ``"ssh"``, ``"gpg"`` or ``"x509"``, by the signature's armor.
        signer: who signed, as the signature names it: an SSH key fingerprint
            (``SHA256:...``) or an OpenPGP issuer fingerprint or key id (hex); "" when
            the signature does not say.
        commit_object: the raw git commit object, base64: a verifier recomputes the commit
            id from it and checks the signature offline, without the repository.
    """

    kind: str
    signer: str
    commit_object: str


@dataclass(frozen=True)
class GitPin:
    """The source commit of a build.

    Attributes:
        commit: the 40-hex commit id of HEAD.
        commit_time: the committer time, seconds since the epoch (SOURCE_DATE_EPOCH).
        remote_url: the ``origin`` URL, or the repository path when there is no remote.
        dirty: whether the working tree differs from the commit (only with ``--allow-dirty``).
        dirty_paths: the tracked or untracked-but-not-ignored paths that differ.
        signature: the commit's git signature, ``None`` when it is unsigned.
    """

    commit: str
    commit_time: int
    remote_url: str
    dirty: bool = False
    dirty_paths: tuple[str, ...] = ()
    signature: SourceSignature | None = None

    @property
    def rebuildable(self) -> bool:
        """Whether a verifier can rebuild from this pin (a dirty tree cannot be fetched)."""
        return not self.dirty


@dataclass(frozen=True)
class DataPin:
    """A data snapshot tracked by DVC.

    Attributes:
        path: repository-relative path of the tracked file or directory.
        dvc_md5: DVC's hash of it (``md5`` or ``<md5>.dir`` for directories).
        sha256: bitwright's digest (a file's sha256, or the tree digest of a directory).
        size: total size in bytes.
        nfiles: number of files (1 for a file).
        remote_url: where a verifier fetches it (the DVC default remote's URL), "" if none.
    """

    path: str
    dvc_md5: str
    sha256: Sha256
    size: int
    nfiles: int
    remote_url: str = ""


@dataclass(frozen=True)
class ContainerPin:
    """The build image the stages ran in (only a container build has one).

    Attributes:
        image: the image name (``registry/name:tag``).
        digest: the pinned manifest digest (``sha256:...``): what podman runs.
        archive_sha256: sha256 of the image's OCI archive, the bytes a verifier fetches.
        archive_md5: the archive's md5, its address in the DVC remote.
        archive_size: the archive's size in bytes.
        remote_url: the DVC remote the archive is stored in, "" when none.
        enforced: whether the stages really ran inside this image by digest.
        how: how they ran ("podman"): the honest answer to "enforced?".
    """

    image: str
    digest: str
    archive_sha256: Sha256
    archive_md5: str
    archive_size: int
    remote_url: str
    enforced: bool
    how: str


@dataclass(frozen=True)
class DeterminismSettings:
    """Determinism settings declared for every stage (``params.yaml`` ``determinism:``).

    Every field here either changes the numbers a stage produces or is set before the
    interpreter starts; all of them are recorded in every link and checked against receipts.
    """

    seed: int = 0
    torch_deterministic: bool = True
    cudnn_benchmark: bool = False
    allow_tf32: bool = False
    threads: int = 1
    pythonhashseed: int = 0
    cublas_workspace_config: str = ":4096:8"
    mkl_cbwr: str = "AVX2,STRICT"

    def environment(self) -> dict[str, str]:
        """The environment variables a stage must start with for these settings to hold."""
        threads = str(self.threads)
        return {
            "PYTHONHASHSEED": str(self.pythonhashseed),
            "CUBLAS_WORKSPACE_CONFIG": self.cublas_workspace_config,
            "MKL_CBWR": self.mkl_cbwr,
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
        }


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as NVML reports it."""

    name: str
    uuid: str
    memory_bytes: int
    compute_capability: str


@dataclass(frozen=True)
class EnvironmentPin:
    """The software and hardware environment of a build.

    Attributes:
        python: ``platform.python_version()`` plus implementation (``CPython 3.11.7``).
        packages: sorted ``name==version`` lines of the installed distributions.
        packages_sha256: sha256 of ``packages`` joined by newlines (the package-set digest).
        os: kernel and distribution (``Linux 6.1 / Debian GNU/Linux 12``).
        machine: ``platform.machine()``.
        cpu_model: the CPU model name.
        cpu_flags_sha256: sha256 of the sorted CPU flags (they change float kernels).
        torch: torch version, "" if torch is absent.
        cuda: CUDA version torch was built with, "" if none.
        cudnn: cuDNN version, "" if none.
        gpu_driver: NVML driver version, "" when no GPU (a normal case).
        gpus: the GPUs visible through NVML.
    """

    python: str
    packages: tuple[str, ...]
    packages_sha256: Sha256
    os: str
    machine: str
    cpu_model: str
    cpu_flags_sha256: Sha256
    torch: str = ""
    cuda: str = ""
    cudnn: str = ""
    gpu_driver: str = ""
    gpus: tuple[GpuInfo, ...] = ()


@dataclass(frozen=True)
class BuildPins:
    """Everything pinned once per build and recorded in every stage link.

    ``container`` is None when the stages ran on the host (the sandboxed-host builder):
    such a build names no image rather than one it did not run in.
    """

    git: GitPin
    data: tuple[DataPin, ...]
    container: ContainerPin | None
    determinism: DeterminismSettings
    environment: EnvironmentPin
    params_sha256: dict[str, Sha256] = field(default_factory=dict)
