"""Run one stage sealed and judge the run: the heart of ``bitwright stage run``.

:func:`run_sealed` digests the stage's materials, runs its command in the sandbox with the
sealed environment and read tracing, collects its outs, receipts and undeclared reads, and
returns a :class:`~bitwright.model.StageRun`. It reports rather than judges: :func:`judge`
then fails the stage for a non-zero exit, a receipt that contradicts the declaration, or (in
strict mode) an undeclared read. The caller writes a link only for a run that passed.
"""

from __future__ import annotations

import posixpath
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bitwright.errors import StageFailed, UndeclaredInput, UsageError
from bitwright.model.digests import ArtifactMap
from bitwright.model.pins import DeterminismSettings
from bitwright.model.pipeline import StageSpec
from bitwright.model.run import SandboxAllowances, StageRun
from bitwright.model.variation import Variation
from bitwright.runner import allowances as allow
from bitwright.runner._base import SANDBOX_PRIVATE_DIR, Sandbox
from bitwright.runner._outputs import OutputStaging
from bitwright.runner._process import StatusChannel, run_logged
from bitwright.runner.environment import sealed_environment
from bitwright.runner.receipt import check_receipts, read_receipts
from bitwright.runner.trace import (
    TRACE_ENV,
    TRACE_ROOT_ENV,
    TRACE_SKIP_ENV,
    install_trace_hook,
    undeclared_reads,
)
from bitwright.runner.variations import umask_of, vary_environment, vary_sandbox
from bitwright.runner.view import HIDDEN, Bind, RepoView, is_under
from bitwright.stagekit import RECEIPT_ENV

__all__ = ["judge", "log_paths", "run_sealed", "toolchain_paths"]

_WEAK_NOTE = (
    "the environment was passed cleared but not sealed (the caller's is readable via /proc); "
    "the repository was writable and fully visible; outs were written in place"
)


def toolchain_paths(repo: Path) -> tuple[str, ...]:
    """Return repo-relative paths of the running toolchain that lie inside ``repo``.

    That is this interpreter's virtual environment and bitwright's own package directory
    (an editable install): a stage may read them in strict mode, and reading them is not an
    undeclared input.
    """
    root = repo.resolve()
    candidates = (Path(sys.prefix), Path(__file__).resolve().parents[2])
    found: list[str] = []
    for path in candidates:
        try:
            rel = path.resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        if rel != "." and rel not in found:
            found.append(rel)
    return tuple(found)


def log_paths(log_dir: Path, stage: str) -> tuple[Path, Path]:
    """Return where a stage's standard output and standard error are logged."""
    return log_dir / f"{stage}.stdout.log", log_dir / f"{stage}.stderr.log"


def run_sealed(
    stage: StageSpec,
    *,
    repo: Path,
    argv: Sequence[str],
    settings: DeterminismSettings,
    source_date_epoch: int,
    strict: bool,
    sandbox: Sandbox,
    digest: Callable[[Sequence[str]], ArtifactMap],
    log_dir: Path,
    receipt_required: bool = True,
    echo: bool = True,
    host_env: Mapping[str, str] | None = None,
    allowances: SandboxAllowances | None = None,
    variation: Variation | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> StageRun:
    """Run ``argv`` as ``stage``, sealed by ``sandbox``, and report what happened.

    Args:
        stage: the stage; its deps and param files are the materials, its outs the products.
        repo: the repository root.
        argv: the stage's command (what follows ``--`` in ``bitwright stage run``).
        settings: the declared determinism settings (environment and ``stagekit``).
        source_date_epoch: the commit time, passed as ``SOURCE_DATE_EPOCH``.
        strict: hide undeclared repository files (an undeclared read fails at once);
            otherwise the whole repository is visible read-only and reads are only traced.
        sandbox: how to seal the stage (see :func:`bitwright.runner.sandbox.detect_sandbox`).
        digest: maps repo-relative paths (files or directories) to the digests of their files.
        log_dir: where the stage's output logs go (see :func:`log_paths`) and, in a
            remapping sandbox, its scratch directories (keep it on the repository's disk).
        receipt_required: whether :func:`judge` will require receipts; the run itself
            completes either way (a missing receipt is judged, not raised here).
        echo: also copy the stage's output to this process's standard error as it arrives.
        host_env: the caller's environment, for the few variables a sealed stage may take
            from it (:data:`bitwright.runner.environment.ALLOWED_HOST_VARS`; default:
            this process's).
        allowances: what the project lets this stage do beyond the seal (see
            :mod:`bitwright.runner.allowances`); recorded in the run.
        variation: differences from the normal run to apply (a nightly rebuild's): its
            variables, umask and host name (:mod:`bitwright.runner.variations`).
        extra_env: further variables set by bitwright itself (a spot-check replay names its
            request); they may not change a determinism variable.

    Returns:
        The run, whatever its exit status; see :func:`judge`.

    Raises:
        StageFailed: the command succeeded but an out is missing, or it left files beside
            its outs that are not declared.
        OperationalError: a dep is missing, or the sandbox could not be set up.
    """
    if not argv:
        raise UsageError(f"stage {stage.name!r} has no command", hint="give it a cmd in dvc.yaml")
    root = repo.resolve()
    granted = allowances or SandboxAllowances()
    sandbox = allow.with_network(vary_sandbox(sandbox, variation), granted)
    _refuse_hidden(stage)
    materials = digest([*stage.deps, *stage.param_files])
    toolchain = toolchain_paths(root)
    view = RepoView.create(
        root, visible=[*stage.deps, *stage.param_files, *toolchain], outs=stage.outs, strict=strict
    )
    cwd = root / posixpath.normpath(stage.wdir)
    if not cwd.is_dir():
        raise UsageError(
            f"stage {stage.name!r}: its working directory {stage.wdir} does not exist",
            hint="fix the stage's wdir in dvc.yaml",
        )
    stdout_log, stderr_log = log_paths(log_dir, stage.name)
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"bitwright-{stage.name}-") as tmp:
        private = Path(tmp)
        seen = SANDBOX_PRIVATE_DIR if sandbox.remaps else private
        skip = ":".join(str(root / t) for t in toolchain)
        env = _environment(
            settings,
            source_date_epoch,
            root,
            private,
            seen,
            cwd,
            skip,
            host_env,
            granted,
            extra_env,
        )
        env = sandbox.adapt_environment(vary_environment(env, variation, settings))
        staging = OutputStaging.prepare(view, scratch_in=log_dir if sandbox.remaps else None)
        try:
            allowed = allow.writable_binds(
                granted, root=root, scratch=private, sandbox=sandbox, outs=stage.outs
            )
            writable = [*staging.binds(), *allowed, Bind(private, seen)]
            channel = StatusChannel() if sandbox.status_channel else None
            try:
                command = sandbox.wrap(
                    argv,
                    view=view,
                    writable=writable,
                    env=env,
                    cwd=cwd,
                    status_fd=channel.write_fd if channel else None,
                )
            except BaseException:
                if channel:
                    channel.close()
                raise
            started_on = _now()
            with sandbox.running(writable):
                finished = run_logged(
                    command,
                    env=env,
                    cwd=root if sandbox.remaps else cwd,
                    stdout_log=stdout_log,
                    stderr_log=stderr_log,
                    echo=echo,
                    channel=channel,
                    umask=umask_of(variation),
                )
            finished_on = _now()
            receipts = read_receipts(private / "receipt.jsonl")
            reads = undeclared_reads(
                private / "trace", repo=root, stage=stage, allowed_extra=toolchain
            )
            strays = staging.collect() if finished.returncode == 0 else ()
        finally:
            staging.cleanup()
    products: ArtifactMap = {}
    if finished.returncode == 0:
        _check_outs(stage, root, strays)
        products = digest(list(stage.outs)) if stage.outs else {}
    return StageRun(
        stage=stage.name,
        command=tuple(argv),
        returncode=finished.returncode,
        materials=materials,
        products=products,
        stdout_sha256=finished.stdout_sha256,
        stderr_sha256=finished.stderr_sha256,
        sandbox=sandbox.report(strict=strict),
        environment=allow.recorded_environment(env, granted),
        receipts=receipts,
        undeclared_reads=reads,
        started_on=started_on,
        finished_on=finished_on,
        notes=() if sandbox.remaps else (_WEAK_NOTE,),
        allowances=granted,
    )


def judge(
    run: StageRun, *, settings: DeterminismSettings, strict: bool, receipt_required: bool
) -> None:
    """Fail a run that must not be attested; in warn mode undeclared reads are the caller's.

    Raises, in this order:
        StageFailed: the command exited non-zero (UndeclaredInput when, in strict mode, it
            had read undeclared files, which is then the likely cause).
        ReceiptMismatch: a receipt is missing or contradicts the declared settings.
        UndeclaredInput: in strict mode, the stage read files it does not declare.
    """
    reads = run.undeclared_reads
    if run.returncode != 0:
        status = (
            f"was killed by signal {-run.returncode}"
            if run.returncode < 0
            else f"exited with status {run.returncode}"
        )
        if strict and reads:
            raise UndeclaredInput(
                run.stage,
                f"the command {status} after reading undeclared files, hidden in strict "
                f"mode: {_listing(reads)}",
                hint="declare them as deps of the stage in dvc.yaml",
            )
        raise StageFailed(
            run.stage,
            f"the command {status}",
            hint=f"read {run.stage}.stderr.log in the log directory; the stage ran sealed "
            "(no network, read-only repository, cleared environment)",
        )
    check_receipts(run.stage, settings, run.receipts, required=receipt_required)
    if strict and reads:
        raise UndeclaredInput(
            run.stage,
            f"read undeclared files: {_listing(reads)}",
            hint="declare them as deps of the stage in dvc.yaml",
        )


def _environment(
    settings: DeterminismSettings,
    epoch: int,
    root: Path,
    private: Path,
    seen: Path,
    cwd: Path,
    skip: str,
    host: Mapping[str, str] | None,
    granted: SandboxAllowances,
    more: Mapping[str, str] | None = None,
) -> dict[str, str]:
    (private / "home").mkdir()
    install_trace_hook(private / "hook")
    return sealed_environment(
        settings,
        source_date_epoch=epoch,
        home=seen / "home",
        path_dirs=[str(Path(sys.prefix) / "bin")],
        extra={
            **(more or {}),
            RECEIPT_ENV: str(seen / "receipt.jsonl"),
            TRACE_ENV: str(seen / "trace"),
            TRACE_ROOT_ENV: str(root),
            TRACE_SKIP_ENV: skip,
            "PYTHONPATH": str(seen / "hook"),
            "PWD": str(cwd),
            "DVC_SITE_CACHE_DIR": str(seen / "dvc-site"),  # DVC's default is /var/tmp
        },
        host=host,
        pass_through=allow.passed_variables(granted),
    )


def _refuse_hidden(stage: StageSpec) -> None:
    for path in (*stage.deps, *stage.param_files, *stage.outs):
        hidden = [h for h in HIDDEN if is_under(posixpath.normpath(path), h)]
        if hidden:
            raise UsageError(
                f"stage {stage.name!r} declares {path!r}, which a stage may never see "
                f"({hidden[0]} holds history, keys or caches)",
                hint="remove it from the stage's deps and outs in dvc.yaml",
            )


def _check_outs(stage: StageSpec, root: Path, strays: Sequence[str]) -> None:
    if strays:
        raise StageFailed(
            stage.name,
            f"wrote files that are not declared outs (discarded): {_listing(strays)}",
            hint="declare them as outs in dvc.yaml, or write scratch files under $HOME or /tmp",
        )
    for out in stage.outs:
        if not (root / out).exists():
            raise StageFailed(
                stage.name,
                f"the declared out {out!r} was not produced",
                hint="make the stage write it, or remove it from the stage's outs in dvc.yaml",
            )


def _listing(paths: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    return shown if len(paths) <= limit else f"{shown} and {len(paths) - limit} more"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
