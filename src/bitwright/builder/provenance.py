"""The build's signed SLSA provenance: the released files as subjects, links as byproducts.

Which files a build releases (:func:`select_release`): what the project declares, that is
the ``artifacts:`` of ``dvc.yaml`` (models, data, anything), every metrics and plots output of
its stages, and the project config's ``release.paths``, less ``release.exclude``, across all
stages; a project that declares neither artifacts nor release paths releases the outputs of
its final stages. The declared paths are recorded in the provenance
(``externalParameters.release``), so a verifier knows the subjects are all the products they
hold. The sandbox allowances each link records go to ``internalParameters.allowances``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwright.attest import read_link
from bitwright.attest.provenance import (
    SANDBOX_KEY,
    ThirdParty,
    build_provenance,
    provenance_envelope,
    write_provenance,
)
from bitwright.attest.signers import AttestationSigner
from bitwright.builder.context import BuildContext
from bitwright.builder.paths import ProjectPaths
from bitwright.builder.trajectory import TRAJECTORY_BYPRODUCT, provenance_byproduct
from bitwright.digest import digest_artifacts, memory_cache, sha256_file
from bitwright.errors import UsageError
from bitwright.fileio import write_text_atomic
from bitwright.model import (
    DETERMINISM_VARIABLES,
    ArtifactMap,
    Pipeline,
    SandboxAllowances,
    Sha256,
    StageReceipts,
)
from bitwright.pins import CiIdentity, builder_id, builder_kind
from bitwright.project import CONFIG_PATH, ReleaseConfig, load_project_config
from bitwright.runner.environment import PROCESS_VARIABLES
from bitwright.runner.view import is_under

__all__ = [
    "ReleaseSelection",
    "confirmed_settings",
    "final_stages",
    "release_subjects",
    "select_release",
    "write_build_provenance",
]

_CONFIRMED_VARIABLES = frozenset((*DETERMINISM_VARIABLES, *PROCESS_VARIABLES))


def final_stages(pipeline: Pipeline) -> tuple[str, ...]:
    """The stages no other stage depends on: their outputs are released by default."""
    upstream = {up for name in pipeline.names for up in pipeline.upstream(name)}
    return tuple(name for name in pipeline.names if name not in upstream)


@dataclass(frozen=True)
class ReleaseSelection:
    """The repository paths a build releases.

    Attributes:
        paths: stage outputs (or directories or files inside them), each once, in order.
        exclude: paths whose files are left out.
        declared: whether the project declared them (``artifacts:``, ``release.paths``);
            False for the default, the final stages' outputs.
    """

    paths: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    declared: bool = False

    def as_parameter(self) -> dict[str, list[str]] | None:
        """``externalParameters.release`` of the provenance; None for the default."""
        if not self.declared:
            return None
        return {"paths": list(self.paths), "exclude": list(self.exclude)}


def select_release(pipeline: Pipeline, config: ReleaseConfig) -> ReleaseSelection:
    """Choose what a build of ``pipeline`` releases (see the module docstring)."""
    declared = [a.path for a in pipeline.artifacts] + list(config.paths)
    if not declared:
        outs = [out for name in final_stages(pipeline) for out in pipeline.stage(name).outs]
        return ReleaseSelection(tuple(dict.fromkeys(outs)), config.exclude)
    if config.metrics:
        declared += [m for spec in pipeline.stages for m in spec.metrics]
        declared += [m for m in pipeline.metrics if pipeline.producer_of(m) is not None]
    if config.plots:
        declared += [p for spec in pipeline.stages for p in spec.plots]
    return ReleaseSelection(tuple(dict.fromkeys(declared)), config.exclude, declared=True)


def release_subjects(
    repo: Path, pipeline: Pipeline, selection: ReleaseSelection | None = None
) -> ArtifactMap:
    """The released files with their digests (``selection`` defaults to the project's).

    Raises:
        UsageError: a released file is no stage's output (a data snapshot or a source file
            has no link that produced it), or nothing is left to release.
    """
    if selection is None:
        selection = select_release(pipeline, load_project_config(repo).release)
    files = digest_artifacts(repo, selection.paths, memory_cache())
    chosen = {
        path: digest
        for path, digest in files.items()
        if not any(is_under(path, gone) for gone in selection.exclude)
    }
    for path in sorted(chosen):
        if pipeline.producer_of(path) is None:
            raise UsageError(
                f"{path} is released but no stage of dvc.yaml produces it",
                hint=f"release stage outputs only: fix artifacts: in dvc.yaml or release.paths "
                f"in {CONFIG_PATH}",
            )
    if not chosen:
        raise UsageError(
            "nothing to release: the chosen paths hold no file",
            hint=f"check artifacts: in dvc.yaml and [release] in {CONFIG_PATH}",
        )
    return chosen


def _allowances(link: dict[str, Any]) -> SandboxAllowances:
    recorded = link.get("byproducts", {}).get("allowances")
    return SandboxAllowances() if recorded is None else SandboxAllowances.from_json(recorded)


def _confirmed(link: dict[str, Any]) -> dict[str, Any]:
    """What a stage's receipts confirmed, and its seal (see :func:`confirmed_settings`)."""
    byproducts = link.get("byproducts", {})
    confirmed = confirmed_settings(StageReceipts.from_json(byproducts.get("receipts") or {}))
    if "sandbox" in byproducts:
        confirmed[SANDBOX_KEY] = byproducts["sandbox"]
    return confirmed


def confirmed_settings(receipts: StageReceipts) -> dict[str, Any]:
    """The settings a stage's receipts confirmed, as the provenance records them.

    The process-level settings the runner receipt saw (umask and the determinism
    variables, the CPU kernel path among them), and, where the stage loaded torch, what its
    main torch process ran with (the CPU kernel path torch dispatched to, its flags, seed,
    threads and devices).
    """
    confirmed: dict[str, Any] = {}
    if receipts.runner is not None:
        env = receipts.runner.env
        confirmed["umask"] = receipts.runner.umask
        confirmed["environment"] = {k: env[k] for k in sorted(_CONFIRMED_VARIABLES) if k in env}
    torches = [r.torch for r in receipts.python if r.torch is not None]
    if torches:
        confirmed["torch"] = torches[0].to_json()
    generators = {k: v for r in receipts.stagekit for k, v in r.generators.items()}
    if generators:
        confirmed["generators"] = dict(sorted(generators.items()))
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
    third_party: Sequence[ThirdParty] = (),
) -> Path:
    """Write ``provenance.intoto.json`` (and the sigstore bundle beside it when keyless).

    On a CI run (``ci``), the builder id is the workflow's URI and the invocation id the run's.
    ``third_party`` are the TOFU-pinned inputs the stages read (resolved dependencies).
    """
    link_digests: dict[str, tuple[str, Sha256]] = {}
    confirmed: dict[str, dict[str, Any]] = {}
    allowances: dict[str, SandboxAllowances] = {}
    trajectories: list[dict[str, Any]] = []
    for stage, link_path in links.items():
        link_digests[stage] = (link_path.name, sha256_file(link_path))
        payload, _ = read_link(link_path)
        confirmed[stage] = _confirmed(payload)
        allowances[stage] = _allowances(payload)
        summary = payload.get("byproducts", {}).get(TRAJECTORY_BYPRODUCT)
        if isinstance(summary, dict):
            trajectories.append(provenance_byproduct(stage, summary))
    pins = context.pins
    selection = select_release(pipeline, load_project_config(paths.repo).release)
    statement = build_provenance(
        subjects=release_subjects(paths.repo, pipeline, selection),
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
        third_party=third_party,
        release=selection.as_parameter(),
        allowances=allowances,
        extra_byproducts=trajectories,
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
