"""Read the declared determinism settings from ``params.yaml``, and check this CPU can honour them.

:func:`pin_determinism` reads and checks the ``determinism:`` mapping. :func:`check_kernel_path`
refuses a machine whose CPU cannot run the pinned CPU kernel path: forcing torch onto
instructions the CPU lacks would crash the stage, and running another path trains other bits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from bitwright.errors import OperationalError, UsageError
from bitwright.model.pins import CPU_KERNEL_PATHS, DeterminismSettings

__all__ = ["KERNEL_PATH_FLAGS", "PARAMS_FILE", "SECTION", "check_kernel_path", "pin_determinism"]

PARAMS_FILE = "params.yaml"
SECTION = "determinism"

_UINT32 = 2**32 - 1
_CUBLAS_RE = re.compile(r"(:\d+:\d+)+")
_MKL_CBWR_RE = re.compile(r"[A-Z][A-Z0-9_]*(,STRICT)?")
_DEVICE_RE = re.compile(r"cpu|cuda(:\d+)?")

KERNEL_PATH_FLAGS: dict[str, frozenset[str]] = {
    "default": frozenset(),
    "avx2": frozenset({"avx2", "fma"}),
    "avx512": frozenset({"avx512f", "avx512vl", "avx512bw", "avx512dq", "fma"}),
}
"""The CPU flags (``/proc/cpuinfo``) torch requires before it dispatches to a kernel path."""

# Each setting: its type, and a check of its value with the rule a user reads on failure.
# Ranges are those the consumers accept: numpy seeds and PYTHONHASHSEED take 0 .. 2**32-1.
_Check = Callable[[Any], bool]
_RULES: dict[str, tuple[type, _Check, str]] = {
    "seed": (int, lambda v: 0 <= v <= _UINT32, "an integer in 0..4294967295"),
    "torch_deterministic": (bool, lambda v: True, "true or false"),
    "cudnn_benchmark": (bool, lambda v: True, "true or false"),
    "allow_tf32": (bool, lambda v: True, "true or false"),
    "threads": (int, lambda v: 1 <= v <= 4096, "an integer in 1..4096"),
    "pythonhashseed": (int, lambda v: 0 <= v <= _UINT32, "an integer in 0..4294967295"),
    "cublas_workspace_config": (
        str,
        lambda v: _CUBLAS_RE.fullmatch(v) is not None,
        'a cuBLAS workspace config such as ":4096:8" or ":16:8"',
    ),
    "mkl_cbwr": (
        str,
        lambda v: _MKL_CBWR_RE.fullmatch(v) is not None,
        'an MKL_CBWR branch such as "AVX2,STRICT" or "COMPATIBLE"',
    ),
    "cpu_capability": (
        str,
        lambda v: v == "" or v in CPU_KERNEL_PATHS,
        f'a CPU kernel path ({", ".join(map(repr, CPU_KERNEL_PATHS))}) or "" for none',
    ),
    "devices": (
        list,
        lambda v: bool(v) and all(isinstance(d, str) and _DEVICE_RE.fullmatch(d) for d in v),
        "a non-empty list of devices: cpu, cuda or cuda:N",
    ),
}


def _has_type(value: Any, kind: type) -> bool:
    # bool is an int subclass: `threads: true` must not pass as 1, nor `seed: 0` as a flag.
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is list:  # a YAML list, or the tuple of settings already read
        return isinstance(value, list | tuple)
    return isinstance(value, kind)


def pin_determinism(params: Mapping[str, Any]) -> DeterminismSettings:
    """Return the determinism settings declared in the ``determinism:`` section of ``params``.

    A missing (or empty) section means the defaults of :class:`DeterminismSettings`;
    keys left out keep their defaults.

    Args:
        params: the parsed ``params.yaml`` mapping.

    Raises:
        UsageError: the section is not a mapping, names an unknown setting, or gives a
            setting a value of the wrong type or out of range.
    """
    section = params.get(SECTION)
    if section is None:
        return DeterminismSettings()
    if not isinstance(section, Mapping):
        raise UsageError(
            f"{PARAMS_FILE}: {SECTION} must be a mapping of settings, not {type(section).__name__}",
            hint=f"write it as `{SECTION}:` followed by indented `key: value` lines",
        )
    values: dict[str, Any] = {}
    for key, value in section.items():
        rule = _RULES.get(str(key))
        if rule is None:
            raise UsageError(
                f"{PARAMS_FILE}: unknown setting {SECTION}.{key}",
                hint=f"known settings: {', '.join(sorted(_RULES))}",
            )
        kind, check, wanted = rule
        if not _has_type(value, kind) or not check(value):
            raise UsageError(
                f"{PARAMS_FILE}: {SECTION}.{key} must be {wanted}, not {value!r}",
                hint=f"fix {SECTION}.{key} in the configs that compose {PARAMS_FILE}",
            )
        values[str(key)] = tuple(value) if isinstance(value, list) else value
    return DeterminismSettings(**values)


def check_kernel_path(settings: DeterminismSettings, flags: frozenset[str], machine: str) -> None:
    """Refuse to build on a CPU that cannot run the pinned CPU kernel path.

    Args:
        settings: the declared settings (``cpu_capability`` "" pins nothing).
        flags: this CPU's flags (:func:`bitwright.pins.environment.cpu_flags`).
        machine: ``platform.machine()``, for the message.

    Raises:
        OperationalError: the CPU lacks an instruction set the pinned path needs.
    """
    path = settings.cpu_capability
    missing = sorted(KERNEL_PATH_FLAGS.get(path, frozenset()) - flags)
    if not missing:
        return
    raise OperationalError(
        f"this CPU ({machine}) cannot run the pinned CPU kernel path {path!r}: it lacks "
        f"{', '.join(missing)}",
        hint=f"build or rebuild on an x86-64 machine with {path.upper()} "
        "(determinism.cpu_capability): another kernel path computes other bits",
    )
