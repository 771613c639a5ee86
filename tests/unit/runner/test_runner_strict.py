"""Strict mode hides undeclared files; warn mode shows them read-only and reports the reads."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_project import Project

from bitwright.errors import UndeclaredInput, UsageError
from bitwright.model import DeterminismSettings, StageRun
from bitwright.runner import BubblewrapSandbox, judge, log_paths

READ_SECRET = """
import sys
try:
    print(open("secret.txt").read(), end="")
except OSError as exc:
    sys.exit(f"cannot read secret.txt: {exc.strerror}")
"""

PROBE_KEYS = """
import json, os
seen = {}
for path in [".bitwright/keys/owner.key", ".git/HEAD"]:
    try:
        open(path).read()
        seen[path] = "read"
    except OSError as exc:
        seen[path] = exc.strerror
seen["listing"] = sorted(os.listdir("."))
json.dump(seen, open("out/seen.json", "w"))
"""


def _judge(strict: bool, run: StageRun) -> None:
    judge(run, settings=DeterminismSettings(), strict=strict)


def test_strict_mode_hides_an_undeclared_file_and_names_it(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    stage = project.stage("peek", READ_SECRET, deps=["data/in.txt"])
    run = project.run(stage, bwrap, strict=True)
    assert run.returncode == 1
    assert "No such file or directory" in log_paths(project.logs, "peek")[1].read_text()
    assert run.undeclared_reads == ("secret.txt",)
    assert run.sandbox.undeclared_hidden
    with pytest.raises(UndeclaredInput, match="undeclared files, hidden in strict mode: secret"):
        _judge(True, run)


def test_warn_mode_lets_the_read_happen_and_reports_it(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    stage = project.stage("peek", READ_SECRET, deps=["data/in.txt"])
    run = project.run(stage, bwrap, strict=False)
    assert run.returncode == 0
    assert log_paths(project.logs, "peek")[0].read_text() == "undeclared input\n"
    assert run.undeclared_reads == ("secret.txt",)
    assert not run.sandbox.undeclared_hidden
    _judge(False, run)  # warn mode: the caller warns, the run may be attested
    with pytest.raises(UndeclaredInput, match="read undeclared files: secret.txt"):
        _judge(True, run)


def test_declared_reads_are_not_reported(project: Project, bwrap: BubblewrapSandbox) -> None:
    stage = project.stage("ok", "print(open('data/in.txt').read())", deps=["data/in.txt"])
    run = project.run(stage, bwrap, strict=True)
    assert run.returncode == 0
    assert run.undeclared_reads == ()
    _judge(True, run)


def test_an_undeclared_stage_script_is_itself_an_undeclared_input(
    project: Project, bwrap: BubblewrapSandbox
) -> None:
    stage = project.stage("ghost", "print('hi')", declare_script=False)
    run = project.run(stage, bwrap, strict=True)
    assert run.returncode != 0
    assert run.undeclared_reads == ("pipelines/ghost.py",)


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "warn"])
def test_keys_and_history_are_invisible_in_both_modes(
    project: Project, bwrap: BubblewrapSandbox, strict: bool
) -> None:
    stage = project.stage("keys", PROBE_KEYS, outs=["out/seen.json"])
    run = project.run(stage, bwrap, strict=strict)
    assert run.returncode == 0
    seen = project.read_json("out/seen.json")
    assert seen[".bitwright/keys/owner.key"] == "No such file or directory"
    assert seen[".git/HEAD"] == "No such file or directory"
    assert ".bitwright" not in seen["listing"]
    assert ".git" not in seen["listing"]
    assert run.undeclared_reads == (".bitwright/keys/owner.key", ".git/HEAD")


def test_declaring_a_hidden_path_is_refused(project: Project, bwrap: BubblewrapSandbox) -> None:
    stage = project.stage("steal", PROBE_KEYS, deps=[".bitwright/keys"], outs=["out/seen.json"])
    with pytest.raises(UsageError, match="'.bitwright/keys', which a stage may never see"):
        project.run(stage, bwrap, strict=True)
    assert not (project.root / "out/seen.json").exists()


@pytest.fixture
def outside_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home directory with credentials where the sandbox shows the host (not /tmp)."""
    try:
        home = Path(tempfile.mkdtemp(prefix="bitwright-home-", dir="/var/tmp"))
    except OSError:
        pytest.skip("/var/tmp is not writable here")
    (home / ".ssh").mkdir()
    (home / ".ssh/id_ed25519").write_text("PRIVATE")
    (home / ".netrc").write_text("machine example.org password hunter2")
    monkeypatch.setenv("HOME", str(home))
    yield home
    shutil.rmtree(home)


def test_the_callers_credentials_are_invisible(
    project: Project, bwrap: BubblewrapSandbox, outside_home: Path
) -> None:
    stage = project.stage(
        "creds",
        f"""
        import json, os
        home = {str(outside_home)!r}
        seen = {{"home": sorted(os.listdir(home)), "ssh": os.listdir(home + "/.ssh")}}
        try:
            seen["netrc"] = open(home + "/.netrc").read()
        except OSError as exc:
            seen["netrc"] = type(exc).__name__
        json.dump(seen, open("out/seen.json", "w"))
        """,
        outs=["out/seen.json"],
    )
    assert project.run(stage, bwrap).returncode == 0
    seen = project.read_json("out/seen.json")
    assert seen["home"] == [".netrc", ".ssh"]
    assert seen["ssh"] == []
    assert seen["netrc"] in ("", "PermissionError")  # /dev/null on a nodev mount
