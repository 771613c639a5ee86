"""What an insider holding the owner key can do to a built project, for forgery tests.

Rewrite a stage's link and sign it again, rerun one stage under the last build's context,
and sign the provenance again over the links as they now are: a release made afterwards
passes ``verify``, so only a rebuild or a replay can tell.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.project import BITWRIGHT, sh

from bitwright.attest import Link, load_signer, write_link
from bitwright.attest.signers import KeySigner
from bitwright.builder import ProjectPaths
from bitwright.builder.context import CONTEXT_ENV, read_context
from bitwright.builder.preflight import utc_now
from bitwright.builder.provenance import write_build_provenance
from bitwright.pipeline import load_pipeline


def link_payload(link: Path) -> dict[str, Any]:
    """The in-toto link inside the DSSE envelope ``link`` (not checked)."""
    payload: dict[str, Any] = json.loads(base64.b64decode(json.loads(link.read_text())["payload"]))
    return payload


def stage_links(repo: Path) -> dict[str, Path]:
    """The stage name -> its link of the last build of ``repo``."""
    return {p.name.split(".")[0]: p for p in ProjectPaths(repo).links.glob("*.link")}


def resign_link(repo: Path, stage: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """Let ``edit`` change the link of ``stage`` in place, then sign it again with the owner key."""
    paths = ProjectPaths(repo)
    (link,) = paths.links.glob(f"{stage}.*.link")
    body = link_payload(link)
    edit(body)
    link.unlink()
    write_link(Link.model_validate(body), load_signer(paths.owner_key), paths.links)


def rerun_stage(repo: Path, stage: str, *command: str) -> None:
    """Run ``bitwright stage run STAGE -- COMMAND`` under the last build's context (a new link)."""
    context = {CONTEXT_ENV: str(ProjectPaths(repo).context_file)}
    sh(BITWRIGHT, "stage", "run", stage, "--", *command, cwd=repo, more_env=context)


def resign_provenance(repo: Path) -> None:
    """Write the provenance of the last build again over its current links, owner-signed."""
    paths = ProjectPaths(repo)
    write_build_provenance(
        paths,
        load_pipeline(repo),
        read_context(paths.context_file),
        stage_links(repo),
        finished_on=utc_now(),
        signer=KeySigner(load_signer(paths.owner_key)),
    )
