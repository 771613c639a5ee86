"""Pin the software and hardware environment: Python, packages, OS, CPU, torch/CUDA, GPUs.

Cheap on purpose (well under a second on a CPU-only machine): torch's version comes from
``torch/version.py`` read as text, and torch itself is imported only when it was built for
CUDA or ROCm, to ask it for the cuDNN it loads (or when the caller already imported it).
No GPU is a normal case: NVML missing or failing yields no GPUs and an empty driver.

The package list holds every installed distribution as ``name==version`` with PEP 503
normalized names, sorted, first found on ``sys.path`` winning (the one Python imports).
bitwright itself is included: its version is part of the environment, and its source is
pinned separately by the git commit.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import platform
import re
import sys
from pathlib import Path
from typing import Any

from bitwright.model.digests import Sha256
from bitwright.model.pins import EnvironmentPin, GpuInfo

__all__ = [
    "cpu_flags",
    "cpu_info",
    "gpu_info",
    "installed_packages",
    "pin_environment",
    "torch_versions",
]

_CPUINFO = Path("/proc/cpuinfo")


def _sha256_lines(lines: tuple[str, ...]) -> Sha256:
    return Sha256(hashlib.sha256("\n".join(lines).encode()).hexdigest())


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# A line the email parser takes for a header field (``name:``); anything else ends the header.
_FIELD_RE = re.compile(r"[\x21-\x39\x3b-\x7e]*:")
_WANTED = ("name", "version")


def _header_name_version(text: str) -> tuple[str | None, str | None] | None:
    """Return the ``Name`` and ``Version`` fields of core metadata text, as the email parser would.

    Only the header (up to the first blank line) is read. Where this simple reading could
    differ from :func:`email.message_from_string` (carriage returns, a folded ``Name`` or
    ``Version``, a unix ``From`` line) the answer is ``None``: ask the email parser.
    """
    head = text.split("\n\n", 1)[0]
    if "\r" in head:
        return None
    found: dict[str, str] = {}
    last = ""
    for line in head.split("\n"):
        if not line:
            break  # the blank line that ends the header
        if line[0] in " \t":  # a folded continuation of the previous field
            if last in _WANTED:
                return None
            continue
        if line.startswith("From "):
            return None
        if not _FIELD_RE.match(line):
            break  # not a field: the email parser starts the body here
        field, _, value = line.partition(":")
        last = field.lower()
        if field and last in _WANTED:
            found.setdefault(last, value.lstrip(" \t"))
    return found.get("name"), found.get("version")


def _name_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    """Name and version of ``dist``: its metadata header read directly, else the email parser."""
    if (
        type(dist).metadata is importlib.metadata.Distribution.metadata
        and type(dist).version is importlib.metadata.Distribution.version
    ):
        # The same text Distribution.metadata parses, without the (slow) email parser.
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or dist.read_text("")
        fields = _header_name_version(text or "")
        if fields is not None:
            return fields
    return dist.metadata["Name"], dist.version


def installed_packages() -> tuple[str, ...]:
    """Return the sorted ``name==version`` lines of the distributions importable here."""
    seen: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name, version = _name_version(dist)
        if name:
            seen.setdefault(_normalize(name), str(version))
    return tuple(sorted(f"{name}=={version}" for name, version in seen.items()))


def _os_description() -> str:
    kernel = f"{platform.system()} {platform.release()}".strip()
    try:
        distro = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        distro = ""
    return f"{kernel} / {distro}" if distro else kernel


def _read_cpuinfo(cpuinfo: Path) -> tuple[str, frozenset[str]]:
    """The CPU model name and flags in ``/proc/cpuinfo`` (x86 ``flags``, ARM ``Features``)."""
    model, flags = "", set[str]()
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in {"model name", "hardware", "cpu model"} and not model:
            model = value.strip()
        elif key in {"flags", "features"}:
            flags.update(value.split())
    return model, frozenset(flags)


def cpu_flags(cpuinfo: Path = _CPUINFO) -> frozenset[str]:
    """Return this CPU's feature flags (empty where ``/proc/cpuinfo`` is missing)."""
    return _read_cpuinfo(cpuinfo)[1]


def cpu_info(cpuinfo: Path = _CPUINFO) -> tuple[str, Sha256]:
    """Return the CPU model name and the sha256 of its sorted, newline-joined feature flags.

    Reads ``/proc/cpuinfo`` (``model name``/``flags`` on x86, ``Features`` on ARM); where it
    is missing the model is ``platform.processor()`` and the flags are empty.
    """
    model, flags = _read_cpuinfo(cpuinfo)
    return model or platform.processor() or platform.machine(), _sha256_lines(tuple(sorted(flags)))


def _torch_version_file() -> dict[str, Any]:
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return {}
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    found: dict[str, Any] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and value is not None:
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                continue
    return found


def _cudnn_text(number: int) -> str:
    # cuDNN 9 encodes major*10000 + minor*100 + patch; cuDNN 8 and older major*1000 + ...
    major, rest = divmod(number, 10000) if number >= 90000 else divmod(number, 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def torch_versions() -> tuple[str, str, str]:
    """Return torch's version, the CUDA (or ROCm) version it was built with, and cuDNN's.

    Each is "" when absent: no torch, a CPU build, or no cuDNN.
    """
    module = sys.modules.get("torch")
    if module is not None:
        version = module.__version__
        accelerator = module.version.cuda or getattr(module.version, "hip", None) or ""
    else:
        fields = _torch_version_file()
        version = str(fields.get("__version__") or "")
        accelerator = str(fields.get("cuda") or fields.get("hip") or "")
    if not version or not accelerator:
        return version, accelerator, ""
    try:
        import torch

        cudnn: Any = torch.backends.cudnn  # untyped in torch's stubs
        number = cudnn.version() if cudnn.is_available() else None
    except (ImportError, OSError, RuntimeError):
        number = None
    return str(version), accelerator, _cudnn_text(int(number)) if number else ""


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def gpu_info() -> tuple[str, tuple[GpuInfo, ...]]:
    """Return the NVIDIA driver version and the GPUs NVML sees; ``("", ())`` without any."""
    try:
        import pynvml
    except ImportError:
        return "", ()
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:  # no library, no driver, no device: a normal case
        return "", ()
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append(
                GpuInfo(
                    name=_text(pynvml.nvmlDeviceGetName(handle)),
                    uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                    memory_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                    compute_capability=f"{major}.{minor}",
                )
            )
        return driver, tuple(gpus)
    except pynvml.NVMLError:  # a GPU NVML cannot describe is reported as no GPU, not a crash
        return "", ()
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def pin_environment() -> EnvironmentPin:
    """Pin the environment this interpreter runs in.

    Returns:
        Python implementation and version, the installed package set and its digest,
        kernel and distribution, machine, CPU model and flag digest, torch/CUDA/cuDNN
        versions ("" when absent) and the GPUs with their driver (none is normal).
    """
    packages = installed_packages()
    cpu_model, cpu_flags = cpu_info()
    torch, cuda, cudnn = torch_versions()
    driver, gpus = gpu_info()
    return EnvironmentPin(
        python=f"{platform.python_implementation()} {platform.python_version()}",
        packages=packages,
        packages_sha256=_sha256_lines(packages),
        os=_os_description(),
        machine=platform.machine(),
        cpu_model=cpu_model,
        cpu_flags_sha256=cpu_flags,
        torch=torch,
        cuda=cuda,
        cudnn=cudnn,
        gpu_driver=driver,
        gpus=gpus,
    )
