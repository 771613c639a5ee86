"""The GitHub workflows: the commands the README documents, actions pinned, least permissions.

``make lint`` runs actionlint and zizmor on them offline; these tests hold what the linters
do not know: that each workflow runs exactly the bitwright commands the README shows for it,
and that only the job that signs may ask for an OIDC token.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SHA_PIN = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}")


def _workflow(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    assert isinstance(data, dict)
    return data


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def workflow_commands(name: str) -> list[str]:
    """The bitwright command lines a workflow runs, as a person types them."""
    lines = [
        line.strip()
        for step in _steps(_workflow(name))
        for line in str(step.get("run", "")).splitlines()
        if re.search(r"(^|/)bitwright ", line.strip())
    ]
    return [re.sub(r"^\.venv/bin/bitwright ", "bitwright ", line) for line in lines]


def readme_commands(name: str, text: str | None = None) -> list[str]:
    """The commands of the README's code block for the workflow ``.github/workflows/NAME.yml``."""
    text = (ROOT / "README.md").read_text() if text is None else text
    section = re.search(rf"`\.github/workflows/{name}\.yml`, .*?```sh\n(.*?)```", text, re.DOTALL)
    assert section, f"the README documents no commands for {name}.yml"
    return [line.strip() for line in section.group(1).splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["release", "nightly"])
def test_each_workflow_runs_the_commands_the_readme_documents(name: str) -> None:
    assert workflow_commands(name) == readme_commands(name)
    for line in workflow_commands(name):
        shlex.split(line)  # a command a shell can read


def test_the_rule_catches_a_command_the_readme_does_not_show() -> None:
    readme = (ROOT / "README.md").read_text()
    stale = readme.replace("bitwright build --keyless\n", "bitwright build\n", 1)
    assert stale != readme
    assert workflow_commands("release") != readme_commands("release", stale)


@pytest.mark.parametrize("name", ["release", "nightly"])
def test_actions_are_pinned_by_commit_and_permissions_are_least(name: str) -> None:
    workflow = _workflow(name)
    assert workflow["permissions"] == {}, "no permission by default"
    for step in _steps(workflow):
        if "uses" in step:
            assert SHA_PIN.fullmatch(step["uses"]), f"{step['uses']} is not pinned by commit"
    for job_name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {job_name} must say what it needs"
        wants_token = job["permissions"].get("id-token") == "write"
        assert wants_token == (name == "release" and job_name == "build"), job_name
        assert "write" not in {v for k, v in job["permissions"].items() if k != "id-token"} or (
            name == "release" and job_name == "publish"
        ), f"job {job_name} writes"


def test_the_release_is_signed_keyless_and_verified_against_the_workflow_identity() -> None:
    commands = workflow_commands("release")
    verify = next(c for c in commands if c.startswith("bitwright verify"))
    assert "$GITHUB_WORKFLOW_REF" in verify
    assert "--issuer https://token.actions.githubusercontent.com" in verify
