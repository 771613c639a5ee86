"""A stage runs sealed: no network, read-only repository, cleared environment, fresh outs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from runner_project import Project

from bitwright.errors import StageFailed, ToolError, UsageError
from bitwright.model import DeterminismSettings, SandboxKind
from bitwright.runner import BubblewrapSandbox, NoSandbox, judge, log_paths

CONNECT = """
import json, socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
    outcome = "connected"
except OSError as exc:
    outcome = type(exc).__name__
json.dump({"outcome": outcome}, open("out/net.json", "w"))
sys.exit(0 if outcome == "connected" else 3)
"""


def test_unsealed_control_reaches_the_host_server(project: Project, listening_port: int) -> None:
    stage = project.stage("net", CONNECT, outs=["out/net.json"])
    run = project.run(stage, NoSandbox(), args=[str(listening_port)])
    assert run.returncode == 0
    assert project.read_json("out/net.json") == {"outcome": "connected"}


@pytest.mark.parametrize("kind", ["bwrap", "unshare"])
def test_sealed_stage_cannot_reach_the_network(
    project: Project, listening_port: int, kind: str, request: pytest.FixtureRequest
) -> None:
    sandbox = request.getfixturevalue(kind)
    stage = project.stage("net", CONNECT, outs=["out/net.json"])
    run = project.run(stage, sandbox, args=[str(listening_port)])
    assert run.returncode == 3
    assert run.sandbox.network_cut
    with pytest.raises(StageFailed, match="exited with status 3"):
        judge(run, settings=DeterminismSettings(), strict=False)


def test_writing_a_dep_fails_and_leaves_the_repository_alone(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    stage = project.stage(
        "clobber",
        """
        import sys
        try:
            open("data/in.txt", "w").write("tampered")
        except OSError as exc:
            sys.exit(f"refused: {exc.strerror}")
        """,
        deps=["data/in.txt"],
    )
    run = project.run(stage, bwrap)
    assert run.returncode == 1
    assert (project.root / "data/in.txt").read_text() == "declared input\n"
    stderr = log_paths(project.logs, "clobber")[1].read_text()
    assert "refused: Read-only file system" in stderr
    assert run.sandbox.repo_read_only


def test_files_left_beside_outs_fail_the_stage_and_are_discarded(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    stage = project.stage(
        "stray",
        """
        open("metrics.json", "w").write("{}")
        open("notes.txt", "w").write("not declared")
        """,
        outs=["metrics.json"],
    )
    with pytest.raises(StageFailed, match=r"not declared outs \(discarded\): notes.txt"):
        project.run(stage, bwrap)
    assert not (project.root / "notes.txt").exists()
    assert not (project.root / "metrics.json").exists()


def test_environment_is_cleared_to_the_sealed_one(
    project: Project, bwrap: BubblewrapSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BITWRIGHT_TEST_LEAK", "from the caller")
    stage = project.stage(
        "env",
        """
        import json, os
        print("hello from the stage")
        seen = {"env": dict(os.environ), "home": os.listdir(os.environ["HOME"])}
        json.dump(seen, open("out/env.json", "w"))
        """,
        outs=["out/env.json"],
    )
    settings = DeterminismSettings(threads=2, pythonhashseed=7)
    run = project.run(stage, bwrap, settings=settings)
    assert run.returncode == 0
    seen = project.read_json("out/env.json")
    assert "BITWRIGHT_TEST_LEAK" not in seen["env"]
    assert seen["env"] == run.environment
    for name, value in settings.environment().items():
        assert seen["env"][name] == value
    assert seen["env"]["OMP_NUM_THREADS"] == "2"
    assert seen["env"]["SOURCE_DATE_EPOCH"] == "1700000000"
    assert json.loads(seen["env"]["BITWRIGHT_DETERMINISM"])["pythonhashseed"] == 7
    assert seen["home"] == []
    stdout_log = log_paths(project.logs, "env")[0]
    assert stdout_log.read_text() == "hello from the stage\n"
    assert run.stdout_sha256 == hashlib.sha256(stdout_log.read_bytes()).hexdigest()
    assert run.products == {"out/env.json": run.products["out/env.json"]}
    assert set(run.materials) == {"pipelines/env.py", "params.yaml"}


def test_a_stale_out_is_invisible_and_replaced(project: Project, bwrap: BubblewrapSandbox) -> None:
    project.write("metrics.json", '{"stale": true}')
    stage = project.stage(
        "fresh",
        """
        import json, os
        json.dump({"saw_stale": os.path.exists("metrics.json")}, open("metrics.json", "w"))
        """,
        outs=["metrics.json"],
    )
    run = project.run(stage, bwrap)
    assert run.returncode == 0
    assert project.read_json("metrics.json") == {"saw_stale": False}


def test_directory_outs_are_collected(project: Project, bwrap: BubblewrapSandbox) -> None:
    stage = project.stage(
        "dirs",
        """
        import os
        os.makedirs("models/ckpt")
        open("models/ckpt/weights.bin", "wb").write(b"w")
        open("models/card.md", "w").write("card")
        """,
        outs=["models"],
    )
    run = project.run(stage, bwrap)
    assert run.returncode == 0
    assert sorted(run.products) == ["models/card.md", "models/ckpt/weights.bin"]


def test_a_missing_out_fails_the_stage(project: Project, bwrap: BubblewrapSandbox) -> None:
    stage = project.stage("lazy", "print('did nothing')", outs=["out/model.bin"])
    with pytest.raises(StageFailed, match="declared out 'out/model.bin' was not produced"):
        project.run(stage, bwrap)


def test_a_sandbox_that_cannot_start_is_an_operational_error(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    broken = BubblewrapSandbox(bwrap.executable, [*bwrap.isolation, "--no-such-option"])
    stage = project.stage("never", "open('ran', 'w')")
    with pytest.raises(ToolError, match="could not set up the sandbox: bwrap: Unknown option"):
        project.run(stage, broken)


def test_a_missing_working_directory_is_a_usage_error(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    stage = project.stage("nowhere", "print('never runs')", wdir="no/such/dir")
    with pytest.raises(UsageError, match="working directory no/such/dir does not exist"):
        project.run(stage, bwrap)


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

PLAIN_DRIVER = """
import hashlib, json, sys
from pathlib import Path
from bitwright.model import DeterminismSettings, StageSpec
from bitwright.runner import detect_sandbox, run_sealed

work = Path(sys.argv[1])
root = work / "repo"
(root / "data").mkdir(parents=True)
(root / "data/in.txt").write_text("x")
(root / "pipelines").mkdir()
(root / "pipelines/plain.py").write_text(
    "import os; open('out/uid.txt', 'w').write(str(os.getuid()) + open('data/in.txt').read())"
)
stage = StageSpec("plain", "", deps=("pipelines/plain.py", "data/in.txt"), outs=("out/uid.txt",))
def digest(paths):
    return {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in paths}
sandbox = detect_sandbox()
run = run_sealed(
    stage, repo=root, argv=[sys.executable, "pipelines/plain.py"],
    settings=DeterminismSettings(), source_date_epoch=0, strict=True, sandbox=sandbox,
    digest=digest, log_dir=work / "logs", echo=False,
)
print(json.dumps({"kind": sandbox.kind.value, "rc": run.returncode,
                  "out": (root / "out/uid.txt").read_text()}))
"""


def _plain_user_python() -> str | None:
    """An interpreter a plain user can run inside bubblewrap (a venv under /root may not be)."""
    for python in (sys.executable, shutil.which("python3.11"), "/usr/bin/python3"):
        if python is None or not os.path.exists(python):
            continue
        probe = [*NOBODY, "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--", python, "-c"]
        check = "import sys; assert sys.version_info >= (3, 11)"
        done = subprocess.run([*probe, check], capture_output=True, timeout=60, check=False)
        if done.returncode == 0:
            return python
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="the suite already runs as a plain user")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing")
def test_a_plain_user_gets_the_same_seal(bwrap: BubblewrapSandbox) -> None:
    python = _plain_user_python()
    if python is None:
        pytest.skip("no Python 3.11 here that a plain user may run")
    work = Path(tempfile.mkdtemp(prefix="bitwright-plain-"))
    try:
        shutil.chown(work, 65534, 65534)
        src = Path(__file__).resolve().parents[3] / "src"
        closed = [p for p in src.parents if p.stat().st_mode & 0o001 == 0]
        if closed:
            pytest.skip(f"a plain user cannot enter {closed[0]} (no execute bit for others)")
        done = subprocess.run(
            [*NOBODY, python, "-c", PLAIN_DRIVER, str(work)],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": os.environ["PATH"], "HOME": str(work), "PYTHONPATH": str(src)},
            check=False,
        )
    finally:
        shutil.rmtree(work)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "kind": SandboxKind.BUBBLEWRAP.value,
        "rc": 0,
        "out": "65534x",
    }
