"""Variations: what this machine can apply, and what a varied stage really sees."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from runner_project import Project, sha256_tree

from bitwright.builder.context import vary_settings
from bitwright.errors import OperationalError, UsageError
from bitwright.model import DeterminismSettings, SandboxKind
from bitwright.model.variation import Change, ChangeKind, Variation, VariationKind
from bitwright.runner import BubblewrapSandbox, NoSandbox, run_sealed
from bitwright.runner.variations import (
    CATALOG,
    DEFAULT,
    Machine,
    plan,
    umask_of,
    vary_environment,
    vary_sandbox,
)

AVX512 = frozenset({"avx2", "avx512f"})


def machine(**changes: object) -> Machine:
    base = {
        "sandbox": SandboxKind.BUBBLEWRAP,
        "uts_namespace": True,
        "locales": ("C", "C.utf8", "POSIX", "de_DE.utf8"),
        "zoneinfo": True,
        "cpu_flags": AVX512,
        "umask": 0o022,
        "disorderfs": "",
    }
    base.update(changes)
    return Machine(**base)  # type: ignore[arg-type]


def test_the_default_plan_applies_everything_on_a_capable_machine() -> None:
    planned = plan(DEFAULT, machine(), DeterminismSettings())
    assert [p.name for p in planned] == list(DEFAULT)
    assert all(p.applied for p in planned), [p.reason for p in planned if not p.applied]
    by_name = {p.name: p.variation for p in planned}
    assert by_name["locale"] and by_name["locale"].of(ChangeKind.ENV)[0].value == "de_DE.utf8"
    assert by_name["threads"] and by_name["threads"].kind is VariationKind.KNOB
    assert by_name["threads"].changes == (Change(ChangeKind.SETTING, "threads", "2"),)


def test_what_a_machine_cannot_apply_is_named_with_the_reason() -> None:
    weak = machine(
        sandbox=SandboxKind.UNSHARE,
        uts_namespace=False,
        locales=("C", "POSIX"),
        zoneinfo=False,
        cpu_flags=frozenset({"sse4_2"}),
        disorderfs="disorderfs is not installed (apt-get install disorderfs)",
    )
    planned = {p.name: p for p in plan(DEFAULT, weak, DeterminismSettings())}
    assert not planned["hostname"].applied
    assert "unshare sandbox gives a stage no UTS namespace" in planned["hostname"].reason
    assert not planned["fs_order"].applied
    assert "disorderfs is not installed" in planned["fs_order"].reason
    assert not planned["cpu_isa"].applied and "AVX" in planned["cpu_isa"].reason
    locale = planned["locale"].variation
    assert locale is not None and "only the C and POSIX locales" in locale.note
    zone = planned["time_zone"].variation
    assert zone is not None and zone.of(ChangeKind.ENV)[0].value == "<+14>-14"


def test_a_pinned_variable_is_never_varied_as_noise() -> None:
    # The declared settings pin MKL_CBWR (and, once declared, ATen's capability): an
    # environment variation must leave it to a knob variation.
    class Pinned(DeterminismSettings):
        def environment(self) -> dict[str, str]:
            return {**super().environment(), "ATEN_CPU_CAPABILITY": "avx2"}

    (cpu,) = plan(["cpu_isa"], machine(), Pinned())
    assert cpu.variation is not None
    assert [c.name for c in cpu.variation.changes] == ["MKL_ENABLE_INSTRUCTIONS"]
    assert "ATEN_CPU_CAPABILITY pinned" in cpu.variation.note


def test_unknown_variation_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown variation 'moon_phase'") as caught:
        plan(["moon_phase"], machine(), DeterminismSettings())
    assert "time_zone" in caught.value.hint
    assert set(DEFAULT) <= set(CATALOG)


def test_knobs_are_checked_as_params_are() -> None:
    threads = Variation(
        "threads", VariationKind.KNOB, (Change(ChangeKind.SETTING, "threads", "2"),)
    )
    assert vary_settings(DeterminismSettings(), threads).threads == 2
    for bad in (("threads", "0"), ("threads", "many"), ("moon", "1"), ("mkl_cbwr", "lower")):
        knob = Variation("bad", VariationKind.KNOB, (Change(ChangeKind.SETTING, *bad),))
        with pytest.raises(UsageError):
            vary_settings(DeterminismSettings(), knob)


def test_environment_noise_may_not_touch_a_declared_variable() -> None:
    env = {"PATH": "/bin", "MKL_CBWR": "AVX2,STRICT", "TZ": "UTC"}
    noise = Variation("x", VariationKind.ENVIRONMENT, (Change(ChangeKind.ENV, "TZ", "Asia/Tokyo"),))
    assert vary_environment(env, noise, DeterminismSettings())["TZ"] == "Asia/Tokyo"
    sneaky = Variation(
        "x", VariationKind.ENVIRONMENT, (Change(ChangeKind.ENV, "MKL_CBWR", "AUTO"),)
    )
    with pytest.raises(UsageError, match="MKL_CBWR"):
        vary_environment(env, sneaky, DeterminismSettings())


def test_a_host_name_needs_a_uts_namespace() -> None:
    named = Variation(
        "h", VariationKind.ENVIRONMENT, (Change(ChangeKind.HOSTNAME, "", "elsewhere"),)
    )
    with pytest.raises(OperationalError, match="cannot give a stage another host name"):
        vary_sandbox(NoSandbox(), named)
    assert vary_sandbox(NoSandbox(), None).kind is SandboxKind.NONE
    assert umask_of(None) is None
    umask = Variation("u", VariationKind.ENVIRONMENT, (Change(ChangeKind.UMASK, "", "0002"),))
    assert umask_of(umask) == 0o002


def test_a_varied_stage_sees_the_variation_and_nothing_else_changes(
    project: Project, bwrap: BubblewrapSandbox, tmp_path: Path
) -> None:
    stage = project.stage(
        "seen",
        """
        import json, os, socket
        os.makedirs("out", exist_ok=True)
        umask = os.umask(0)
        seen = {"tz": os.environ["TZ"], "lang": os.environ["LANG"], "umask": umask,
                "host": socket.gethostname(), "noise": os.environ.get("BITWRIGHT_NOISE"),
                "threads": os.environ["OMP_NUM_THREADS"]}
        json.dump(seen, open("out/seen.json", "w"))
        """,
        outs=["out/seen.json"],
    )
    variation = Variation.combine(
        "several",
        [
            Change(ChangeKind.ENV, "TZ", "Pacific/Kiritimati"),
            Change(ChangeKind.ENV, "LANG", "C"),
            Change(ChangeKind.ENV, "BITWRIGHT_NOISE", "noise"),
            Change(ChangeKind.UMASK, "", "0077"),
            Change(ChangeKind.HOSTNAME, "", "elsewhere"),
        ],
    )

    def run(varied: Variation | None) -> dict[str, object]:
        done = run_sealed(
            stage,
            repo=project.root,
            argv=[sys.executable, "pipelines/seen.py"],
            settings=DeterminismSettings(),
            source_date_epoch=1_700_000_000,
            strict=False,
            sandbox=bwrap,
            digest=lambda paths: sha256_tree(project.root, paths),
            log_dir=project.logs,
            echo=False,
            variation=varied,
        )
        assert done.returncode == 0
        return project.read_json("out/seen.json")  # type: ignore[no-any-return]

    plain = run(None)
    varied = run(variation)
    assert plain["tz"] == "UTC" and varied["tz"] == "Pacific/Kiritimati"
    assert plain["lang"] == "C.UTF-8" and varied["lang"] == "C"
    assert plain["noise"] is None and varied["noise"] == "noise"
    assert varied["umask"] == 0o077 and plain["umask"] != 0o077
    assert plain["host"] == "bitwright" and varied["host"] == "elsewhere"
    assert plain["threads"] == varied["threads"] == "1"
