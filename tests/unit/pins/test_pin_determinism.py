"""pin_determinism: the ``determinism:`` section of params.yaml, strictly typed."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from bitwright.errors import UsageError
from bitwright.model import DeterminismSettings
from bitwright.pins import pin_determinism


def test_missing_or_empty_section_means_defaults() -> None:
    assert pin_determinism({"train": {"lr": 0.1}}) == DeterminismSettings()
    assert pin_determinism(yaml.safe_load("determinism:\n")) == DeterminismSettings()


def test_declared_settings_are_read_from_params_yaml() -> None:
    params = yaml.safe_load(
        "determinism:\n  seed: 42\n  threads: 4\n  allow_tf32: true\n"
        "  cublas_workspace_config: ':16:8'\n  mkl_cbwr: COMPATIBLE\n"
    )
    settings = pin_determinism(params)
    assert (settings.seed, settings.threads, settings.allow_tf32) == (42, 4, True)
    assert settings.environment()["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    assert settings.environment()["MKL_CBWR"] == "COMPATIBLE"
    assert settings.torch_deterministic is True  # left out: default


def test_every_setting_can_be_declared() -> None:
    custom = DeterminismSettings(
        seed=7,
        torch_deterministic=False,
        cudnn_benchmark=True,
        allow_tf32=True,
        threads=2,
        pythonhashseed=123,
        cublas_workspace_config=":16:8",
        mkl_cbwr="AVX512,STRICT",
    )
    assert pin_determinism({"determinism": dataclasses.asdict(custom)}) == custom


def test_unknown_key_names_params_yaml_and_key() -> None:
    with pytest.raises(UsageError, match=r"params\.yaml: unknown setting determinism\.sed") as e:
        pin_determinism({"determinism": {"sed": 1}})
    assert "seed" in e.value.hint


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("seed", "42"),
        ("seed", -1),
        ("seed", 2**32),
        ("seed", 1.5),
        ("threads", True),
        ("threads", 0),
        ("torch_deterministic", 1),
        ("torch_deterministic", "yes"),
        ("pythonhashseed", None),
        ("cublas_workspace_config", "4096:8"),
        ("mkl_cbwr", "avx2"),
    ],
)
def test_wrong_type_or_value_names_the_key(key: str, value: Any) -> None:
    with pytest.raises(UsageError, match=rf"params\.yaml: determinism\.{key} must be") as e:
        pin_determinism({"determinism": {key: value}})
    assert repr(value) in e.value.message


def test_section_that_is_not_a_mapping() -> None:
    with pytest.raises(UsageError, match="determinism must be a mapping"):
        pin_determinism({"determinism": [1, 2]})
