"""``bitwright stage run``: run one stage sealed, judge it, and write its signed link."""

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
from bitwright.digest import default_cache, digest_artifacts
from bitwright.errors import BitwrightError, StageFailed, UsageError
from bitwright.fileio import write_text_atomic
from bitwright.model import ArtifactMap, StageRun, StageSpec
from bitwright.pipeline import load_pipeline
from bitwright.runner import detect_sandbox, judge, run_sealed

__all__ = ["StageOutcome", "remove_links", "run_stage", "stage_materials"]


@dataclass(frozen=True)
class StageOutcome:
    """A stage that ran, passed its checks and was linked."""

    link: Path
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


def _context(
    paths: ProjectPaths, given: BuildContext | None, *, allow_dirty: bool, strict: bool | None
) -> BuildContext:
    env_path = os.environ.get(CONTEXT_ENV)
    if given is not None:
        context = given
    elif env_path:
        context = read_context(Path(env_path))
    else:  # run by plain `dvc repro`: pin on the spot, as a build would
        from bitwright.builder.preflight import preflight  # the pins' imports, only here

        context = preflight(
            paths.repo, key_path=paths.owner_key, allow_dirty=allow_dirty, strict=bool(strict)
        )
    if strict is not None and strict != context.strict:
        context = BuildContext(**{**context.__dict__, "strict": strict})
    return context


def run_stage(
    repo: Path,
    name: str,
    argv: Sequence[str],
    *,
    allow_dirty: bool = False,
    strict: bool | None = None,
    context: BuildContext | None = None,
    host_env: Mapping[str, str] | None = None,
) -> StageOutcome:
    """Run stage ``name`` of ``repo`` sealed and write its link.

    The build's pins come from ``context`` when given (the build process serving a stage
    call), else from the context file a build names in the environment, else from a
    preflight run here (a stage run by plain ``dvc repro``). ``host_env`` is the caller's
    environment for the few variables a sealed stage may take from it (default: this
    process's).

    Raises:
        UsageError: no such stage, or ``argv`` is not the stage's command in ``dvc.yaml``.
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
        context = _context(paths, context, allow_dirty=allow_dirty, strict=strict)
        return _run_and_link(paths, spec, argv, context, host_env)
    except BitwrightError as exc:
        _record_failure(paths, name, exc)
        raise


def _run_and_link(
    paths: ProjectPaths,
    spec: StageSpec,
    argv: Sequence[str],
    context: BuildContext,
    host_env: Mapping[str, str] | None,
) -> StageOutcome:
    signer = load_signer(Path(context.key_path))
    cache = default_cache()
    settings = context.pins.determinism

    def digest(repo_paths: Sequence[str]) -> ArtifactMap:
        return digest_artifacts(paths.repo, repo_paths, cache)

    run = run_sealed(
        spec,
        repo=paths.repo,
        argv=argv,
        settings=settings,
        source_date_epoch=context.pins.git.commit_time,
        strict=context.strict,
        sandbox=detect_sandbox(context.sandbox, image=context.pins.container),
        digest=digest,
        log_dir=paths.logs,
        host_env=host_env,
        variation=context.variation,
    )
    if run.returncode != 0:
        raise StageFailed(
            spec.name,
            f"command exited with status {run.returncode}",
            hint=f"its output is in {paths.logs}",
            returncode=run.returncode,
        )
    judge(run, settings=settings, strict=context.strict, receipt_required=True)
    warnings = tuple(
        f"stage {spec.name!r} read {path}, which is not a declared dep "
        "(declare it in dvc.yaml; --strict makes this fatal)"
        for path in run.undeclared_reads
    )
    link = build_link(run, context.pins, declared=settings)
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
