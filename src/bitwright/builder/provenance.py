"""The build's signed SLSA provenance: final stages' outputs as subjects, links as byproducts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bitwright.attest import read_link
from bitwright.attest.provenance import (
    SANDBOX_KEY,
    build_provenance,
    provenance_envelope,
    write_provenance,
)
from bitwright.attest.signers import AttestationSigner
from bitwright.builder.context import BuildContext
from bitwright.builder.paths import ProjectPaths
from bitwright.digest import default_cache, digest_artifacts, sha256_file
from bitwright.fileio import write_text_atomic
from bitwright.model import ArtifactMap, Pipeline, Sha256
from bitwright.pins import CiIdentity, builder_id, builder_kind

__all__ = ["final_stages", "release_subjects", "write_build_provenance"]


def final_stages(pipeline: Pipeline) -> tuple[str, ...]:
    """The stages no other stage depends on: their outputs are what a build releases."""
    upstream = {up for name in pipeline.names for up in pipeline.upstream(name)}
    return tuple(name for name in pipeline.names if name not in upstream)


def release_subjects(repo: Path, pipeline: Pipeline) -> ArtifactMap:
    """The files of the final stages' outputs with their digests."""
    outs = [out for name in final_stages(pipeline) for out in pipeline.stage(name).outs]
    return digest_artifacts(repo, outs, default_cache())


def _confirmed(link: dict[str, Any]) -> dict[str, Any]:
    """What a stage's receipts confirmed (the exit receipt, else the start one) and its seal."""
    byproducts = link.get("byproducts", {})
    receipts = byproducts.get("receipts") or []
    confirmed: dict[str, Any] = {}
    if receipts:
        last = dict(receipts[-1])
        last.pop("phase", None)
        confirmed.update(last)
    if "sandbox" in byproducts:
        confirmed[SANDBOX_KEY] = byproducts["sandbox"]
    return confirmed


def write_build_provenance(
    paths: ProjectPaths,
    pipeline: Pipeline,
    context: BuildContext,
    links: Mapping[str, Path],
    *,
    finished_on: str,
    signer: AttestationSigner,
    ci: CiIdentity | None = None,
) -> Path:
    """Write ``provenance.intoto.json`` (and the sigstore bundle beside it when keyless).

    On a CI run (``ci``), the builder id is the workflow's URI and the invocation id the run's.
    """
    link_digests: dict[str, tuple[str, Sha256]] = {}
    confirmed: dict[str, dict[str, Any]] = {}
    for stage, link_path in links.items():
        link_digests[stage] = (link_path.name, sha256_file(link_path))
        payload, _ = read_link(link_path)
        confirmed[stage] = _confirmed(payload)
    pins = context.pins
    statement = build_provenance(
        subjects=release_subjects(paths.repo, pipeline),
        pins=pins,
        source_uri=pins.git.remote_url,
        targets=["dvc.yaml"],
        params=dict(pins.params_sha256),
        builder_id=builder_id(
            builder_kind(context.sandbox, ci=ci is not None, dirty=pins.git.dirty), ci
        ),
        invocation_id=ci.invocation_id if ci is not None else context.invocation_id,
        started_on=context.started_on,
        finished_on=finished_on,
        links=link_digests,
        confirmed=confirmed,
        layout_sha256=sha256_file(paths.layout),
    )
    bundle: dict[str, Any] | None = None

    def sign(payload: bytes, payload_type: str) -> dict[str, Any]:
        nonlocal bundle
        signed = signer.sign(payload, payload_type)
        bundle = signed.bundle
        return signed.envelope

    envelope = provenance_envelope(statement, sign)
    if bundle is not None:
        target = paths.attestations / "provenance.sigstore.json"
        write_text_atomic(target, json.dumps(bundle, sort_keys=True))
    return write_provenance(envelope, paths.provenance)
