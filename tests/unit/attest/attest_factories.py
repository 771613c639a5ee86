"""Fake-but-realistic stage runs and pins for the attest tests (plain frozen dataclasses)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from bitwright.model import (
    BuildPins,
    ContainerPin,
    DataPin,
    DeterminismSettings,
    EnvironmentPin,
    GitPin,
    GpuInfo,
    PythonReceipt,
    RunnerReceipt,
    SandboxKind,
    SandboxReport,
    Sha256,
    StageReceipts,
    StageRun,
    TorchReceipt,
)


def sha(text: str) -> Sha256:
    return Sha256(hashlib.sha256(text.encode()).hexdigest())


def make_pins() -> BuildPins:
    return BuildPins(
        git=GitPin(
            commit="0123456789abcdef0123456789abcdef01234567",
            commit_time=1_700_000_000,
            remote_url="https://example.org/ml/model.git",
        ),
        data=(
            DataPin(
                path="data/raw",
                dvc_md5="a1b2c3d4e5f60718293a4b5c6d7e8f90.dir",
                sha256=sha("tree of data/raw"),
                size=123_456,
                nfiles=3,
                remote_url="s3://bucket/dvc",
            ),
        ),
        container=ContainerPin(
            image="ghcr.io/example/build:1",
            digest="sha256:" + sha("image"),
            archive_sha256=sha("image archive"),
            archive_md5="0123456789abcdef0123456789abcdef",
            archive_size=1_013_575_680,
            remote_url="s3://bucket/dvc",
            enforced=True,
            how="podman",
        ),
        determinism=DeterminismSettings(),
        environment=EnvironmentPin(
            python="CPython 3.11.9",
            packages=("numpy==2.4.6", "torch==2.13.0"),
            packages_sha256=sha("numpy==2.4.6\ntorch==2.13.0"),
            os="Linux 6.1 / Debian GNU/Linux 12",
            machine="x86_64",
            cpu_model="Example CPU",
            cpu_flags_sha256=sha("avx2 fma"),
            torch="2.13.0",
        ),
        params_sha256={"params.yaml": sha("params")},
    )


def make_run(
    stage: str = "train",
    *,
    command: tuple[str, ...] = ("python", "pipelines/train.py"),
    materials: dict[str, Sha256] | None = None,
    products: dict[str, Sha256] | None = None,
    returncode: int = 0,
) -> StageRun:
    env = {"PYTHONHASHSEED": "0", "PATH": "/usr/bin"}
    receipts = StageReceipts(
        runner=RunnerReceipt(pid=2, umask="0022", env=env),
        python=(
            PythonReceipt(
                pid=2,
                ppid=1,
                hash_randomization=0,
                env={"PYTHONHASHSEED": "0"},
                frameworks=("torch",),
                torch=TorchReceipt(
                    version="2.13.0",
                    deterministic_algorithms=True,
                    deterministic_warn_only=False,
                    cudnn_deterministic=True,
                    cudnn_benchmark=False,
                    allow_tf32_matmul=False,
                    allow_tf32_cudnn=False,
                    threads=1,
                    interop_threads=1,
                    cpu_capability="AVX2",
                    initial_seed=0,
                    devices=("cpu",),
                ),
                params={"params.yaml": sha("params")},
            ),
        ),
    )
    return StageRun(
        stage=stage,
        command=command,
        returncode=returncode,
        materials=materials
        if materials is not None
        else {"pipelines/train.py": sha("train code"), "data/prepared/train.csv": sha("rows")},
        products=products if products is not None else {"models/model.pt": sha("weights")},
        stdout_sha256=sha("stdout"),
        stderr_sha256=sha(""),
        sandbox=SandboxReport(
            kind=SandboxKind.BUBBLEWRAP,
            network_cut=True,
            repo_read_only=True,
            undeclared_hidden=True,
            env_cleared=True,
        ),
        environment=env,
        receipts=receipts,
        undeclared_reads=(),
        started_on="2024-01-01T00:00:00Z",
        finished_on="2024-01-01T00:01:00Z",
    )


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_dirty_gpu_pins() -> BuildPins:
    """Pins of a dirty build on a GPU machine with a local DVC remote and an unbuilt image."""
    pins = make_pins()
    return dataclasses.replace(
        pins,
        git=dataclasses.replace(pins.git, dirty=True, dirty_paths=("pipelines/train.py",)),
        data=(
            dataclasses.replace(pins.data[0], remote_url="/srv/dvc-store"),
            DataPin(
                path="data/labels.csv",
                dvc_md5="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                sha256=sha("labels"),
                size=2_048,
                nfiles=1,
            ),
        ),
        container=None,  # a sandboxed-host build names no image
        environment=dataclasses.replace(
            pins.environment,
            cuda="12.8",
            cudnn="91002",
            gpu_driver="570.124.06",
            gpus=(
                GpuInfo(
                    name="NVIDIA H100 80GB HBM3",
                    uuid="GPU-00000000-1111-2222-3333-444444444444",
                    memory_bytes=85_520_809_984,
                    compute_capability="9.0",
                ),
            ),
        ),
    )
