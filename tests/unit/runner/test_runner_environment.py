"""The sealed environment: an allowlist, the determinism variables, nothing of the caller's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bitwright.errors import UsageError
from bitwright.model import DeterminismSettings
from bitwright.runner import ALLOWED_HOST_VARS, sealed_environment


def _env(**kwargs: object) -> dict[str, str]:
    args: dict[str, object] = {
        "source_date_epoch": 1_700_000_000,
        "home": Path("/tmp/bitwright/home"),
        "path_dirs": ["/work/repo/.venv/bin"],
        "host": {"AWS_SECRET_ACCESS_KEY": "x", "CUDA_VISIBLE_DEVICES": "1", "PATH": "/evil"},
    }
    args.update(kwargs)
    return sealed_environment(DeterminismSettings(threads=4), **args)  # type: ignore[arg-type]


def test_only_the_allowlist_passes_from_the_host() -> None:
    env = _env()
    assert ALLOWED_HOST_VARS == ("CUDA_VISIBLE_DEVICES",)
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["PATH"] == "/work/repo/.venv/bin:/usr/local/bin:/usr/bin:/bin"


def test_fixed_variables_and_determinism_settings_are_set() -> None:
    env = _env()
    assert env["HOME"] == "/tmp/bitwright/home"
    assert env["SOURCE_DATE_EPOCH"] == "1700000000"
    assert (env["LANG"], env["LC_ALL"], env["TZ"]) == ("C.UTF-8", "C.UTF-8", "UTC")
    assert env["PYTHONDONTWRITEBYTECODE"] == env["PYTHONNOUSERSITE"] == "1"
    assert env["DVC_NO_ANALYTICS"] == "1"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "4"
    assert env["PYTHONHASHSEED"] == "0"
    assert json.loads(env["BITWRIGHT_DETERMINISM"])["threads"] == 4
    assert list(env) == sorted(env)


def test_extra_variables_are_added_but_cannot_undo_a_declaration() -> None:
    assert _env(extra={"BITWRIGHT_RECEIPT": "/tmp/r"})["BITWRIGHT_RECEIPT"] == "/tmp/r"
    with pytest.raises(UsageError, match="PYTHONHASHSEED='1' contradicts"):
        _env(extra={"PYTHONHASHSEED": "1"})
