"""``bitwright nightly``: rebuild a release under every variation and keep the history.

The flow::

    release of HEAD           when no release is given: a clean clone built and released
                              with a fresh key (work/head, RELEASE = OUT/release)
    control rebuild           ``rebuild --compare`` without variation (work/control)
    plan                      the variations this machine can apply, the others with why
    one rebuild per variation in its own workspace (a deeper path; disorderfs for file order)
    history                   the night appended to the JSON lines, "first different" read
    reports                   junit.xml, summary.md, report.html, night.json in OUT

Every rebuild is the existing one (:func:`bitwright.rebuild.rebuild_release`): the release is
verified, the source cloned and its data fetched and checked each time, so a variation's
result means exactly what a verifier's would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bitwright.attest.keys import generate_keypair, load_public_key
from bitwright.attest.trust import TrustPolicy
from bitwright.builder import ProjectPaths, build
from bitwright.errors import BitwrightError, UsageError
from bitwright.fileio import write_atomic, write_text_atomic
from bitwright.htmlreport import Histogram, render_html
from bitwright.model import DeterminismSettings
from bitwright.model.variation import ChangeKind, Variation
from bitwright.nightly.history import Since, append_night, first_different, read_history
from bitwright.nightly.night import (
    CONTROL,
    Night,
    SkippedVariation,
    VariationResult,
    stage_results,
)
from bitwright.nightly.reports import junit_xml, night_markdown
from bitwright.nightly.visual import night_page
from bitwright.pins import pin_determinism, pin_environment, pin_git_commit
from bitwright.pipeline import load_params
from bitwright.rebuild import rebuild_release
from bitwright.rebuild.compare import Tolerance
from bitwright.rebuild.report import RebuildReport
from bitwright.rebuild.visual import pipeline_edges, tensor_histograms, tensor_rows
from bitwright.rebuild.workspace import checkout_source, fresh_workspace
from bitwright.release.bundle import bundle_release
from bitwright.release.layout import ReleaseLayout
from bitwright.runner import detect_sandbox
from bitwright.runner.variations import (
    DEFAULT,
    Machine,
    PlannedVariation,
    disordered,
    plan,
    probe_machine,
)
from bitwright.verify import check_candidate

__all__ = [
    "HISTORY_FILE",
    "OUTPUT_FILES",
    "NightlyOutcome",
    "Rebuilder",
    "release_of_head",
    "run_nightly",
]

Notify = Callable[[str], None]

OUTPUT_FILES = {
    "junit": "junit.xml",
    "summary": "summary.md",
    "html": "report.html",
    "night": "night.json",
}
"""What a night writes into ``--out`` (besides the history), by kind."""

HISTORY_FILE = "history.jsonl"

_HISTOGRAMS = 4
"""Histograms drawn in a night's report: the worst tensor of each of the first variations
that moved one."""


@dataclass(frozen=True)
class NightlyOutcome:
    """A finished night: its record, since when stages fail, and what was written."""

    night: Night
    since: tuple[Since, ...]
    history: Path
    history_nights: int
    skipped_history_lines: tuple[int, ...] = ()
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rebuilder:
    """How every rebuild of one night is made: the release, whom to trust, where from.

    Args:
        release: the release directory.
        policy: whom to trust for its signatures.
        source: where to clone the source (default: the provenance's repository).
        data_remote: a DVC remote URL to fetch data from instead of the recorded one.
        tolerance: overrides every stage's declared tolerance.
        keep: keep every workspace (default: remove each once compared).
        notify: receives one line per step.
    """

    release: Path
    policy: TrustPolicy
    source: str | None = None
    data_remote: str | None = None
    tolerance: Tolerance | None = None
    keep: bool = False
    notify: Notify = lambda _: None

    def rebuild(
        self,
        work: Path,
        name: str,
        variation: Variation | None,
        *,
        stage: str | None = None,
        keep: bool | None = None,
    ) -> tuple[RebuildReport, float, tuple[Histogram, ...]]:
        """Rebuild under ``variation`` in a workspace of its own, ``work/name``.

        The workspace is removed afterwards unless ``keep`` (default: :attr:`keep`).

        Returns:
            The rebuild's report, its seconds, and histograms of the differences of its
            worst tensors (drawn before the workspace goes).
        """
        started = time.monotonic()
        keep = self.keep if keep is None else keep
        with _workspace(work / name, variation, keep=keep) as ws:
            report = rebuild_release(
                self.release,
                self.policy,
                source=self.source,
                data_remote=self.data_remote,
                workspace=ws,
                tolerance=self.tolerance,
                stage=stage,
                variation=variation,
                notify=lambda line: self.notify(f"[{name}] {line}"),
                quiet_tools=True,
            )
            histograms = _histograms(report, self.release, ws, name)
        return report, time.monotonic() - started, histograms


def _histograms(report: RebuildReport, release: Path, ws: Path, name: str) -> tuple[Histogram, ...]:
    files = [f for s in report.stages for f in s.files]
    rows = tensor_rows(files, name)
    layout = ReleaseLayout(release)
    return tensor_histograms(rows, {f.path: layout.artifact(f.path) for f in files}, ws, limit=1)


@contextlib.contextmanager
def _workspace(base: Path, variation: Variation | None, *, keep: bool) -> Iterator[Path]:
    """An empty workspace at ``base``, removed afterwards unless ``keep``.

    Deeper for a build-path variation, through disorderfs for a file-order one.
    """
    if base.exists():
        shutil.rmtree(base)
    deeper = variation.last(ChangeKind.BUILD_PATH) if variation else None
    shuffled = bool(variation and variation.of(ChangeKind.FS_ORDER))
    try:
        with disordered(base) if shuffled else contextlib.nullcontext(base) as root:
            yield root / deeper if deeper else root
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def release_of_head(repo: Path, work: Path, out: Path, notify: Notify) -> tuple[Path, TrustPolicy]:
    """Build the HEAD commit of ``repo`` in a clean clone with a fresh key, and release it.

    The clone takes the repository's machine-local DVC config (``.dvc/config.local``), where
    a local remote is usually configured.

    Returns:
        The release directory (``out``) and a policy trusting the fresh key only.
    """
    commit = pin_git_commit(repo, allow_dirty=True).commit
    ws = fresh_workspace(work / "head")
    notify(f"building HEAD ({commit[:12]}) of {repo} in a clean clone")
    checkout_source(str(repo.resolve()), commit, ws)
    local = repo / ".dvc" / "config.local"
    if local.is_file():
        shutil.copyfile(local, ws / ".dvc" / "config.local")
    pair = generate_keypair(ProjectPaths(ws).keys, name="owner")
    build(ws, key_path=pair.private_path, notify=notify)
    bundle_release(ws, out, check=check_candidate, key_path=pair.private_path, force=True)
    notify(f"released HEAD into {out}, signed with a fresh key {pair.keyid[:8]}")
    return out, TrustPolicy(keys=(load_public_key(pair.public_path),))


def _variation_result(
    name: str,
    kind: str,
    variation: Variation | None,
    report: RebuildReport,
    seconds: float,
    stages: Sequence[str],
) -> VariationResult:
    return VariationResult(
        name=name,
        kind=kind,
        changes=tuple(c.describe() for c in variation.changes) if variation else (),
        stages=stage_results(report, stages),
        reason=report.reason,
        note=variation.note if variation else "",
        seconds=round(seconds, 3),
    )


def run_nightly(
    release: Path | None,
    policy: TrustPolicy | None,
    *,
    out: Path,
    names: Sequence[str] | None = None,
    history: Path | None = None,
    repo: Path = Path("."),
    source: str | None = None,
    data_remote: str | None = None,
    tolerance: Tolerance | None = None,
    keep_workspaces: bool = False,
    notify: Notify = lambda _: None,
) -> NightlyOutcome:
    """Rebuild ``release`` (or HEAD of ``repo``) under variations; write reports and history.

    Args:
        release: the release directory; None builds and releases HEAD of ``repo`` first.
        policy: whom to trust for the release (ignored for HEAD, which a fresh key signs).
        out: where the reports, the workspaces (``work/``) and by default the history go.
        names: the variations (default :data:`~bitwright.runner.variations.DEFAULT`).
        history: the history file (default ``OUT/history.jsonl``).
        repo: the repository whose HEAD is built when no release is given.
        source: where to clone the source from (default: the provenance's repository).
        data_remote: a DVC remote URL to fetch the data from.
        tolerance: overrides every stage's declared tolerance.
        keep_workspaces: keep every variation's workspace under ``OUT/work``.
        notify: receives one line per step.

    Raises:
        UsageError: an unknown variation, or a release given with nobody trusted.
        OperationalError: the control rebuild could not run at all (source, data, tools).
    """
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    history_path = history or out / HISTORY_FILE
    started = _now()
    wanted = tuple(names) if names else DEFAULT
    machine = probe_machine(detect_sandbox(None))
    if release is None:
        release, policy = release_of_head(repo, work, out / "release", notify)
    elif policy is None:
        raise UsageError("nobody is trusted to have signed the release", hint="pass --key PUB")
    rebuilder = Rebuilder(
        release.resolve(), policy, source, data_remote, tolerance, keep_workspaces, notify
    )
    control = _rebuild_control(rebuilder, work)
    planned = plan(wanted, machine, control.settings)
    results, histograms = _rebuild_variations(rebuilder, work, planned, control.stages)
    environment = _environment(machine)
    night = Night(
        night=started,
        finished=_now(),
        release=str(release.resolve()),
        commit=control.report.commit,
        stages=control.stages,
        edges=control.edges,
        environment=environment,
        subjects=_subjects(control.report),
        variations=(control.result, *results),
        skipped=tuple(SkippedVariation(p.name, p.reason) for p in planned if not p.applied),
    )
    return _keep_history(night, history_path, out, (*control.histograms, *histograms))


@dataclass(frozen=True)
class _Control:
    """The rebuild without variation, which every variation is compared with."""

    report: RebuildReport
    result: VariationResult
    stages: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    settings: DeterminismSettings
    histograms: tuple[Histogram, ...]


def _rebuild_control(rebuilder: Rebuilder, work: Path) -> _Control:
    """Rebuild without variation; read the stages, their edges and the declared settings.

    Its workspace is kept until the settings are read from the released params, then removed
    unless every workspace is kept.
    """
    rebuilder.notify("rebuilding without variation (control)")
    report, seconds, histograms = rebuilder.rebuild(work, CONTROL, None, keep=True)
    stages = tuple(s.stage for s in report.stages) or _stages_from_release(rebuilder.release)
    workspace = Path(report.workspace) if report.workspace else None
    edges = pipeline_edges(report.stages, workspace)
    settings = pin_determinism(_released_params(workspace))
    if not rebuilder.keep:
        shutil.rmtree(work / CONTROL, ignore_errors=True)
    result = _variation_result(CONTROL, CONTROL, None, report, seconds, stages)
    return _Control(report, result, stages, edges, settings, histograms)


def _rebuild_variations(
    rebuilder: Rebuilder, work: Path, planned: Sequence[PlannedVariation], stages: Sequence[str]
) -> tuple[list[VariationResult], list[Histogram]]:
    """One rebuild per variation this machine applies; one that cannot run is a result too.

    Returns:
        The results in the planned order, and the histograms their rebuilds drew.
    """
    results: list[VariationResult] = []
    drawn: list[Histogram] = []
    applied = [p for p in planned if p.variation is not None]
    for index, item in enumerate(applied, start=1):
        assert item.variation is not None
        rebuilder.notify(
            f"variation {index}/{len(applied)}: {item.name} ({item.variation.describe()})"
        )
        try:
            report, seconds, histograms = rebuilder.rebuild(work, item.name, item.variation)
        except BitwrightError as exc:
            results.append(
                VariationResult(
                    item.name,
                    item.variation.kind.value,
                    tuple(c.describe() for c in item.variation.changes),
                    (),
                    f"the rebuild could not run: {exc.message}",
                    item.variation.note,
                )
            )
            continue
        drawn.extend(histograms)
        results.append(
            _variation_result(
                item.name, item.variation.kind.value, item.variation, report, seconds, stages
            )
        )
    return results, drawn


def _environment(machine: Machine) -> dict[str, str]:
    """The build machine as a night's record names it."""
    environment = pin_environment()
    return {
        "python": environment.python,
        "torch": environment.torch or "none",
        "os": environment.os,
        "cpu": environment.cpu_model,
        "machine": environment.machine,
        "sandbox": machine.sandbox.value,
    }


def _keep_history(
    night: Night, history: Path, out: Path, histograms: Sequence[Histogram]
) -> NightlyOutcome:
    """Append the night to the history, read since when stages differ, and write the reports."""
    append_night(history, night)
    read = read_history(history)
    since = first_different(read.nights)
    outcome = NightlyOutcome(night, since, history, len(read.nights), read.skipped_lines)
    return _write_reports(outcome, out, read.nights, tuple(histograms[:_HISTOGRAMS]))


def _released_params(workspace: Path | None) -> dict[str, object]:
    """The params of the released commit, from the control's checkout (none if it failed)."""
    if workspace is not None and (workspace / "params.yaml").is_file():
        return dict(load_params(workspace))
    return {}


def _stages_from_release(release: Path) -> tuple[str, ...]:
    links = release / "links"
    names = sorted({p.name.split(".")[0] for p in links.glob("*.link")}) if links.is_dir() else []
    return tuple(names)


def _subjects(report: RebuildReport) -> dict[str, str]:
    return {
        f.path: p.original
        for s in report.stages
        for p in s.products
        for f in report.subjects
        if p.path == f.path and p.original is not None
    }


def _write_reports(
    outcome: NightlyOutcome,
    out: Path,
    nights: Sequence[Night],
    histograms: tuple[Histogram, ...],
) -> NightlyOutcome:
    night = outcome.night
    paths = {kind: out / name for kind, name in OUTPUT_FILES.items()}
    write_atomic(paths["junit"], junit_xml(night))
    write_text_atomic(
        paths["summary"], night_markdown(night, outcome.since, outcome.history_nights)
    )
    write_text_atomic(
        paths["html"], render_html(night_page(night, outcome.since, nights, histograms))
    )
    write_text_atomic(paths["night"], json.dumps(night.to_record(), indent=1, sort_keys=True))
    outputs = {kind: str(path) for kind, path in paths.items()}
    outputs["history"] = str(outcome.history)
    return NightlyOutcome(
        night,
        outcome.since,
        outcome.history,
        outcome.history_nights,
        outcome.skipped_history_lines,
        outputs,
    )
