"""One audit session: a verified release's committed run, ready to draw, fetch and replay.

:func:`bitwright.rebuild.spotcheck.open_audit` verifies the release and prepares the
workspace; the session then runs any number of audits (:meth:`AuditSession.audit`): each draws
its segments anew, fetches only the states not yet here, checks each against its commitment,
and replays only the segments not yet replayed, so many audits of one release cost one replay
of each distinct segment. The audit logic (draw, checks, verdicts, report) runs every time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bitwright.spotcheck.audit import Claim, compare_states, model_matches_final_state
from bitwright.spotcheck.fetch import fetch_objects
from bitwright.spotcheck.replay import ReplayOutcome, ReplayPlan, replay_segments
from bitwright.spotcheck.report import FRACTIONS, SegmentCheck, SegmentVerdict, SpotCheckReport
from bitwright.spotcheck.sampling import Randomness, choose_segments, detection_probability
from bitwright.trajectory import Trajectory, inclusion_proof

__all__ = ["AuditSession"]


@dataclass
class AuditSession:
    """A verified release, its committed run, and a workspace ready to replay any segment."""

    release: Path
    claim: Claim
    trajectory: Trajectory
    plan: ReplayPlan
    subjects: dict[str, str]
    resource_uri: str
    model_artifact: Path
    training_seconds: float
    remote: str | None
    atol: float
    rtol: float
    key: Path
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    missing: set[int] = field(default_factory=set)
    replayed: ReplayOutcome = field(default_factory=ReplayOutcome)
    final_checked: bool = False
    replay: Callable[[ReplayPlan, Sequence[int]], ReplayOutcome] = replay_segments

    @property
    def states_dir(self) -> Path:
        """Where fetched states land in the workspace."""
        return self.plan.states_dir

    def fetch_states(self, positions: Sequence[int]) -> None:
        """Fetch the state files at ``positions`` not yet here; remember those that did not come."""
        wanted = {
            self.trajectory.states[p].file: (
                self.trajectory.states[p].md5,
                self.trajectory.states[p].size,
            )
            for p in positions
        }
        gone = fetch_objects(self.plan.workspace, self.states_dir, wanted, self.remote)
        names = {s.file: p for p, s in enumerate(self.trajectory.states)}
        self.missing |= {names[n] for n in gone}

    def _state_problem(self, position: int) -> tuple[SegmentVerdict, str] | None:
        state = self.trajectory.states[position]
        if position in self.missing:
            return SegmentVerdict.MISSING_CHECKPOINT, f"state {state.file} is not in the DVC remote"
        data = (self.states_dir / state.file).read_bytes()
        if hashlib.sha256(data).hexdigest() != state.sha256:
            return (
                SegmentVerdict.CHECKPOINT_MISMATCH,
                f"state {state.file} does not match its commitment",
            )
        return None

    def _check_final(self) -> None:
        if self.final_checked:
            return
        self.final_checked = True
        final = len(self.trajectory.states) - 1
        problem = self._state_problem(final)
        if problem is not None:
            self.findings.append(f"the final state cannot be checked: {problem[1]}")
            return
        why = model_matches_final_state(
            self.model_artifact, self.states_dir / self.trajectory.states[final].file
        )
        if why is not None:
            self.findings.append(f"the released model is not the final committed state: {why}")

    def audit(
        self, randomness: Randomness, n: int, fraction: float | None = None
    ) -> SpotCheckReport:
        """Draw ``n`` segments with ``randomness``, check and replay them; return the report."""
        t = self.trajectory
        chosen = choose_segments(randomness, t.chain_head, len(t.segments), n)
        final = len(t.states) - 1
        self.fetch_states(sorted({final, *chosen, *(i + 1 for i in chosen)}))
        self._check_final()
        checks: dict[int, SegmentCheck] = {}
        to_replay: list[int] = []
        for i in chosen:
            problem = self._state_problem(i) or self._state_problem(i + 1)
            if problem is not None:
                checks[i] = self._check(i, *problem)
            elif i not in self.replayed.end_sha256 and i not in self.replayed.errors:
                to_replay.append(i)
        if to_replay:
            self._merge(self.replay(self.plan, to_replay))
        for i in chosen:
            if i not in checks:
                checks[i] = self._judge(i)
        return self._report(randomness, [checks[i] for i in chosen], n, fraction)

    def _merge(self, outcome: ReplayOutcome) -> None:
        r = self.replayed
        for name in ("ends", "end_sha256", "batches", "errors"):
            getattr(r, name).update(getattr(outcome, name))
        r.seconds += outcome.seconds
        r.cpu_seconds += outcome.cpu_seconds
        r.processes += outcome.processes
        if outcome.header and not r.header:
            r.header = outcome.header
            if outcome.header != self.trajectory.header.to_json():
                self.findings.append(
                    "the replayed code and data do not give the trajectory's header"
                )
        if outcome.init_sha256 is not None and r.init_sha256 is None:
            r.init_sha256 = outcome.init_sha256
            if outcome.init_sha256 != self.trajectory.states[0].sha256:
                self.findings.append("the first state is not what the code builds from the seed")

    def _judge(self, i: int) -> SegmentCheck:
        r = self.replayed
        if i in r.errors or i not in r.end_sha256:
            return self._check(i, SegmentVerdict.REPLAY_FAILED, r.errors.get(i, "not replayed"))
        seg = self.trajectory.segments[i]
        if r.batches.get(i) != seg.batches:
            return self._check(i, SegmentVerdict.FORGED, "the replay trained on other batch ids")
        end = self.trajectory.end_state(i)
        if r.end_sha256[i] == end.sha256:
            return self._check(i, SegmentVerdict.REPRODUCED, "end state bit for bit")
        replayed = r.ends.get(i)
        if replayed is None:
            return self._check(i, SegmentVerdict.REPLAY_FAILED, "no end state")
        ok, detail = compare_states(
            replayed, self.states_dir / end.file, atol=self.atol, rtol=self.rtol
        )
        if ok and (self.atol or self.rtol):
            return self._check(i, SegmentVerdict.REPRODUCED_WITHIN_TOLERANCE, detail)
        return self._check(
            i, SegmentVerdict.FORGED, f"the replay does not land on the committed end: {detail}"
        )

    def _check(self, i: int, verdict: SegmentVerdict, detail: str) -> SegmentCheck:
        seg = self.trajectory.segments[i]
        proof = tuple(inclusion_proof(self.trajectory.commitments, i))
        return SegmentCheck(i, seg.first, seg.end, verdict, detail, seg.commitment, proof)

    def _report(
        self, randomness: Randomness, checks: list[SegmentCheck], n: int, fraction: float | None
    ) -> SpotCheckReport:
        t = self.trajectory
        bad = next((c for c in checks if not c.verdict.ok), None)
        passed = not self.findings and bad is None
        if passed:
            reason = (
                f"all {len(checks)} drawn segments were replayed onto their committed end states"
            )
        elif bad is not None:
            reason = f"segment {bad.index} (steps {bad.steps}): {bad.verdict.value}: {bad.detail}"
        else:
            reason = self.findings[0]
        fractions = sorted({*FRACTIONS, *([fraction] if fraction is not None else [])})
        total = len(t.segments)
        audit_seconds = time.monotonic() - self.started
        return SpotCheckReport(
            release=str(self.release),
            passed=passed,
            reason=reason,
            stage=self.claim.stage,
            segments_total=total,
            steps_total=t.header.steps,
            chain_head=t.chain_head,
            merkle_root=t.merkle_root,
            randomness={
                "method": randomness.method,
                "commitment": randomness.commitment,
                "seed": randomness.seed,
                "segments": n,
                "chosen": [c.index for c in checks],
            },
            checks=tuple(checks),
            findings=tuple(self.findings),
            detection={str(f): detection_probability(total, f, len(checks)) for f in fractions},
            cost={
                "training_seconds": self.training_seconds,
                "replay_seconds": self.replayed.seconds,
                "replay_cpu_seconds": self.replayed.cpu_seconds,
                "replay_processes": float(self.replayed.processes),
                "audit_seconds": audit_seconds,
                "replay_fraction_of_training": _ratio(self.replayed.seconds, self.training_seconds),
                "audit_fraction_of_training": _ratio(audit_seconds, self.training_seconds),
            },
            notes=tuple(self.notes),
        )


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0
