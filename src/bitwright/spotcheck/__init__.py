"""Spot-check audits of committed training runs: draw a few segments, replay them, judge.

- :mod:`.sampling`: the draw from randomness the trainer could not know, and its odds.
- :mod:`.audit`: the signed claim, the run's own checks, state comparison, the final model.
- :mod:`.fetch`: single states from the DVC remote by md5.
- :mod:`.replay`: sealed replays of the trainer's own code, in jobs or on Ray.
- :mod:`.report`: per-segment verdicts, findings, probability and cost.
- :mod:`.session`: one verified release's run, audited as often as wanted.

The release-level flow (verify, checkout, VSA) is :mod:`bitwright.rebuild.spotcheck`.
"""

from bitwright.spotcheck.audit import (
    Claim,
    check_claim,
    check_run,
    compare_states,
    model_matches_final_state,
    trajectory_claims,
)
from bitwright.spotcheck.fetch import fetch_objects, usable_remote
from bitwright.spotcheck.replay import ReplayOutcome, ReplayPlan, replay_segments
from bitwright.spotcheck.report import (
    FRACTIONS,
    SegmentCheck,
    SegmentVerdict,
    SpotCheckReport,
    report_markdown,
)
from bitwright.spotcheck.sampling import Randomness, choose_segments, detection_probability
from bitwright.spotcheck.session import AuditSession

__all__ = [
    "FRACTIONS",
    "AuditSession",
    "Claim",
    "Randomness",
    "ReplayOutcome",
    "ReplayPlan",
    "SegmentCheck",
    "SegmentVerdict",
    "SpotCheckReport",
    "check_claim",
    "check_run",
    "choose_segments",
    "compare_states",
    "detection_probability",
    "fetch_objects",
    "model_matches_final_state",
    "replay_segments",
    "report_markdown",
    "trajectory_claims",
    "usable_remote",
]
