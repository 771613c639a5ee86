"""The checks of a spot-check audit that need no replay, and the verdict on each segment.

What is checked, and against what (only signed facts decide):

- the claim: the provenance's trajectory byproduct, the stage's signed link summary and the
  link's products agree (file, digests, chain head, Merkle root, counts);
- the run: the trajectory file is the signed one, holds together (every commitment, the
  chain, the root recomputed; segments complete and in order), its states are the stage's
  products, its data is the stage's material with the signed digest, its seed is the declared
  one, and every segment's batch ids are the ones the seed and the data give
  (:class:`bitwright.trajectory.Schedule`): a trainer may not pick its batches;
- the end: the released model is the weights of the final committed state, tensor by tensor;
- each drawn segment: its start and end states are fetched and match their commitments, and
  the replay from the start lands on the committed end (bitwise, or within a tolerance).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwright.attest.statement import Statement
from bitwright.errors import VerificationFailed
from bitwright.trajectory import (
    ORDER_METHOD,
    Schedule,
    Trajectory,
    TrajectoryInvalid,
    check_trajectory,
)

__all__ = [
    "Claim",
    "check_claim",
    "check_run",
    "compare_states",
    "model_matches_final_state",
    "trajectory_claims",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_BYPRODUCT_PREFIX = "trajectory/"
_KEYS = ("file", "sha256", "md5", "chainHead", "merkleRoot", "segments", "steps", "remote")


@dataclass(frozen=True)
class Claim:
    """A stage's committed trajectory as the signed provenance states it."""

    stage: str
    file: str
    sha256: str
    md5: str
    chain_head: str
    merkle_root: str
    segments: int
    steps: int
    remote: str

    def summary(self) -> dict[str, Any]:
        """The claim in the link summary's form."""
        return {
            "file": self.file,
            "sha256": self.sha256,
            "md5": self.md5,
            "chainHead": self.chain_head,
            "merkleRoot": self.merkle_root,
            "segments": self.segments,
            "steps": self.steps,
            "remote": self.remote,
        }


def trajectory_claims(statement: Statement) -> tuple[Claim, ...]:
    """The trajectory byproducts of a (trusted) provenance.

    Raises:
        VerificationFailed: a trajectory byproduct is malformed.
    """
    claims: list[Claim] = []
    for item in statement.predicate.run_details.byproducts or ():
        if not (item.name or "").startswith(_BYPRODUCT_PREFIX):
            continue
        notes = item.annotations or {}
        try:
            claim = Claim(
                stage=_str(notes.get("stage")),
                file=_str(notes["file"]),
                sha256=_hex(notes["sha256"]),
                md5=_str(notes["md5"]),
                chain_head=_hex(notes["chainHead"]),
                merkle_root=_hex(notes["merkleRoot"]),
                segments=_count(notes["segments"]),
                steps=_count(notes["steps"]),
                remote=str(notes.get("remote") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationFailed(
                f"provenance byproduct {item.name}: malformed trajectory summary ({exc})",
                hint="the provenance was not written by this bitwright; fetch the release again",
            ) from None
        if (item.digest or {}).get(
            "sha256"
        ) != claim.sha256 or item.name != f"{_BYPRODUCT_PREFIX}{claim.stage}":
            raise VerificationFailed(
                f"provenance byproduct {item.name}: its digest or name contradicts its summary",
                hint="the provenance is damaged; fetch the release again",
            )
        claims.append(claim)
    return tuple(claims)


def check_claim(claim: Claim, link: Mapping[str, Any]) -> list[str]:
    """What contradicts the claim in the stage's signed link (empty when nothing does)."""
    problems: list[str] = []
    summary = (link.get("byproducts") or {}).get("trajectory")
    if not isinstance(summary, dict):
        return [f"the signed link of stage {claim.stage!r} records no trajectory"]
    expected = claim.summary()
    for key in _KEYS:
        if summary.get(key) != expected[key]:
            problems.append(f"the link of stage {claim.stage!r} and the provenance differ on {key}")
    product = (link.get("products") or {}).get(claim.file) or {}
    if product.get("sha256") != claim.sha256:
        problems.append(
            f"{claim.file} is not a product of stage {claim.stage!r} with the signed digest"
        )
    return problems


def check_run(
    trajectory: Trajectory, claim: Claim, link: Mapping[str, Any], declared_seed: int
) -> list[str]:
    """Every check of the committed run that needs no state file and no replay.

    Returns:
        One line per problem (empty when the run's commitments hold): each names what
        failed and, for a segment, its index and steps.
    """
    try:
        check_trajectory(trajectory)
    except TrajectoryInvalid as exc:
        return [exc.message]
    problems: list[str] = []
    h = trajectory.header
    signed = (trajectory.chain_head, trajectory.merkle_root, len(trajectory.segments), h.steps)
    if signed != (claim.chain_head, claim.merkle_root, claim.segments, claim.steps):
        problems.append("the trajectory's chain head, root or counts are not the signed ones")
    products = {p: (v or {}).get("sha256") for p, v in (link.get("products") or {}).items()}
    directory = str(Path(claim.file).parent.as_posix())
    for position, state in enumerate(trajectory.states):
        path = f"{directory}/{state.file}" if directory != "." else state.file
        if products.get(path) != state.sha256:
            problems.append(f"state {position} ({path}) is not a signed product of the stage")
            break
    materials = {p: (v or {}).get("sha256") for p, v in (link.get("materials") or {}).items()}
    if materials.get(h.data_path) != h.data_sha256:
        problems.append(
            f"the trajectory's data {h.data_path} is not a material of stage {claim.stage!r} "
            "with the signed digest (the data order must come from the pinned data)"
        )
    if h.seed != declared_seed:
        problems.append(f"the trajectory's seed {h.seed} is not the declared seed {declared_seed}")
    if h.model not in products:
        problems.append(f"the trajectory's model {h.model} is not a product of the stage")
    if h.order != ORDER_METHOD:
        problems.append(f"the data order {h.order!r} is not {ORDER_METHOD}")
        return problems
    problems.extend(_check_batches(trajectory))
    return problems


def _check_batches(trajectory: Trajectory) -> list[str]:
    h = trajectory.header
    schedule = Schedule(h.seed, h.data_sha256, h.items, h.batch_size)
    for seg in trajectory.segments:
        if schedule.batches_sha256(seg.first, seg.end) != seg.batches:
            return [
                f"segment {seg.index} (steps {seg.first}-{seg.end - 1}) trains on batches that "
                "the seed and the pinned data do not give"
            ]
    return []


def compare_states(
    replayed: Path, committed: Path, *, atol: float, rtol: float
) -> tuple[bool, str]:
    """Compare two state files tensor by tensor: (within tolerance, what differs most)."""
    import numpy
    from safetensors.numpy import load_file

    a, b = load_file(str(replayed)), load_file(str(committed))
    if set(a) != set(b):
        return False, f"tensors differ: {sorted(set(a) ^ set(b))[:3]}"
    worst, where, ok = 0.0, "", True
    for name in sorted(a):
        x, y = a[name], b[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            return False, f"{name}: shape or dtype differs"
        if x.dtype.kind != "f":
            if not numpy.array_equal(x, y):
                return False, f"{name} differs"
            continue
        diff = float(numpy.max(numpy.abs(x.astype(numpy.float64) - y), initial=0.0))
        if diff > worst:
            worst, where = diff, name
        if not numpy.allclose(x, y, atol=atol, rtol=rtol, equal_nan=False):
            ok = False
    return ok, f"max |difference| {worst:.3g} in {where}" if where else "no float differs"


def model_matches_final_state(model: Path, final_state: Path) -> str | None:
    """``None`` when the model's tensors are the final state's ``model.*`` ones, else why not."""
    from safetensors.numpy import load_file

    released = load_file(str(model))
    state = {
        k.removeprefix("model."): v
        for k, v in load_file(str(final_state)).items()
        if k.startswith("model.")
    }
    if set(released) != set(state):
        return (
            f"the released model has tensors {sorted(released)[:4]}, "
            f"the final state {sorted(state)[:4]}"
        )
    for name in sorted(released):
        x, y = released[name], state[name]
        if x.shape != y.shape or x.dtype != y.dtype or x.tobytes() != y.tobytes():
            return f"tensor {name} of the released model is not that of the final committed state"
    return None


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _hex(value: Any) -> str:
    if not isinstance(value, str) or _HEX64.fullmatch(value) is None:
        raise ValueError("expected a sha256")
    return value


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("expected a positive integer")
    return value
