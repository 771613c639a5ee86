"""Who runs a build on CI: the workflow's real identity, read from the runner's variables.

A build claims the ``ci`` builder only when GitHub Actions says which workflow at which ref
runs it, in which run, on a GitHub-hosted (fresh, ephemeral) runner, for the commit being
built; ``CI=true`` alone proves nothing, any shell can set it. The builder id is then the
workflow's own URI, ``https://github.com/OWNER/REPO/.github/workflows/FILE@REF``: the identity
Fulcio writes into the certificate of a keyless signature from that workflow, so a verifier
can check that whoever signed the provenance is the builder it names. The invocation id is
the run's URL, attempt included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CiIdentity", "ci_identity"]

_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")
_WORKFLOW_REF = re.compile(
    r"(?P<repo>[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+)"
    r"/\.github/workflows/[A-Za-z0-9_.-]+\.ya?ml@refs/(heads|tags)/[A-Za-z0-9_./-]+"
)
_SERVER = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]+)?")
_NUMBER = re.compile(r"[0-9]{1,20}")
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class CiIdentity:
    """A GitHub Actions run, as its runner's variables describe it.

    Attributes:
        server_url: ``GITHUB_SERVER_URL`` (``https://github.com``).
        repository: ``GITHUB_REPOSITORY`` (``owner/name``).
        workflow_ref: ``GITHUB_WORKFLOW_REF`` (``owner/name/.github/workflows/F.yml@REF``).
        run_id: ``GITHUB_RUN_ID``.
        run_attempt: ``GITHUB_RUN_ATTEMPT``.
        sha: ``GITHUB_SHA``, the commit the event names.
    """

    server_url: str
    repository: str
    workflow_ref: str
    run_id: str
    run_attempt: str
    sha: str

    @property
    def builder_id(self) -> str:
        """The workflow's URI: ``runDetails.builder.id`` of a build it runs."""
        return f"{self.server_url}/{self.workflow_ref}"

    @property
    def invocation_id(self) -> str:
        """The run's URL, attempt included: ``runDetails.metadata.invocationId``."""
        return (
            f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"
            f"/attempts/{self.run_attempt}"
        )


def ci_identity(env: Mapping[str, str], *, commit: str) -> CiIdentity | None:
    """Return the GitHub Actions run building ``commit``, or None when this is not one.

    None unless every variable is present and well formed, the runner is GitHub-hosted
    (``RUNNER_ENVIRONMENT=github-hosted``: a self-hosted runner is nobody's fresh machine),
    the workflow belongs to the repository, and ``GITHUB_SHA`` is ``commit``.
    """
    if env.get("GITHUB_ACTIONS") != "true" or env.get("RUNNER_ENVIRONMENT") != "github-hosted":
        return None
    server = env.get("GITHUB_SERVER_URL", "")
    repository = env.get("GITHUB_REPOSITORY", "")
    workflow_ref = env.get("GITHUB_WORKFLOW_REF", "")
    run_id, attempt = env.get("GITHUB_RUN_ID", ""), env.get("GITHUB_RUN_ATTEMPT", "")
    sha = env.get("GITHUB_SHA", "")
    workflow = _WORKFLOW_REF.fullmatch(workflow_ref)
    if not (
        _SERVER.fullmatch(server)
        and _REPOSITORY.fullmatch(repository)
        and workflow is not None
        and workflow.group("repo") == repository
        and _NUMBER.fullmatch(run_id)
        and _NUMBER.fullmatch(attempt)
        and _SHA.fullmatch(sha)
        and sha == commit
    ):
        return None
    return CiIdentity(server, repository, workflow_ref, run_id, attempt, sha)
