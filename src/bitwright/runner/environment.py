"""The sealed environment of a stage: a cleared allowlist, never the caller's variables.

Everything a stage finds in its environment is written here, recorded in its link and
identical on a rebuild: locale, time zone, ``SOURCE_DATE_EPOCH``, Python's start-up switches,
and the determinism variables that only work when set before the interpreter starts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from bitwright.errors import UsageError
from bitwright.model.pins import DeterminismSettings
from bitwright.stagekit import DETERMINISM_ENV

__all__ = ["ALLOWED_HOST_VARS", "PROCESS_VARIABLES", "SYSTEM_PATH", "sealed_environment"]

ALLOWED_HOST_VARS: tuple[str, ...] = ("CUDA_VISIBLE_DEVICES",)
"""Host variables passed through when set. Only the GPU selection: it picks the device a stage
computes on (recorded in the link), and nothing else from the caller may shape a stage."""

PROCESS_VARIABLES: tuple[str, ...] = ("LANG", "LC_ALL", "TZ", "SOURCE_DATE_EPOCH")
"""The fixed process-level variables every stage starts with, besides the declared ones."""

SYSTEM_PATH: tuple[str, ...] = ("/usr/local/bin", "/usr/bin", "/bin")
"""Directories searched for programs after the caller's (the virtual environment's ``bin``)."""


def sealed_environment(
    settings: DeterminismSettings,
    *,
    source_date_epoch: int,
    home: Path,
    path_dirs: Sequence[str],
    extra: Mapping[str, str] | None = None,
    host: Mapping[str, str] | None = None,
    pass_through: Sequence[str] = (),
) -> dict[str, str]:
    """Return the complete environment a sealed stage starts with.

    Args:
        settings: the declared determinism settings; their variables are set and the whole
            declaration is passed as JSON in ``BITWRIGHT_DETERMINISM`` for ``stagekit``.
        source_date_epoch: the commit time, for tools that stamp dates into outputs.
        home: a private, empty directory (as the stage will see its path).
        path_dirs: directories searched first for programs (the venv's ``bin``).
        extra: further variables (the receipt and trace paths, ``PYTHONPATH``); they may
            not change a determinism variable.
        host: the caller's environment for :data:`ALLOWED_HOST_VARS` (default: ``os.environ``).
        pass_through: further names taken from ``host`` when set (DVC's variables and the
            project's allowances, see :mod:`bitwright.runner.allowances`); a determinism
            variable or one of ``extra`` still wins over them.

    Returns:
        The variables, sorted by name.

    Raises:
        UsageError: ``extra`` contradicts a declared determinism variable.
    """
    determinism = settings.environment()
    extra = dict(extra or {})
    for name, value in extra.items():
        if name in determinism and determinism[name] != value:
            raise UsageError(
                f"environment variable {name}={value!r} contradicts the declared "
                f"determinism setting {determinism[name]!r}",
                hint="change it under determinism: in params.yaml instead",
            )
    source = os.environ if host is None else host
    path = ":".join(dict.fromkeys([*path_dirs, *SYSTEM_PATH]))
    env = {
        "PATH": path,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "SOURCE_DATE_EPOCH": str(source_date_epoch),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "DVC_NO_ANALYTICS": "1",
        DETERMINISM_ENV: json.dumps(settings.to_json(), sort_keys=True, separators=(",", ":")),
    }
    passed = (*ALLOWED_HOST_VARS, *pass_through)
    env.update({name: source[name] for name in passed if name in source})
    env.update(determinism)
    env.update(extra)
    return dict(sorted(env.items()))
