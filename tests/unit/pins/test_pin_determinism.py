"""pin_determinism: the ``determinism:`` section of params.yaml, strictly typed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bitwright.errors import OperationalError, UsageError
from bitwright.model import DeterminismSettings
from bitwright.pins import pin_determinism
from bitwright.pins.determinism import check_kernel_path


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
        cpu_capability="avx512",
        devices=("cpu", "cuda:0"),
    )
    assert pin_determinism({"determinism": custom.to_json()}) == custom


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
        ("cpu_capability", "avx3"),
        ("cpu_capability", "AVX2"),
        ("devices", []),
        ("devices", ["gpu"]),
        ("devices", "cpu"),
    ],
)
def test_wrong_type_or_value_names_the_key(key: str, value: Any) -> None:
    with pytest.raises(UsageError, match=rf"params\.yaml: determinism\.{key} must be") as e:
        pin_determinism({"determinism": {key: value}})
    assert repr(value) in e.value.message


def test_section_that_is_not_a_mapping() -> None:
    with pytest.raises(UsageError, match="determinism must be a mapping"):
        pin_determinism({"determinism": [1, 2]})


def test_the_cpu_kernel_path_is_pinned_through_the_environment() -> None:
    env = DeterminismSettings(cpu_capability="avx2").environment()
    assert env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["ONEDNN_MAX_CPU_ISA"] == env["DNNL_MAX_CPU_ISA"] == "AVX2"
    assert DeterminismSettings(cpu_capability="avx512").environment()["ONEDNN_MAX_CPU_ISA"] == (
        "AVX512_CORE"
    )
    unpinned = DeterminismSettings(cpu_capability="").environment()
    assert not {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"} & set(unpinned)


def test_a_cpu_without_the_pinned_kernel_path_is_refused() -> None:
    avx2 = DeterminismSettings(cpu_capability="avx2")
    check_kernel_path(avx2, frozenset({"sse2", "avx2", "fma"}), "x86_64")
    with pytest.raises(OperationalError, match="cannot run the pinned CPU kernel path 'avx2'") as e:
        check_kernel_path(avx2, frozenset({"sse2", "avx"}), "x86_64")
    assert "lacks avx2, fma" in e.value.message and "AVX2" in e.value.hint
    with pytest.raises(OperationalError, match="aarch64"):
        check_kernel_path(avx2, frozenset({"asimd", "sve"}), "aarch64")
    with pytest.raises(OperationalError, match="avx512bw"):
        check_kernel_path(
            DeterminismSettings(cpu_capability="avx512"), frozenset({"avx2", "fma"}), "x86_64"
        )
    check_kernel_path(DeterminismSettings(cpu_capability=""), frozenset(), "aarch64")
    check_kernel_path(DeterminismSettings(cpu_capability="default"), frozenset(), "aarch64")
