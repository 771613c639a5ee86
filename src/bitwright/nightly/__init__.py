"""Nightly reproducibility: rebuild under variations, keep the history, bisect what broke bits.

* :func:`run_nightly` (:mod:`.run`) -- the control rebuild and one rebuild per variation the
  runner can apply here (:mod:`bitwright.runner.variations`), each compared with the release
  by the existing comparison; JUnit XML and Markdown (:mod:`.reports`), an HTML report
  (:mod:`.visual`), and one record appended to the history (:mod:`.history`), read back to
  say since when a stage has not reproduced.
* :func:`bisect_changes` and :func:`bisect_commits` (:mod:`.bisect`) -- the minimal set of
  changes (variables, knobs, umask, host name, build path) that still moves a stage's bits,
  and the first commit of the history at which a stage stopped reproducing.
"""

from bitwright.nightly.bisect import BisectResult, bisect_changes, bisect_commits
from bitwright.nightly.history import Since, append_night, first_different, read_history
from bitwright.nightly.night import Night, Result, VariationResult
from bitwright.nightly.run import NightlyOutcome, run_nightly

__all__ = [
    "BisectResult",
    "Night",
    "NightlyOutcome",
    "Result",
    "Since",
    "VariationResult",
    "append_night",
    "bisect_changes",
    "bisect_commits",
    "first_different",
    "read_history",
    "run_nightly",
]
