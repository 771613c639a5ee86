"""Run one stage sealed and judge the run: the heart of ``bitwright stage run``.

:func:`run_sealed` digests the stage's materials, runs its command in the sandbox with the
sealed environment and read tracing, collects its outs, receipts and undeclared reads, and
returns a :class:`~bitwright.model.StageRun`. It reports rather than judges: :func:`judge`
then fails the stage for a non-zero exit, a receipt that contradicts the declaration, or (in
strict mode) an undeclared read. The caller writes a link only for a run that passed.
"""

from __future__ import annotations

import os
import posixpath
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bitwright.errors import StageFailed, UndeclaredInput, UsageError
from bitwright.model.digests import ArtifactMap
from bitwright.model.pins import DeterminismSettings
from bitwright.model.pipeline import StageSpec
from bitwright.model.receipt import RunnerReceipt, StageReceipts
from bitwright.model.run import SandboxAllowances, StageRun
from bitwright.model.variation import Variation
from bitwright.runner import allowances as allow
from bitwright.runner._base import SANDBOX_PRIVATE_DIR, Sandbox
from bitwright.runner._outputs import OutputStaging
from bitwright.runner._process import Finished, StatusChannel, run_logged
from bitwright.runner.environment import PROCESS_VARIABLES, sealed_environment
from bitwright.runner.receipt import (
    RUNNER_UMASK,
    Expectation,
    check_receipts,
    is_python_command,
    parse_runner_receipt,
    read_receipts,
)
from bitwright.runner.trace import (
    CONFIRM_ENV,
    PARAMS_ENV,
    TRACE_ENV,
    TRACE_ROOT_ENV,
    TRACE_SKIP_ENV,
    install_trace_hook,
    undeclared_reads,
)
from bitwright.runner.variations import umask_of, vary_environment, vary_sandbox
from bitwright.runner.view import HIDDEN, Bind, RepoView, is_under
from bitwright.stagekit import RECEIPT_ENV

__all__ = ["judge", "log_paths", "run_sealed", "stage_environment", "toolchain_paths"]

_RECEIPT_LIMIT = 1 << 20  # the runner receipt: a pid, a umask and a sealed environment

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
        source_date_epoch: passed as ``SOURCE_DATE_EPOCH`` (:attr:`GitPin.epoch`).
        strict: hide undeclared repository files (an undeclared read fails at once);
            otherwise the whole repository is visible read-only and reads are only traced.
        sandbox: how to seal the stage (see :func:`bitwright.runner.sandbox.detect_sandbox`).
        digest: maps repo-relative paths (files or directories) to the digests of their files;
            products are digested with it right after the run, so it must trust no cache a
            stage (or anyone but this process) could have written.
        log_dir: where the stage's output logs go (see :func:`log_paths`) and, in a
            remapping sandbox, its scratch directories (keep it on the repository's disk).
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
    outcome = _run_privately(
        stage,
        argv,
        _Setup(
            root,
            view,
            cwd,
            toolchain,
            sandbox,
            settings,
            source_date_epoch,
            host_env,
            granted,
            variation,
            extra_env,
        ),  # fmt: skip
        log_dir=log_dir,
        echo=echo,
    )
    finished = outcome.finished
    products: ArtifactMap = {}
    if finished.returncode == 0:
        _check_outs(stage, root, outcome.strays)
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
        environment=allow.recorded_environment(outcome.environment, granted),
        receipts=outcome.receipts,
        undeclared_reads=outcome.reads,
        started_on=outcome.started_on,
        finished_on=outcome.finished_on,
        notes=() if sandbox.remaps else (_WEAK_NOTE,),
        allowances=granted,
        umask=f"{outcome.umask:04o}",
    )


@dataclass(frozen=True)
class _Setup:
    """What a run needs besides the stage and its command."""

    root: Path
    view: RepoView
    cwd: Path
    toolchain: tuple[str, ...]
    sandbox: Sandbox
    settings: DeterminismSettings
    epoch: int
    host_env: Mapping[str, str] | None
    granted: SandboxAllowances
    variation: Variation | None
    extra_env: Mapping[str, str] | None


@dataclass(frozen=True)
class _Outcome:
    """What a run left behind, collected before its private directory goes."""

    started_on: str
    finished: Finished
    finished_on: str
    environment: dict[str, str]
    receipts: StageReceipts
    reads: tuple[str, ...]
    strays: tuple[str, ...]
    umask: int


def _run_privately(
    stage: StageSpec, argv: Sequence[str], setup: _Setup, *, log_dir: Path, echo: bool
) -> _Outcome:
    """Run the stage in a fresh private directory (home, hook, receipts, trace), then collect."""
    sandbox, root = setup.sandbox, setup.root
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix=f"bitwright-{stage.name}-") as tmp,
        tempfile.TemporaryFile(dir=tmp) as runner_receipt,  # unnamed: no path reaches it
    ):
        private = Path(tmp) / "stage"
        private.mkdir()
        seen = SANDBOX_PRIVATE_DIR if sandbox.remaps else private
        (private / "home").mkdir()
        install_trace_hook(private / "hook")
        env = stage_environment(
            stage, repo=root, settings=setup.settings, source_date_epoch=setup.epoch,
            private=seen, host_env=setup.host_env, allowances=setup.granted,
            extra=setup.extra_env,
        )  # fmt: skip
        env = sandbox.adapt_environment(vary_environment(env, setup.variation, setup.settings))
        umask = umask_of(setup.variation)
        umask = RUNNER_UMASK if umask is None else umask
        staging = OutputStaging.prepare(setup.view, scratch_in=log_dir if sandbox.remaps else None)
        try:
            allowed = allow.writable_binds(
                setup.granted, root=root, scratch=private, sandbox=sandbox, outs=stage.outs
            )
            started_on, finished, finished_on = _run_wrapped(
                sandbox,
                sandbox.shim(argv, runner_receipt.fileno()),
                view=setup.view,
                writable=[*staging.binds(), *allowed, Bind(private, seen)],
                env=env,
                cwd=setup.cwd,
                host_cwd=root if sandbox.remaps else setup.cwd,
                logs=log_paths(log_dir, stage.name),
                echo=echo,
                receipt_fd=runner_receipt.fileno(),
                umask=umask,
            )
            runner = parse_runner_receipt(os.pread(runner_receipt.fileno(), _RECEIPT_LIMIT, 0))
            return _Outcome(
                started_on,
                finished,
                finished_on,
                env,
                read_receipts(private / "receipt.jsonl", _recorded(runner, setup.granted)),
                undeclared_reads(
                    private / "trace", repo=root, stage=stage, allowed_extra=setup.toolchain
                ),
                tuple(staging.collect()) if finished.returncode == 0 else (),
                umask,
            )
        finally:
            staging.cleanup()


def judge(
    run: StageRun,
    *,
    settings: DeterminismSettings,
    strict: bool,
    param_files: Sequence[str] = (),
    receipt_required: bool = True,
) -> None:
    """Fail a run that must not be attested; in warn mode undeclared reads are the caller's.

    Args:
        run: the run (its environment is what the runner declared to the stage).
        settings: the declared determinism settings.
        strict: undeclared reads fail the stage.
        param_files: the stage's parameter files (their digests are among the materials):
            every Python process of the stage that read one must have read those bytes.
        receipt_required: a record the declaration needs must exist (a development run,
            which nothing attests, is held only to the receipts it wrote).

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
    expected = Expectation(
        settings=settings,
        environment=run.environment,
        umask=run.umask,
        params={p: run.materials[p] for p in param_files if p in run.materials},
        python=is_python_command(run.command),
    )
    check_receipts(run.stage, expected, run.receipts, required=receipt_required)
    if strict and reads:
        raise UndeclaredInput(
            run.stage,
            f"read undeclared files: {_listing(reads)}",
            hint="declare them as deps of the stage in dvc.yaml",
        )


def _run_wrapped(
    sandbox: Sandbox,
    argv: Sequence[str],
    *,
    view: RepoView,
    writable: Sequence[Bind],
    env: Mapping[str, str],
    cwd: Path,
    host_cwd: Path,
    logs: tuple[Path, Path],
    echo: bool,
    receipt_fd: int,
    umask: int,
) -> tuple[str, Finished, str]:
    """Run ``argv`` sealed by ``sandbox``; return start time, how it finished, finish time."""
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
            cwd=host_cwd,
            stdout_log=logs[0],
            stderr_log=logs[1],
            echo=echo,
            channel=channel,
            pass_fds=(receipt_fd,),
            umask=umask,
        )
    return started_on, finished, _now()


def stage_environment(
    stage: StageSpec,
    *,
    repo: Path,
    settings: DeterminismSettings,
    source_date_epoch: int,
    private: Path = SANDBOX_PRIVATE_DIR,
    host_env: Mapping[str, str] | None = None,
    allowances: SandboxAllowances | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The complete environment a run of ``stage`` starts with (before any variation).

    Args:
        stage: the stage.
        repo: the repository root (resolved).
        settings: the declared determinism settings.
        source_date_epoch: ``SOURCE_DATE_EPOCH``.
        private: the run's private directory as the stage sees it (home, receipts, trace,
            hook); :data:`SANDBOX_PRIVATE_DIR`, the same for every run, in a remapping sandbox.
        host_env: the caller's environment (see :func:`run_sealed`).
        allowances: the stage's allowances (the caller's variables it is passed).
        extra: further variables set by bitwright itself (see :func:`run_sealed`).
    """
    toolchain = toolchain_paths(repo)
    variables = {*settings.environment(), *PROCESS_VARIABLES}
    return sealed_environment(
        settings,
        source_date_epoch=source_date_epoch,
        home=private / "home",
        path_dirs=[str(Path(sys.prefix) / "bin")],
        extra={
            **(extra or {}),
            RECEIPT_ENV: str(private / "receipt.jsonl"),
            TRACE_ENV: str(private / "trace"),
            TRACE_ROOT_ENV: str(repo),
            TRACE_SKIP_ENV: ":".join(str(repo / t) for t in toolchain),
            PARAMS_ENV: ":".join(str(repo / p) for p in stage.param_files),
            CONFIRM_ENV: ":".join(sorted(variables)),
            "PYTHONPATH": str(private / "hook"),
            "PWD": str(repo / posixpath.normpath(stage.wdir)),
            "DVC_SITE_CACHE_DIR": str(private / "dvc-site"),  # DVC's default is /var/tmp
        },
        host=host_env,
        pass_through=allow.passed_variables(allowances or SandboxAllowances()),
    )


def _recorded(runner: RunnerReceipt | None, granted: SandboxAllowances) -> RunnerReceipt | None:
    """The runner receipt as a link records it: allowed variables' values as digests."""
    if runner is None:
        return None
    env = allow.recorded_environment(runner.env, granted)
    return RunnerReceipt(pid=runner.pid, umask=runner.umask, env=env)


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
