"""Pins: content-addressed facts a build depends on (commit, data, image, settings, environment)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bitwright.model._json import JsonModel
from bitwright.model.digests import Sha256

__all__ = [
    "CPU_KERNEL_PATHS",
    "DETERMINISM_VARIABLES",
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
class SourceSignature(JsonModel):
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
class GitPin(JsonModel):
    """The source commit of a build.

    Attributes:
        commit: the 40-hex commit id of HEAD.
        commit_time: the committer time, seconds since the epoch.
        remote_url: the ``origin`` URL, or the repository path when there is no remote.
        dirty: whether the working tree differs from the commit (only with ``--allow-dirty``).
        dirty_paths: the tracked or untracked-but-not-ignored paths that differ.
        source_date_epoch: the committer time of the last commit that changed the source,
            that is anything but the files a build rewrites itself (``dvc.lock``): every
            stage's ``SOURCE_DATE_EPOCH``. Committing ``dvc.lock`` alone leaves it unchanged,
            so the stages' environment, and the outputs they make, stay the same. 0 in pins
            recorded before it existed: :attr:`commit_time` is then the epoch.
        signature: the commit's git signature, ``None`` when it is unsigned.
    """

    commit: str
    commit_time: int
    remote_url: str
    dirty: bool = False
    dirty_paths: tuple[str, ...] = ()
    source_date_epoch: int = 0
    signature: SourceSignature | None = None

    @property
    def rebuildable(self) -> bool:
        """Whether a verifier can rebuild from this pin (a dirty tree cannot be fetched)."""
        return not self.dirty

    @property
    def epoch(self) -> int:
        """The ``SOURCE_DATE_EPOCH`` of every stage of the build."""
        return self.source_date_epoch or self.commit_time


@dataclass(frozen=True)
class DataPin(JsonModel):
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
class ContainerPin(JsonModel):
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


DETERMINISM_VARIABLES = (
    "PYTHONHASHSEED",
    "CUBLAS_WORKSPACE_CONFIG",
    "MKL_CBWR",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TORCHINDUCTOR_DETERMINISTIC",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
)
"""Every variable :meth:`DeterminismSettings.environment` may set."""

CPU_KERNEL_PATHS: dict[str, str] = {"default": "SSE41", "avx2": "AVX2", "avx512": "AVX512_CORE"}
"""The CPU kernel paths a build may pin (torch's ``ATEN_CPU_CAPABILITY``), each with the
highest instruction set oneDNN may then use (``ONEDNN_MAX_CPU_ISA``)."""


@dataclass(frozen=True)
class DeterminismSettings(JsonModel):
    """Determinism settings declared for every stage (``params.yaml`` ``determinism:``).

    Every field here either changes the numbers a stage produces or is set before the
    interpreter starts; all of them are recorded in every link and checked against receipts.

    Attributes:
        seed: seeds Python's ``random``, numpy's and torch's generators.
        torch_deterministic: torch's deterministic algorithms (and cuDNN's).
        cudnn_benchmark: cuDNN's autotuner (off: the same kernels every run).
        allow_tf32: TF32 in matmul and cuDNN on GPUs.
        threads: threads of OpenMP, MKL, OpenBLAS and torch.
        pythonhashseed: ``PYTHONHASHSEED``.
        cublas_workspace_config: ``CUBLAS_WORKSPACE_CONFIG`` (deterministic cuBLAS).
        mkl_cbwr: ``MKL_CBWR``, MKL's conditional numerical reproducibility branch.
        cpu_capability: the CPU kernel path, one of :data:`CPU_KERNEL_PATHS` or "" for
            none: torch dispatches its CPU kernels by instruction set, so machines with and
            without AVX-512 train other bits unless it is pinned (``ATEN_CPU_CAPABILITY``,
            and oneDNN's maximum instruction set with it).
        devices: the devices a stage may compute on: ``cpu``, ``cuda`` or ``cuda:N``.
    """

    seed: int = 0
    torch_deterministic: bool = True
    cudnn_benchmark: bool = False
    allow_tf32: bool = False
    threads: int = 1
    pythonhashseed: int = 0
    cublas_workspace_config: str = ":4096:8"
    mkl_cbwr: str = "AVX2,STRICT"
    cpu_capability: str = "avx2"
    devices: tuple[str, ...] = ("cpu",)

    def environment(self) -> dict[str, str]:
        """The environment variables a stage must start with for these settings to hold."""
        threads = str(self.threads)
        env = {
            "PYTHONHASHSEED": str(self.pythonhashseed),
            "CUBLAS_WORKSPACE_CONFIG": self.cublas_workspace_config,
            "MKL_CBWR": self.mkl_cbwr,
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            # TorchInductor reads its deterministic mode from here when it is first imported
            "TORCHINDUCTOR_DETERMINISTIC": "1" if self.torch_deterministic else "0",
        }
        isa = CPU_KERNEL_PATHS.get(self.cpu_capability)
        if isa is not None:
            env["ATEN_CPU_CAPABILITY"] = self.cpu_capability
            env["ONEDNN_MAX_CPU_ISA"] = isa
            env["DNNL_MAX_CPU_ISA"] = isa  # the name of oneDNN releases before 2.x
        return env

    def allows_device(self, device: str) -> bool:
        """Whether a stage may compute on ``device`` (``cuda:1`` is allowed by ``cuda``)."""
        kind = device.split(":", 1)[0]
        return device in self.devices or kind in self.devices


@dataclass(frozen=True)
class GpuInfo(JsonModel):
    """One GPU as NVML reports it."""

    name: str
    uuid: str
    memory_bytes: int
    compute_capability: str


@dataclass(frozen=True)
class EnvironmentPin(JsonModel):
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
class BuildPins(JsonModel):
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
