"""The ci builder: claimed only for a GitHub-hosted workflow run of the commit being built."""

from __future__ import annotations

import pytest

from bitwright.model import SandboxKind
from bitwright.pins import builder_id, builder_kind, ci_identity

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RUN = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "RUNNER_ENVIRONMENT": "github-hosted",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/models",
    "GITHUB_WORKFLOW_REF": "acme/models/.github/workflows/release.yml@refs/tags/v1.2.0",
    "GITHUB_RUN_ID": "987654321",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_SHA": COMMIT,
}


def test_a_hosted_run_names_its_workflow_and_run() -> None:
    identity = ci_identity(RUN, commit=COMMIT)
    assert identity is not None
    assert identity.builder_id == (
        "https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1.2.0"
    )
    assert identity.invocation_id == (
        "https://github.com/acme/models/actions/runs/987654321/attempts/2"
    )
    kind = builder_kind(SandboxKind.BUBBLEWRAP, ci=True)
    assert builder_id(kind, identity) == identity.builder_id
    assert builder_id("ci") == "https://bitwright.dev/builders/ci/v1"
    assert (
        builder_id("sandboxed-host", identity) == "https://bitwright.dev/builders/sandboxed-host/v1"
    )


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"GITHUB_ACTIONS": ""}, "CI=true alone proves nothing"),
        ({"RUNNER_ENVIRONMENT": "self-hosted"}, "a self-hosted runner is nobody's fresh machine"),
        ({"GITHUB_SHA": "f" * 40}, "the event names another commit"),
        (
            {"GITHUB_WORKFLOW_REF": "evil/fork/.github/workflows/r.yml@refs/heads/main"},
            "other repo",
        ),
        ({"GITHUB_WORKFLOW_REF": "acme/models/.github/workflows/r.yml@refs/pull/1/merge"}, "a PR"),
        ({"GITHUB_RUN_ID": "12; rm -rf /"}, "a run id that is not a number"),
        ({"GITHUB_SERVER_URL": "http://github.com"}, "a server without TLS"),
        ({"GITHUB_REPOSITORY": ""}, "no repository"),
        ({"GITHUB_RUN_ATTEMPT": ""}, "no attempt"),
    ],
)
def test_anything_less_claims_no_ci_builder(changes: dict[str, str], why: str) -> None:
    assert ci_identity({**RUN, **changes}, commit=COMMIT) is None, why
