"""pin_environment: Python, packages, OS, CPU, torch and GPUs, cheaply and without failing."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import platform
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bitwright.model import is_sha256
from bitwright.pins import pin_environment
from bitwright.pins.environment import (
    cpu_flags,
    cpu_info,
    gpu_info,
    installed_packages,
    torch_versions,
)

HAS_GPU = gpu_info()[1] != ()


def test_environment_pin_shape() -> None:
    pin = pin_environment()
    assert pin.python == f"{platform.python_implementation()} {platform.python_version()}"
    assert pin.machine == platform.machine()
    assert pin.os.startswith(platform.system())
    assert pin.cpu_model
    assert is_sha256(pin.cpu_flags_sha256)
    assert pin.packages_sha256 == hashlib.sha256("\n".join(pin.packages).encode()).hexdigest()


def test_packages_are_sorted_normalized_and_include_bitwright() -> None:
    packages = installed_packages()
    assert list(packages) == sorted(packages)
    names = [line.split("==")[0] for line in packages]
    assert len(names) == len(set(names))
    assert all(name == name.lower() and "_" not in name for name in names)
    assert f"pyyaml=={importlib.metadata.version('PyYAML')}" in packages
    assert f"bitwright=={importlib.metadata.version('bitwright')}" in packages


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_torch_version_is_read_without_importing_a_cpu_build() -> None:
    version, accelerator, cudnn = torch_versions()
    assert version == importlib.metadata.version("torch")
    if not accelerator:
        assert cudnn == ""


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_no_gpu_is_a_normal_case() -> None:
    pin = pin_environment()
    assert pin.gpus == ()
    assert pin.gpu_driver == ""


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU")
def test_gpus_and_driver_are_reported() -> None:
    pin = pin_environment()
    assert pin.gpu_driver
    assert all(gpu.uuid.startswith("GPU-") and gpu.memory_bytes > 0 for gpu in pin.gpus)


def test_cpu_flags_digest_ignores_order_and_reads_arm_features(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: sse2 avx2 fma\n\n"
        "processor\t: 1\nmodel name\t: Some CPU\nflags\t\t: fma avx2 sse2\n"
    )
    model, flags = cpu_info(x86)
    assert model == "Some CPU"
    assert flags == hashlib.sha256(b"avx2\nfma\nsse2").hexdigest()
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve\n")
    assert cpu_info(arm)[1] == hashlib.sha256(b"asimd\nfp\nsve").hexdigest()
    assert cpu_info(arm)[1] != flags


def test_pinning_is_cheap_and_leaves_a_cpu_torch_unimported() -> None:
    code = (
        "import sys, time\n"
        "from bitwright.pins import pin_environment\n"
        "start = time.perf_counter(); pin = pin_environment()\n"
        "print(time.perf_counter() - start, 'torch' in sys.modules, bool(pin.cuda))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, imported, cuda_build = done.stdout.split()
    if cuda_build == "False":
        assert imported == "False"
        assert float(seconds) < 2.0  # generous for loaded CI machines; ~0.2 s here


class _NVMLError(Exception):
    """The test double's NVMLError."""


class _LibraryNotFound(_NVMLError):
    """What pynvml raises where no NVIDIA driver is installed."""


def _fake_nvml(*, library: bool, gpus: int = 0) -> Any:
    """A test double of pynvml: no library at all, or a driver with ``gpus`` H100s."""

    def init() -> None:
        if not library:
            raise _LibraryNotFound("NVML Shared Library Not Found")

    memory = SimpleNamespace(total=80 << 30)
    return SimpleNamespace(
        NVMLError=_NVMLError,
        NVMLError_LibraryNotFound=_LibraryNotFound,
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: b"570.86.15",
        nvmlDeviceGetCount=lambda: gpus,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetCudaComputeCapability=lambda h: (9, 0),
        nvmlDeviceGetName=lambda h: "NVIDIA H100 80GB HBM3",
        nvmlDeviceGetUUID=lambda h: f"GPU-0000000{h}",
        nvmlDeviceGetMemoryInfo=lambda h: memory,
    )


def test_nvml_without_its_library_is_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(library=False))
    assert gpu_info() == ("", ())


def test_nvml_pins_the_driver_and_every_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(library=True, gpus=2))
    driver, gpus = gpu_info()
    assert driver == "570.86.15"
    assert [g.uuid for g in gpus] == ["GPU-00000000", "GPU-00000001"]
    assert {(g.name, g.memory_bytes, g.compute_capability) for g in gpus} == {
        ("NVIDIA H100 80GB HBM3", 80 << 30, "9.0")
    }


def test_kernel_path_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: sse2 avx2 fma\n")
    assert cpu_flags(cpuinfo) == frozenset({"sse2", "avx2", "fma"})
    assert cpu_flags(tmp_path / "absent") == frozenset()
