"""Environment drift lines and the Markdown report a verifier publishes."""

from __future__ import annotations

import dataclasses

from tests.unit.attest.attest_factories import sha

from bitwright.attest.provenance import build_provenance
from bitwright.attest.statement import Statement, dvc_parameters
from bitwright.model import (
    BuildPins,
    ContainerPin,
    DataPin,
    DeterminismSettings,
    EnvironmentPin,
    GitPin,
    GpuInfo,
    SandboxKind,
)
from bitwright.rebuild.compare import FileComparison, TensorDiff, Verdict
from bitwright.rebuild.drift import environment_drift
from bitwright.rebuild.report import DataCheck, RebuildReport, report_markdown
from bitwright.rebuild.stages import StageComparison, StageRole, match_paths

PACKAGES = ("numpy==2.4.6", "torch==2.13.0")
ENV = EnvironmentPin(
    python="CPython 3.11.9",
    packages=PACKAGES,
    packages_sha256=sha("\n".join(PACKAGES)),
    os="Linux 6.1 / Debian GNU/Linux 12",
    machine="x86_64",
    cpu_model="Example CPU",
    cpu_flags_sha256=sha("avx2 fma"),
    torch="2.13.0",
)
CONTAINER = ContainerPin(
    "ghcr.io/x/build:1", "sha256:" + sha("image"), sha("archive"), "0" * 32, 1, "", True, "podman"
)


def statement() -> Statement:
    pins = BuildPins(
        git=GitPin("0123456789abcdef0123456789abcdef01234567", 1_700_000_000, "/src"),
        data=(DataPin("data/raw", "a" * 32 + ".dir", sha("raw"), 10, 1, "/remote"),),
        container=CONTAINER,
        determinism=DeterminismSettings(),
        environment=ENV,
        params_sha256={"params.yaml": sha("params")},
    )
    return build_provenance(
        subjects={"release/model.safetensors": sha("model")},
        pins=pins,
        source_uri="/src",
        targets=["dvc.yaml"],
        params=pins.params_sha256,
        builder_id="https://bitwright.dev/builders/local-host/v1",
        invocation_id="1",
        started_on="2026-01-01T00:00:00Z",
        finished_on="2026-01-01T00:01:00Z",
        links={},
        confirmed={},
    )


def drift(environment: EnvironmentPin) -> tuple[str, ...]:
    st = statement()
    _, internal = dvc_parameters(st)
    return environment_drift(
        st, internal, environment=environment, container=CONTAINER, sandbox=SandboxKind.NONE
    )


def test_the_same_machine_has_no_drift() -> None:
    assert drift(ENV) == ()


def test_each_difference_is_one_line_naming_it() -> None:
    packages = ("numpy==2.4.7", "torch==2.13.0")
    here = dataclasses.replace(
        ENV,
        packages=packages,
        packages_sha256=sha("\n".join(packages)),
        cpu_flags_sha256=sha("avx512"),
        gpus=(GpuInfo("NVIDIA H100", "GPU-1", 80, "9.0"),),
    )
    lines = drift(here)
    assert any("-numpy==2.4.6" in x and "+numpy==2.4.7" in x for x in lines)
    assert any(x.startswith("CPU flags differ") for x in lines)
    assert any("NVIDIA H100" in x for x in lines)
    assert len(lines) == 3


def test_markdown_report_shows_verdict_stages_tensors_and_drift() -> None:
    tensor = TensorDiff("w", "F32", (4,), False, 0.25, 0.1, 9, 1, 4, False)
    file = FileComparison(
        "models/m.safetensors", "safetensors", Verdict.DIFFERENT, "1 tensor", (tensor,)
    )
    stage = StageComparison(
        "train",
        Verdict.DIFFERENT,
        StageRole.FIRST_DIVERGENT,
        match_paths({"a": "1" * 64}, {"a": "1" * 64}),
        match_paths({"models/m.safetensors": "2" * 64}, {"models/m.safetensors": "3" * 64}),
        (file,),
        "same materials, other products",
    )
    report = RebuildReport(
        release="/r",
        verdict=Verdict.DIFFERENT,
        reason="stage 'train' gave other products from the same materials",
        stages=(stage,),
        first_divergent="train",
        data=(DataCheck("data/raw", True, "ok"),),
        drift=("CPU model: built with 'A', here 'B'",),
    )
    text = report_markdown(report)
    assert "**Verdict: DIFFERENT**" in text
    assert "| `train` | 1/1 matched | 0/1 matched, 1 differs | DIFFERENT (first divergent)" in text
    assert "| `models/m.safetensors` | `w` | F32 | [4] | 1/4 | 0.25 |" in text
    assert "- CPU model: built with 'A', here 'B'" in text
    assert report.to_json()["first_divergent_stage"] == "train"
    assert not report.reproduced


def test_the_build_image_drifts_by_digest_and_by_where_the_stages_run() -> None:
    st = statement()
    _, internal = dvc_parameters(st)
    other = dataclasses.replace(CONTAINER, digest="sha256:" + sha("other image"))
    lines = environment_drift(
        st, internal, environment=ENV, container=other, sandbox=SandboxKind.NONE
    )
    assert lines == (
        f"build image ghcr.io/x/build:1: built with {CONTAINER.digest}, the checkout pins "
        f"{other.digest}",
    )
    on_host = environment_drift(
        st, internal, environment=ENV, container=None, sandbox=SandboxKind.NONE
    )
    assert on_host == ("the build ran inside its image; this rebuild runs on the host",)
