"""A stage's committed training trajectory, checked and summarized for its link and provenance.

A stage that records its training with :class:`bitwright.trajectory.Recorder` leaves
``bitwright-trajectory.json`` in one of its outs. Before its link is signed, the trajectory is
read as the stage's output (bounded, a regular file inside the repository), every commitment,
the chain and the Merkle root are recomputed, and every state file and the model it names
must be products of the run with the recorded digests; otherwise the stage fails, unlinked.
The link's byproducts then carry the summary (:data:`TRAJECTORY_BYPRODUCT`): the file, its
digests, the chain head, the Merkle root, the counts and the DVC remote auditors fetch the
states from; the provenance repeats it as a byproduct of its own (:func:`provenance_byproduct`).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bitwright.errors import BitwrightError, StageFailed
from bitwright.model import ArtifactMap, StageSpec
from bitwright.pins.dvcconfig import remote_url
from bitwright.pipeline.dvcfile import output_remote
from bitwright.trajectory import TRAJECTORY_FILE, check_trajectory, read_trajectory

__all__ = ["TRAJECTORY_BYPRODUCT", "provenance_byproduct", "trajectory_summary"]

TRAJECTORY_BYPRODUCT = "trajectory"
"""The key of a link's byproducts that holds the stage's trajectory summary."""

_SUMMARY_KEYS = ("file", "sha256", "md5", "chainHead", "merkleRoot", "segments", "steps", "remote")


def trajectory_summary(repo: Path, spec: StageSpec, products: ArtifactMap) -> dict[str, Any] | None:
    """Check the stage's trajectory, if it left one, and return its summary for the link.

    Raises:
        StageFailed: more than one trajectory, or one that does not hold together or names
            states or a model the run did not produce with those digests.
    """
    found = sorted(p for p in products if posixpath.basename(p) == TRAJECTORY_FILE)
    if not found:
        return None
    if len(found) > 1:
        raise StageFailed(
            spec.name,
            f"left {len(found)} trajectories ({', '.join(found)})",
            hint="record one training run per stage",
        )
    path = found[0]
    directory = posixpath.dirname(path)
    try:
        trajectory = read_trajectory(repo / path, inside=repo)
        check_trajectory(trajectory)
    except BitwrightError as exc:
        raise StageFailed(
            spec.name,
            f"its trajectory {path} is unusable: {exc.message}",
            hint="record it with bitwright.trajectory.Recorder and call finish()",
        ) from None
    for state in trajectory.states:
        state_path = posixpath.join(directory, state.file)
        if products.get(state_path) != state.sha256:
            raise StageFailed(
                spec.name,
                f"trajectory {path} commits to {state_path}, which the "
                "run did not produce with that digest",
                hint="write the states with the Recorder, into the same out",
            )
    if trajectory.header.model not in products:
        raise StageFailed(
            spec.name,
            f"trajectory {path} names the model "
            f"{trajectory.header.model}, which is not a product of the stage",
            hint="pass the model file the stage writes as model= to the Recorder",
        )
    with (repo / path).open("rb") as fh:
        md5 = hashlib.file_digest(fh, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()
    out = next((o for o in spec.outs if path == o or path.startswith(o.rstrip("/") + "/")), "")
    return {
        "file": path,
        "sha256": str(products[path]),
        "md5": md5,
        "chainHead": trajectory.chain_head,
        "merkleRoot": trajectory.merkle_root,
        "segments": len(trajectory.segments),
        "steps": trajectory.header.steps,
        "remote": remote_url(repo, output_remote(repo, spec.name, out)),
    }


def provenance_byproduct(stage: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance's byproduct for a stage's trajectory summary (from its signed link)."""
    return {
        "name": f"{TRAJECTORY_BYPRODUCT}/{stage}",
        "digest": {"sha256": str(summary["sha256"])},
        "annotations": {"stage": stage, **{k: summary[k] for k in _SUMMARY_KEYS if k in summary}},
    }
