"""The podman sandbox's command line: sealed, by digest, the repository shown as bubblewrap does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from runner_project import Project

from bitwright.errors import UsageError
from bitwright.model import ContainerPin, SandboxKind
from bitwright.runner import Bind, PodmanSandbox, RepoView, detect_sandbox
from bitwright.runner._base import SANDBOX_PRIVATE_DIR
from bitwright.runner._podman import BITWRIGHT_IN_IMAGE, plan_mounts

DIGEST = "sha256:" + "ab" * 32


def sandbox() -> PodmanSandbox:
    return PodmanSandbox("localhost/build:py3.11", DIGEST, "/usr/bin/podman")


def mounts(view: RepoView, writable: list[Bind]) -> dict[str, tuple[str, str]]:
    """Destination -> (kind, source), as repository-relative paths where they lie inside."""
    found = {}
    for mount in plan_mounts(view, writable):
        rel = os.path.relpath(mount.destination, view.root)
        found[rel if not rel.startswith("..") else mount.destination] = (mount.kind, mount.source)
    return found


def test_warn_mode_shows_the_repository_read_only_with_outs_in_scratch(project: Project) -> None:
    root = project.root.resolve()
    (root / "data/prepared").mkdir(parents=True)
    view = RepoView.create(root, visible=["data/in.txt"], outs=["data/prepared"], strict=False)
    scratch = project.logs / "scratch"
    plan = mounts(view, [Bind(scratch, root / "data"), Bind(Path("/tmp/p"), SANDBOX_PRIVATE_DIR)])
    assert plan["."] == ("bind", str(root))  # everything, read-only
    assert plan["data"] == ("rw-bind", str(scratch))  # the outs' parent: a fresh scratch
    assert plan["data/in.txt"] == ("bind", str(root / "data/in.txt"))  # refilled read-only
    assert "data/prepared" not in plan  # a stale out is never shown
    assert plan[".git"][0] == "tmpfs" and plan[".bitwright"][0] == "tmpfs"  # hidden
    flags = [m.flag() for m in plan_mounts(view, [])]
    covers = [f for f in flags if f"destination={root}/.bitwright," in f]
    assert covers and all("notmpcopyup" in f for f in covers)  # never a copy of the keys
    assert plan[str(SANDBOX_PRIVATE_DIR)] == ("rw-bind", "/tmp/p")


def test_strict_mode_shows_only_declared_paths(project: Project) -> None:
    root = project.root.resolve()
    view = RepoView.create(
        root, visible=["data/in.txt", "params.yaml"], outs=["out/x"], strict=True
    )
    plan = mounts(view, [Bind(project.logs / "s", root / "out")])
    assert plan["."] == ("tmpfs", str(root))  # an empty read-only directory...
    assert plan["data/in.txt"][0] == "bind" and plan["params.yaml"][0] == "bind"  # ...holding these
    assert "secret.txt" not in plan and ".git" not in plan
    assert plan["out"][0] == "rw-bind"


def test_a_visible_path_deep_in_a_scratch_sits_in_a_read_only_directory(project: Project) -> None:
    root = project.root.resolve()
    project.write("data/raw/x.csv", "1\n")
    view = RepoView.create(root, visible=["data/raw/x.csv"], outs=["data/out.json"], strict=True)
    plan = mounts(view, [Bind(project.logs / "s", root / "data")])
    assert plan["data"][0] == "rw-bind"
    assert plan["data/raw"][0] == "tmpfs"  # writes next to x.csv fail instead of vanishing
    assert plan["data/raw/x.csv"][0] == "bind"


def test_no_two_mounts_share_a_place_and_parents_come_first(project: Project) -> None:
    root = project.root.resolve()
    view = RepoView.create(root, visible=["data/in.txt"], outs=["model.bin"], strict=False)
    plan = plan_mounts(view, [Bind(project.logs / "s", root)])  # the outs' parent is the root
    destinations = [m.destination for m in plan]
    assert len(destinations) == len(set(destinations))
    assert plan[0].destination == str(root) and plan[0].kind == "rw-bind"
    assert [d.count("/") for d in destinations] == sorted(d.count("/") for d in destinations)


def test_the_command_runs_the_image_by_digest_sealed(project: Project) -> None:
    root = project.root.resolve()
    view = RepoView.create(root, visible=[], outs=["out/x"], strict=False)
    box = sandbox()
    env = box.adapt_environment({"PATH": "/venv/bin:/usr/bin", "PYTHONPATH": "/tmp/bitwright/hook"})
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"  # the image's programs, not the host's
    assert env["PYTHONPATH"] == f"/tmp/bitwright/hook:{BITWRIGHT_IN_IMAGE}"
    argv = box.wrap(["python", "x.py"], view=view, writable=[], env=env, cwd=root)
    run = argv.index("run")
    flags = argv[run + 1 : argv.index(f"localhost/build@{DIGEST}")]
    for flag in ("--rm", "--pull=never", "--network=none", "--read-only", "--cap-drop=all"):
        assert flag in flags
    assert "--unsetenv-all" in flags and f"--env=PATH={env['PATH']}" in flags
    assert f"--workdir={root}" in flags
    assert argv[-2:] == ["python", "x.py"]
    assert argv[:2] == ["/usr/bin/env", "-i"]  # podman gets the caller's HOME, the stage never
    userns = [f for f in flags if f.startswith("--uidmap")]
    assert userns == ([f"--uidmap=0:{1_000_000}:65536"] if os.geteuid() == 0 else [])
    report = box.report(strict=False)
    assert report.kind is SandboxKind.PODMAN and report.container_digest == DIGEST


def test_the_runner_receipt_reaches_the_image_as_descriptor_3(project: Project) -> None:
    """The image's Python runs the shim; podman hands the receipt's unnamed file down as fd 3."""
    root = project.root.resolve()
    view = RepoView.create(root, visible=[], outs=[], strict=False)
    box = sandbox()
    env = box.adapt_environment({"PATH": "/usr/bin"})
    assert env["HOSTNAME"] == "bitwright"  # podman sets it: the stage is declared what it gets
    shimmed = box.shim(["python", "x.py"], 7)
    assert shimmed[:3] == ["/usr/bin/python3", "-I", "-S"] and shimmed[-3:] == [
        "3",
        "python",
        "x.py",
    ]
    argv = box.wrap(shimmed, view=view, writable=[], env=env, cwd=root)
    assert argv[0] == sys.executable and argv[5:7] == ["7", "3"]  # fd 7 becomes podman's 3
    assert argv[7:9] == ["/usr/bin/env", "-i"]  # then podman itself, as without a receipt
    assert "--preserve-fds=1" in argv and f"--env=HOSTNAME={env['HOSTNAME']}" in argv


def test_paths_podman_cannot_mount_are_refused(project: Project) -> None:
    root = project.root.resolve()
    project.write("odd,name.txt", "x")
    view = RepoView.create(root, visible=["odd,name.txt"], outs=[], strict=True)
    with pytest.raises(UsageError, match="cannot be mounted"):
        sandbox().wrap(["true"], view=view, writable=[], env={}, cwd=root)
    with pytest.raises(UsageError, match="line break"):
        sandbox().wrap(
            ["true"], view=RepoView.create(root, visible=[], outs=[], strict=True),
            writable=[], env={"X": "a\nb"}, cwd=root,
        )  # fmt: skip


@pytest.mark.parametrize("digest", ["sha256:" + "0" * 64, "sha256:abc", "latest"])
def test_a_placeholder_or_malformed_digest_never_runs(digest: str) -> None:
    pin = ContainerPin("localhost/build:1", digest, "0" * 64, "0" * 32, 1, "", True, "podman")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="no image digest"):
        detect_sandbox(SandboxKind.PODMAN, image=pin)
    with pytest.raises(UsageError, match="needs the build image"):
        detect_sandbox(SandboxKind.PODMAN)
