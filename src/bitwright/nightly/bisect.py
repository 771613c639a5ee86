"""``bitwright bisect``: what breaks a stage's bits, a change or a commit.

Changes: given a variation under which a stage's products differ from the release, its atomic
changes (each variable, knob, umask, host name, build path) are tried one at a time, and when
none explains the difference alone, the set is halved (Zeller's ddmin) down to a minimal set
that still does. Each trial is a real rebuild compared with the release; a trial whose rebuild
fails (rather than differs) counts as not reproducing the difference.

Commits: given a good and a bad commit (read from the history: the last night the stage
reproduced and the first it did not), the commits between them on the first-parent line are
searched by halving, each one built twice (plainly and under the variation that broke it) and
the stage's products compared: the first commit at which they differ is where the stage
stopped reproducing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitwright.attest import read_link
from bitwright.attest.keys import generate_keypair
from bitwright.builder import ProjectPaths, build
from bitwright.errors import BitwrightError, CheckFailed, OperationalError, ToolError, UsageError
from bitwright.model.variation import Change, Variation
from bitwright.nightly.history import first_different
from bitwright.nightly.night import MovedTensor, Night, Result, stage_results
from bitwright.nightly.run import Rebuilder
from bitwright.rebuild.workspace import checkout_source, fresh_workspace

__all__ = ["BisectResult", "Trial", "bisect_changes", "bisect_commits", "commits_between"]

Notify = Callable[[str], None]


@dataclass(frozen=True)
class Trial:
    """One rebuild of the search: what was tried and how the stage came out."""

    tried: tuple[str, ...]
    result: str


@dataclass(frozen=True)
class BisectResult:
    """What a bisect found.

    Attributes:
        found: whether a culprit was found.
        stage: the stage whose bits moved.
        culprits: the minimal changes (as people read them), or the first bad commit.
        variations: the variations the culprit changes belong to.
        moved: the tensors that moved under the culprits.
        reason: one line for a person.
        trials: every rebuild the search made.
    """

    found: bool
    stage: str
    culprits: tuple[str, ...]
    reason: str
    variations: tuple[str, ...] = ()
    moved: tuple[MovedTensor, ...] = ()
    trials: tuple[Trial, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """The result as JSON data (``bitwright bisect --json``)."""
        return {
            "found": self.found,
            "stage": self.stage,
            "culprits": list(self.culprits),
            "variations": list(self.variations),
            "reason": self.reason,
            "moved": [m.describe() for m in self.moved],
            "trials": [{"tried": list(t.tried), "result": t.result} for t in self.trials],
        }


class _Search:
    """Runs and remembers trials of change sets against one stage."""

    def __init__(self, rebuilder: Rebuilder, work: Path, stage: str | None, notify: Notify):
        self.rebuilder = rebuilder
        self.work = work
        self.stage = stage
        self.notify = notify
        self.trials: list[Trial] = []
        self.moved: dict[frozenset[Change], tuple[MovedTensor, ...]] = {}
        self._seen: dict[frozenset[Change], Result] = {}
        self._partial = stage is not None

    def differs(self, changes: Sequence[Change]) -> bool:
        """Whether the stage's products differ from the release under ``changes``."""
        key = frozenset(changes)
        if key not in self._seen:
            self._seen[key] = self._try(changes)
        return self._seen[key] is Result.DIFFERENT

    def _try(self, changes: Sequence[Change]) -> Result:
        number = len(self.trials) + 1
        variation = Variation.combine(f"trial-{number}", changes)
        self.notify(f"trial {number}: {variation.describe()}")
        try:
            try:
                report, _, _ = self.rebuilder.rebuild(
                    self.work,
                    variation.name,
                    variation,
                    stage=self.stage if self._partial else None,
                )
            except OperationalError as exc:
                if not self._partial:
                    raise
                # the stage's materials cannot be had alone: rebuild the whole pipeline
                self.notify(f"stage {self.stage} cannot be rebuilt alone ({exc.message})")
                self._partial = False
                report, _, _ = self.rebuilder.rebuild(self.work, variation.name, variation)
        except BitwrightError as exc:
            self.trials.append(Trial(tuple(c.describe() for c in changes), f"FAILED: {exc}"))
            return Result.FAILED
        names = [self.stage] if self.stage else [s.stage for s in report.stages]
        results = stage_results(report, names)
        if self.stage is None:  # the first stage that differs becomes the one searched
            differing = [r for r in results if r.result is Result.DIFFERENT]
            self.stage = differing[0].stage if differing else None
            results = tuple(differing[:1]) or results
        result = Result.worst(r.result for r in results) if results else Result.FAILED
        if result is Result.DIFFERENT:
            self.moved[frozenset(changes)] = tuple(m for r in results for m in r.moved)
        self.trials.append(Trial(tuple(c.describe() for c in changes), result.value))
        self.notify(f"trial {number}: stage {self.stage or '?'} {result.value}")
        return result


def _ddmin(changes: list[Change], differs: Callable[[Sequence[Change]], bool]) -> list[Change]:
    """A minimal subset of ``changes`` (which differs) that still differs: toggle, then halve."""
    for change in changes:  # toggle: one change alone
        if len(changes) > 1 and differs([change]):
            return [change]
    granularity = 2
    while len(changes) >= 2:
        size = len(changes) / granularity
        chunks = [changes[round(i * size) : round((i + 1) * size)] for i in range(granularity)]
        chunks = [c for c in chunks if c]
        for chunk in chunks:
            if differs(chunk):
                changes, granularity = chunk, 2
                break
        else:
            for chunk in chunks if granularity > 2 else ():
                rest = [c for c in changes if c not in chunk]
                if differs(rest):
                    changes, granularity = rest, max(granularity - 1, 2)
                    break
            else:
                if granularity >= len(changes):
                    break
                granularity = min(len(changes), granularity * 2)
    return changes


def bisect_changes(
    rebuilder: Rebuilder,
    variations: Sequence[Variation],
    *,
    work: Path,
    stage: str | None = None,
    notify: Notify = lambda _: None,
) -> BisectResult:
    """Find the minimal set of changes of ``variations`` that moves ``stage``'s bits.

    Args:
        rebuilder: the release to rebuild, whom to trust, where from.
        variations: the failing variation(s); their changes are searched together.
        work: where the trials' workspaces go.
        stage: the stage to watch; None takes the first stage that differs under all the
            changes. A named stage is rebuilt alone from its recorded materials.
        notify: receives one line per trial.

    Raises:
        UsageError: no change to search.
        OperationalError: a trial's rebuild could not run at all.
    """
    combined = Variation.combine("+".join(v.name for v in variations), variations)
    changes = list(combined.changes)
    if not changes:
        raise UsageError("nothing to bisect: the variations change nothing", hint="name one")
    shutil.rmtree(work, ignore_errors=True)
    search = _Search(rebuilder, work, stage, notify)
    if not search.differs(changes):
        return BisectResult(
            False,
            search.stage or stage or "",
            (),
            f"the stage reproduces under {combined.describe()}: nothing to narrow down",
            trials=tuple(search.trials),
        )
    minimal = _ddmin(changes, search.differs)
    owners = tuple(dict.fromkeys(v.name for v in variations for c in minimal if c in v.changes))
    described = tuple(c.describe() for c in minimal)
    moved = search.moved.get(frozenset(minimal), ())
    stage_name = search.stage or ""
    return BisectResult(
        True,
        stage_name,
        described,
        f"stage {stage_name} differs from the release under {', '.join(described)} "
        f"(variation {', '.join(owners)}) and reproduces without it",
        variations=owners,
        moved=moved,
        trials=tuple(search.trials),
    )


def commits_between(repo: Path, good: str, bad: str) -> tuple[str, ...]:
    """The first-parent commits after ``good`` up to ``bad`` (inclusive), oldest first.

    Raises:
        OperationalError: git cannot list them (unknown commits, ``good`` not an ancestor).
    """
    try:
        done = subprocess.run(
            ["git", "rev-list", "--first-parent", "--reverse", f"{good}..{bad}"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise ToolError(f"cannot run git: {exc}", hint="install git") from None
    if done.returncode != 0:
        raise OperationalError(
            f"cannot list the commits from {good[:12]} to {bad[:12]} in {repo}: "
            f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}",
            hint="pass --repo with a clone that has both commits",
        )
    return tuple(done.stdout.split())


def good_and_bad(nights: Sequence[Night], stage: str) -> tuple[str, str, tuple[str, ...]]:
    """From the history: the last good commit, the first bad one, the failing variations.

    The variations are those the stage failed under on that bad night.

    Raises:
        UsageError: the stage reproduces on the last night, or never did.
    """
    since = {s.stage: s for s in first_different(nights)}
    if stage not in since:
        raise UsageError(
            f"stage {stage!r} reproduced on the last night of the history",
            hint="bisect a stage that does not reproduce now",
        )
    first = len(nights) - since[stage].nights
    if first == 0:
        raise UsageError(
            f"stage {stage!r} never reproduced in the history: no good commit to start from",
            hint="pass --good COMMIT",
        )
    bad_night = nights[first]
    failing = tuple(
        v.name
        for v in bad_night.variations
        if (s := v.stage(stage)) is not None and not s.result.reproduced
    )
    return nights[first - 1].commit, bad_night.commit, failing


@dataclass(frozen=True)
class CommitBuilder:
    """Builds one commit of a repository twice and compares a stage's products.

    Args:
        repo: the repository (a clone with the commits).
        work: where the workspaces go.
        variation: what the second build varies (None: two plain builds).
        notify: receives one line per step.
    """

    repo: Path
    work: Path
    variation: Variation | None
    notify: Notify = lambda _: None

    def products(
        self, commit: str, name: str, variation: Variation | None
    ) -> dict[str, dict[str, str]]:
        """Build ``commit`` in ``work/name`` and return each stage's product digests."""
        ws = fresh_workspace(self.work / name)
        try:
            checkout_source(str(self.repo.resolve()), commit, ws)
            local = self.repo / ".dvc" / "config.local"
            if local.is_file():
                shutil.copyfile(local, ws / ".dvc" / "config.local")
            pair = generate_keypair(ProjectPaths(ws).keys, name="bisect")
            result = build(ws, key_path=pair.private_path, variation=variation)
            found: dict[str, dict[str, str]] = {}
            for stage, link in result.links.items():
                payload, _ = read_link(link)
                products = payload.get("products", {})
                found[stage] = {p: str(h["sha256"]) for p, h in products.items()}
            return found
        finally:
            shutil.rmtree(ws, ignore_errors=True)

    def reproduces(self, commit: str, stage: str) -> bool | None:
        """Whether ``stage`` gives the same products twice at ``commit`` (None: cannot tell)."""
        self.notify(f"building {commit[:12]} twice")
        try:
            plain = self.products(commit, f"{commit[:12]}-plain", None)
            varied = self.products(commit, f"{commit[:12]}-varied", self.variation)
        except CheckFailed as exc:
            self.notify(f"{commit[:12]}: the build failed ({exc.message}); skipped")
            return None
        if stage not in plain or stage not in varied:
            return None
        return plain[stage] == varied[stage]


def bisect_commits(builder: CommitBuilder, commits: Sequence[str], stage: str) -> BisectResult:
    """Find the first of ``commits`` at which ``stage`` stops reproducing, by halving.

    ``commits`` are oldest first, the last one known bad; a commit that cannot be built is
    skipped.
    """
    trials: list[Trial] = []
    low, high = 0, len(commits) - 1  # commits[high] is bad; everything before low is good
    while low < high:
        mid = (low + high) // 2
        probe = mid
        outcome = builder.reproduces(commits[probe], stage)
        while outcome is None and probe + 1 < high:
            trials.append(Trial((commits[probe],), "SKIPPED"))
            probe += 1
            outcome = builder.reproduces(commits[probe], stage)
        if outcome is None:
            trials.append(Trial((commits[probe],), "SKIPPED"))
            break
        trials.append(Trial((commits[probe],), "REPRODUCED" if outcome else "DIFFERENT"))
        if outcome:
            low = probe + 1
        else:
            high = probe
    if not commits:
        return BisectResult(False, stage, (), "no commit between the good and the bad one")
    first = commits[high]
    what = builder.variation.describe() if builder.variation else "two plain builds"
    return BisectResult(
        True,
        stage,
        (first,),
        f"stage {stage} first stopped reproducing at commit {first[:12]} ({what})",
        variations=(builder.variation.name,) if builder.variation else (),
        trials=tuple(trials),
    )
