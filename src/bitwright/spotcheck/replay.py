"""Replay chosen segments of a committed run, sealed, with the trainer's own code.

The segments are split into ``jobs`` groups; each group runs in one sealed process (one
interpreter and torch start-up for many segments): the training stage's own command, with
its declared deps visible (strictly: nothing else of the repository), the fetched start
states and a replay request as extra deps, a fresh out directory, the pinned determinism
settings (confirmed by the process's receipts), and ``BITWRIGHT_REPLAY`` naming the request.
The stage code's :class:`~bitwright.trajectory.Recorder` then runs just those segments, each
from its start state, and writes their end states. Groups run in parallel threads locally, or
as Ray tasks on a cluster whose workers see the same workspace path (``--ray``); the result
is the same either way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitwright.digest import digest_artifacts
from bitwright.errors import BitwrightError, UsageError
from bitwright.fileio import read_json_object, write_text_atomic
from bitwright.model import DeterminismSettings, StageSpec
from bitwright.runner import detect_sandbox, judge, run_sealed
from bitwright.trajectory import REPLAY_ENV, REPLAY_RESULT, Trajectory

__all__ = ["REPLAY_DIR", "ReplayOutcome", "ReplayPlan", "Replayer", "replay_segments"]

REPLAY_DIR = ".spotcheck"
"""The workspace directory of an audit's fetched states, requests and replay outputs."""

Replayer = Callable[[Sequence[int]], "ReplayOutcome"]


@dataclass(frozen=True)
class ReplayPlan:
    """What every replay of one audit shares: the stage, its workspace and settings."""

    workspace: Path
    stage: StageSpec
    settings: DeterminismSettings
    source_date_epoch: int
    states_dir: Path
    trajectory: Trajectory
    jobs: int = 1
    ray_address: str | None = None


@dataclass
class ReplayOutcome:
    """End states of replayed segments (``None``: the replay of that segment failed)."""

    ends: dict[int, Path | None] = field(default_factory=dict)
    end_sha256: dict[int, str] = field(default_factory=dict)
    batches: dict[int, str] = field(default_factory=dict)
    init_sha256: str | None = None
    header: dict[str, Any] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # as the replay processes report it, start-up included
    processes: int = 0


def replay_segments(
    plan: ReplayPlan, segments: Sequence[int], *, init: bool = True
) -> ReplayOutcome:
    """Replay ``segments`` of ``plan`` in ``plan.jobs`` sealed processes; collect their ends."""
    order = sorted(set(segments))
    jobs = max(1, min(plan.jobs, len(order))) if order else 1
    groups = [order[j::jobs] for j in range(jobs)]
    started = time.monotonic()
    if plan.ray_address is not None:
        results = _on_ray(plan, groups, init)
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(
                pool.map(lambda j: _run_group(plan, j, groups[j], init and j == 0), range(jobs))
            )
    outcome = ReplayOutcome(
        seconds=time.monotonic() - started,
        processes=len(groups),
    )
    for result in results:
        outcome.ends.update(result.ends)
        outcome.end_sha256.update(result.end_sha256)
        outcome.batches.update(result.batches)
        outcome.errors.update(result.errors)
        outcome.cpu_seconds += result.cpu_seconds
        outcome.header = outcome.header or result.header
        outcome.init_sha256 = outcome.init_sha256 or result.init_sha256
    return outcome


def _run_group(plan: ReplayPlan, job: int, group: Sequence[int], init: bool) -> ReplayOutcome:
    """Replay the segments ``group`` in one sealed process, the ``job``-th of the audit."""
    request = plan.workspace / REPLAY_DIR / f"request-{job}.json"
    out = plan.workspace / REPLAY_DIR / f"out-{job}"
    _write_request(plan, group, request, out, init=init)
    spec = _replay_spec(plan, job, request, out)
    try:
        found = _replay_sealed(plan, spec, request, out)
    except BitwrightError as exc:
        return ReplayOutcome(errors={i: exc.message for i in group})
    return _outcome(found, group, out)


def _write_request(
    plan: ReplayPlan, group: Sequence[int], request: Path, out: Path, *, init: bool
) -> None:
    """Write what the stage's Recorder replays: each segment's steps and its start state."""
    t = plan.trajectory
    body = {
        "init": init,
        "out": str(out),
        "segments": [
            {
                "index": i,
                "steps": [t.segments[i].first, t.segments[i].end],
                "start": str(plan.states_dir / t.start_state(i).file),
                "sha256": t.start_state(i).sha256,
            }
            for i in group
        ],
    }
    write_text_atomic(request, json.dumps(body, sort_keys=True))


def _replay_spec(plan: ReplayPlan, job: int, request: Path, out: Path) -> StageSpec:
    """The training stage with the fetched states and the request as extra deps, ``out`` its out."""
    ws = plan.workspace
    return StageSpec(
        name=f"{plan.stage.name}-replay-{job}",
        cmd=plan.stage.cmd,
        deps=(*plan.stage.deps, _rel(plan.states_dir, ws), _rel(request, ws)),
        outs=(_rel(out, ws),),
        params=plan.stage.params,
        wdir=plan.stage.wdir,
    )


def _replay_sealed(plan: ReplayPlan, spec: StageSpec, request: Path, out: Path) -> dict[str, Any]:
    """Run ``spec`` sealed, its receipts confirming the settings; return its replay result.

    Raises:
        BitwrightError: the process failed, its receipts did not confirm the settings, or it
            wrote no readable result.
    """
    ws = plan.workspace
    run = run_sealed(
        spec,
        repo=ws,
        argv=_argv(plan.stage),
        settings=plan.settings,
        source_date_epoch=plan.source_date_epoch,
        strict=True,
        sandbox=detect_sandbox(None),
        digest=lambda paths: digest_artifacts(ws, paths, None),
        log_dir=ws / REPLAY_DIR / "logs",
        echo=False,
        extra_env={REPLAY_ENV: str(request)},
    )
    judge(run, settings=plan.settings, strict=True, receipt_required=True)
    return read_json_object(
        out / REPLAY_RESULT, "a replay result", hint="the replay failed", inside=out
    )


def _outcome(found: dict[str, Any], group: Sequence[int], out: Path) -> ReplayOutcome:
    """Read the end state of each segment of ``group`` from the result the replay wrote."""
    result = ReplayOutcome(header=dict(found.get("header") or {}))
    cpu = found.get("cpuSeconds")
    result.cpu_seconds = float(cpu) if isinstance(cpu, int | float) else 0.0
    init_sha = found.get("init")
    result.init_sha256 = init_sha if isinstance(init_sha, str) else None
    done = found.get("segments") or {}
    for i in group:
        entry = done.get(str(i)) if isinstance(done, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            result.errors[i] = "the replay wrote no end state for it"
            continue
        result.ends[i] = out / Path(entry["file"]).name
        result.end_sha256[i] = str(entry.get("end"))
        result.batches[i] = str(entry.get("batches"))
    return result


def _rel(path: Path, workspace: Path) -> str:
    return path.relative_to(workspace).as_posix()


def _argv(stage: StageSpec) -> list[str]:
    import shlex

    return shlex.split(stage.inner_cmd)


def _on_ray(plan: ReplayPlan, groups: Sequence[Sequence[int]], init: bool) -> list[ReplayOutcome]:
    try:
        import ray  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise UsageError(
            "--ray needs Ray, which is not installed",
            hint="pip install 'bitwright[ray]', or use --jobs N on this machine",
        ) from None
    ray.init(address=plan.ray_address, ignore_reinit_error=True, log_to_driver=False)
    task = ray.remote(_run_group)
    handles = [task.remote(plan, j, group, init and j == 0) for j, group in enumerate(groups)]
    return list(ray.get(handles))
