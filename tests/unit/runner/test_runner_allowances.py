"""Sandbox allowances: what a project lets a stage do beyond the seal, and nothing more."""

from __future__ import annotations

import hashlib

import pytest
from runner_project import Project
from test_runner_sealing import CONNECT

from bitwright.errors import OperationalError, UsageError
from bitwright.model import SandboxAllowances
from bitwright.runner import BubblewrapSandbox, NoSandbox, PodmanSandbox, UnshareSandbox
from bitwright.runner.allowances import check_allowances, with_network

WRITE_DVC_TMP = """
import json, os, pathlib
path = pathlib.Path(".dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED")
try:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    outcome = "written"
except OSError as exc:
    outcome = type(exc).__name__
pathlib.Path("out/result.json").write_text(json.dumps({"outcome": outcome}))
"""

SHOW_ENV = """
import json, os, pathlib
keys = ("DVC_ROOT", "DVC_STAGE", "WANDB_MODE", "SECRET_TOKEN", "DVC_STUDIO_TOKEN")
pathlib.Path("out/result.json").write_text(json.dumps({k: os.environ.get(k) for k in keys}))
"""


def test_dvc_scratch_is_read_only_unless_allowed_and_writes_are_discarded(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    project.write(".dvc/tmp/btime", "")
    stage = project.stage("live", WRITE_DVC_TMP, outs=["out/result.json"])
    sealed = project.run(stage, bwrap)
    assert sealed.returncode == 0
    assert project.read_json("out/result.json") == {"outcome": "OSError"}
    allowed = SandboxAllowances(writable=(".dvc/tmp",))
    run = project.run(stage, bwrap, allowances=allowed)
    assert project.read_json("out/result.json") == {"outcome": "written"}
    assert run.allowances == allowed
    assert not (project.root / ".dvc/tmp/exps").exists()  # a scratch, discarded
    assert (project.root / ".dvc/tmp/btime").exists()  # the real directory is untouched


def test_only_dvc_variables_and_allowed_ones_pass_and_values_are_recorded_as_digests(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    host = {
        "DVC_ROOT": str(project.root),
        "DVC_STAGE": "show",
        "WANDB_MODE": "offline",
        "SECRET_TOKEN": "hunter2",
        "DVC_STUDIO_TOKEN": "studio-secret",
    }
    stage = project.stage("show", SHOW_ENV, outs=["out/result.json"])
    run = project.run(
        stage, bwrap, host_env=host, allowances=SandboxAllowances(env=("WANDB_MODE",))
    )
    assert project.read_json("out/result.json") == {
        "DVC_ROOT": str(project.root),
        "DVC_STAGE": "show",
        "WANDB_MODE": "offline",
        "SECRET_TOKEN": None,
        "DVC_STUDIO_TOKEN": None,
    }
    digest = "sha256:" + hashlib.sha256(b"offline").hexdigest()
    assert run.environment["WANDB_MODE"] == digest
    assert "offline" not in run.environment.values()
    assert run.environment["DVC_SITE_CACHE_DIR"].startswith("/tmp/bitwright/")


def test_the_network_only_when_allowed_and_then_not_recorded_as_cut(
    project: Project, bwrap: BubblewrapSandbox, listening_port: int
) -> None:
    stage = project.stage("net", CONNECT, outs=["out/net.json"])
    cut = project.run(stage, bwrap, args=[str(listening_port)])
    assert cut.returncode == 3 and cut.sandbox.network_cut
    run = project.run(
        stage,
        bwrap,
        args=[str(listening_port)],
        allowances=SandboxAllowances(network=True),
    )
    assert project.read_json("out/net.json") == {"outcome": "connected"}
    assert not run.sandbox.network_cut and run.sandbox.repo_read_only
    assert run.allowances.network


def test_unshare_with_the_network_allowed_seals_nothing() -> None:
    granted = SandboxAllowances(network=True)
    assert isinstance(with_network(UnshareSandbox(("unshare", "--net")), granted), NoSandbox)
    sandbox = BubblewrapSandbox("/usr/bin/bwrap", ("--unshare-net", "--unshare-pid"))
    assert with_network(sandbox, SandboxAllowances()) is sandbox
    assert with_network(sandbox, granted).isolation == ("--unshare-pid",)  # type: ignore[attr-defined]


def test_a_writable_path_over_the_outs_is_refused(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    stage = project.stage("live", WRITE_DVC_TMP, outs=["out/result.json"])
    with pytest.raises(UsageError, match="overlaps 'out'"):
        project.run(stage, bwrap, allowances=SandboxAllowances(writable=("out",)))


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (SandboxAllowances(env=("PATH",)), "cannot be passed"),
        (SandboxAllowances(env=("LD_PRELOAD",)), "cannot be passed"),
        (SandboxAllowances(env=("PYTHONPATH",)), "cannot be passed"),
        (SandboxAllowances(env=("DVC_STUDIO_TOKEN",)), "cannot be passed"),
        (SandboxAllowances(env=("BITWRIGHT_STAGE_TOKEN",)), "cannot be passed"),
        (SandboxAllowances(env=("A-B",)), "is not an environment variable name"),
        (SandboxAllowances(writable=(".git",)), "lies in .git"),
        (SandboxAllowances(writable=(".bitwright/keys",)), "lies in .bitwright"),
        (SandboxAllowances(writable=(".dvc/cache",)), "lies in .dvc/cache"),
        (SandboxAllowances(writable=(".dvc/tmp/exps",)), "inside .dvc/tmp"),
        (SandboxAllowances(writable=("../elsewhere",)), "not inside the repository"),
        (SandboxAllowances(writable=("/tmp/x",)), "not inside the repository"),
        (SandboxAllowances(writable=(".",)), "whole repository"),
    ],
)
def test_allowances_that_would_break_the_seal_are_refused(
    given: SandboxAllowances, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        check_allowances("config", given)


def test_allowed_paths_are_normalized() -> None:
    checked = check_allowances("config", SandboxAllowances(writable=("./logs/", "logs")))
    assert checked.writable == ("logs",)


def test_a_container_stage_is_never_given_the_network() -> None:
    podman = PodmanSandbox("localhost/build:py3.11", "sha256:" + "a" * 64, "/usr/bin/podman")
    assert with_network(podman, SandboxAllowances()) is podman
    with pytest.raises(OperationalError, match="without network"):
        with_network(podman, SandboxAllowances(network=True))
