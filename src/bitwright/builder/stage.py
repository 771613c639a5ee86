"""``bitwright stage run``: run one stage sealed, judge it, and write its signed link.

Under ``bitwright build`` (a build context in hand or named in the environment) a stage that
passes its checks gets a signed link. Run by DVC directly (``dvc repro``, ``dvc exp run``,
queued experiments) it is a *development run*: sealed the same way and judged the same way,
but nothing is signed or linked, no key is needed and the tree may be dirty. A release never
contains a development run: ``bitwright build`` runs (or reuses the link of) every stage itself.
Both modes apply the sandbox allowances of the project config.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bitwright.attest import build_link, keyid8, load_signer, read_link, write_link
from bitwright.builder.context import CONTEXT_ENV, BuildContext, read_context
from bitwright.builder.linkstore import LinkStore
from bitwright.builder.paths import ProjectPaths
from bitwright.builder.trajectory import TRAJECTORY_BYPRODUCT, trajectory_summary
from bitwright.digest import digest_artifacts, memory_cache
from bitwright.errors import BitwrightError, ReceiptMismatch, StageFailed, UsageError
from bitwright.fileio import write_text_atomic
from bitwright.model import (
    ArtifactMap,
    DeterminismSettings,
    SandboxAllowances,
    StageRun,
    StageSpec,
)
from bitwright.model.variation import Variation
from bitwright.pins import head_commit_time, pin_determinism
from bitwright.pipeline import PARAMS_FILE, load_params, load_pipeline
from bitwright.project import load_project_config
from bitwright.runner import Sandbox, detect_sandbox, judge, run_sealed

__all__ = ["DEVELOPMENT_NOTE", "StageOutcome", "remove_links", "run_stage", "stage_materials"]


DEVELOPMENT_NOTE = (
    "development run: sealed but not attested (`bitwright build` links every stage it releases)"
)


@dataclass(frozen=True)
class StageOutcome:
    """A stage that ran and passed its checks: linked under a build, else a development run.

    Attributes:
        link: the stage's signed link; None for a development run.
        run: what the runner recorded.
        warnings: lines for the user (undeclared reads, unconfirmed settings).
    """

    link: Path | None
    run: StageRun
    warnings: tuple[str, ...]


def stage_materials(spec: StageSpec) -> tuple[str, ...]:
    """The repository paths whose digests are a stage's materials: its deps and param files."""
    return tuple(dict.fromkeys((*spec.deps, *spec.param_files)))


def remove_links(links_dir: Path, stage: str) -> None:
    """Remove every link of ``stage`` from ``links_dir`` (a failed run must leave none)."""
    if links_dir.is_dir():
        for old in links_dir.glob(f"{stage}.*.link"):
            old.unlink()


def _context(given: BuildContext | None, *, strict: bool | None) -> BuildContext | None:
    """The build's context (given, or named in the environment); None outside a build."""
    env_path = os.environ.get(CONTEXT_ENV)
    if given is not None:
        context = given
    elif env_path:
        context = read_context(Path(env_path))
    else:
        return None
    if strict is not None and strict != context.strict:
        context = BuildContext(**{**context.__dict__, "strict": strict})
    return context


def run_stage(
    repo: Path,
    name: str,
    argv: Sequence[str],
    *,
    strict: bool | None = None,
    context: BuildContext | None = None,
    host_env: Mapping[str, str] | None = None,
) -> StageOutcome:
    """Run stage ``name`` of ``repo`` sealed; under a build, write its signed link.

    The build's pins come from ``context`` when given (the build process serving a stage
    call), else from the context file a build names in the environment. Without either the
    stage was started by DVC itself and runs as a development run (see the module doc).
    ``host_env`` is the caller's environment for the few variables a sealed stage may take
    from it (default: this process's).

    Raises:
        UsageError: no such stage, ``argv`` is not the stage's command in ``dvc.yaml``, or
            the project config is wrong.
        StageFailed: the stage failed, broke its seal or contradicted its declared settings;
            no link is left for it, and the reason is recorded for ``bitwright build``.
    """
    paths = ProjectPaths(repo)
    try:
        pipeline = load_pipeline(repo)
        try:
            spec = pipeline.stage(name)
        except KeyError:
            raise UsageError(
                f"dvc.yaml has no stage {name!r}", hint=f"stages are: {', '.join(pipeline.names)}"
            ) from None
        if shlex.split(spec.inner_cmd) != list(argv):
            raise UsageError(
                f"stage {name!r}: command {shlex.join(argv)!r} is not the one in dvc.yaml "
                f"({spec.inner_cmd!r})",
                hint="run stages through `dvc repro` or `bitwright build`",
            )
        remove_links(paths.links, name)
        config = load_project_config(paths.repo)
        config.check_stages(pipeline.names)
        allowances = config.allowances(name)
        build_context = _context(context, strict=strict)
        if build_context is None:
            return _run_development(paths, spec, argv, bool(strict), host_env, allowances)
        return _run_and_link(paths, spec, argv, build_context, host_env, allowances)
    except BitwrightError as exc:
        _record_failure(paths, name, exc)
        raise


def _run_development(
    paths: ProjectPaths,
    spec: StageSpec,
    argv: Sequence[str],
    strict: bool,
    host_env: Mapping[str, str] | None,
    allowances: SandboxAllowances,
) -> StageOutcome:
    """Run a stage DVC started on its own: sealed and judged, never signed."""
    params = load_params(paths.repo) if (paths.repo / PARAMS_FILE).is_file() else {}
    settings = pin_determinism(params)
    run = _sealed(
        paths,
        spec,
        argv,
        settings=settings,
        epoch=head_commit_time(paths.repo),
        strict=strict,
        sandbox=detect_sandbox(None),
        host_env=host_env,
        allowances=allowances,
    )
    warnings = _judged(
        paths, run, settings, strict=strict, receipt_required=False, param_files=spec.param_files
    )
    try:
        judge(run, settings=settings, strict=strict, param_files=spec.param_files)
    except ReceiptMismatch as exc:  # a missing record: what a build would refuse
        warnings += (f"stage {spec.name!r} {exc.detail}; `bitwright build` requires it",)
    return StageOutcome(link=None, run=run, warnings=warnings)


def _sealed(
    paths: ProjectPaths,
    spec: StageSpec,
    argv: Sequence[str],
    *,
    settings: DeterminismSettings,
    epoch: int,
    strict: bool,
    sandbox: Sandbox,
    host_env: Mapping[str, str] | None,
    allowances: SandboxAllowances,
    variation: Variation | None = None,
) -> StageRun:
    cache = memory_cache()  # what a link attests is hashed by this process, nothing else

    def digest(repo_paths: Sequence[str]) -> ArtifactMap:
        return digest_artifacts(paths.repo, repo_paths, cache)

    return run_sealed(
        spec,
        repo=paths.repo,
        argv=argv,
        settings=settings,
        source_date_epoch=epoch,
        strict=strict,
        sandbox=sandbox,
        digest=digest,
        log_dir=paths.logs,
        host_env=host_env,
        allowances=allowances,
        variation=variation,
    )


def _judged(
    paths: ProjectPaths,
    run: StageRun,
    settings: DeterminismSettings,
    *,
    strict: bool,
    receipt_required: bool,
    param_files: Sequence[str] = (),
) -> tuple[str, ...]:
    """Fail a run that must not count; return the warnings of one that may."""
    if run.returncode != 0:
        raise StageFailed(
            run.stage,
            f"command exited with status {run.returncode}",
            hint=f"its output is in {paths.logs}",
            returncode=run.returncode,
        )
    judge(
        run,
        settings=settings,
        strict=strict,
        param_files=param_files,
        receipt_required=receipt_required,
    )
    return tuple(
        f"stage {run.stage!r} read {path}, which is not a declared dep "
        "(declare it in dvc.yaml; --strict makes this fatal)"
        for path in run.undeclared_reads
    )


def _run_and_link(
    paths: ProjectPaths,
    spec: StageSpec,
    argv: Sequence[str],
    context: BuildContext,
    host_env: Mapping[str, str] | None,
    allowances: SandboxAllowances,
) -> StageOutcome:
    signer = load_signer(Path(context.key_path))
    settings = context.pins.determinism
    run = _sealed(
        paths,
        spec,
        argv,
        settings=settings,
        epoch=context.pins.git.epoch,
        strict=context.strict,
        sandbox=detect_sandbox(context.sandbox, image=context.pins.container),
        host_env=host_env,
        allowances=allowances,
        variation=context.variation,
    )
    warnings = _judged(
        paths,
        run,
        settings,
        strict=context.strict,
        receipt_required=True,
        param_files=spec.param_files,
    )
    link = build_link(run, context.pins, declared=settings)
    summary = trajectory_summary(paths.repo, spec, run.products)
    if summary is not None:
        link = link.model_copy(
            update={"byproducts": {**link.byproducts, TRAJECTORY_BYPRODUCT: summary}}
        )
    link_path = write_link(link, signer, paths.links)
    payload, _ = read_link(link_path)
    LinkStore(paths.link_store).put(link_path, payload, keyid8(signer.public_key))
    return StageOutcome(link=link_path, run=run, warnings=warnings)


def _record_failure(paths: ProjectPaths, stage: str, exc: BitwrightError) -> None:
    record = {
        "stage": stage,
        "message": exc.detail if isinstance(exc, StageFailed) else exc.message,
        "hint": exc.hint,
        "exit": int(exc.exit_code),
        "kind": type(exc).__name__,
        "stage_failed": isinstance(exc, StageFailed),
    }
    write_text_atomic(paths.failure_file, json.dumps(record, sort_keys=True))
