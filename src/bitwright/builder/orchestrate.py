"""``bitwright build``: preflight, ``dvc repro`` with every stage sealed and linked, layout."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bitwright.attest import build_layout, load_signer, write_layout
from bitwright.attest.keys import Signer
from bitwright.attest.signers import AttestationSigner, KeySigner
from bitwright.builder.context import CONTEXT_ENV, BuildContext, with_variation, write_context
from bitwright.builder.data import dvc_environment, dvc_executable
from bitwright.builder.linkstore import LinkStore, StageNow, reuse_stored
from bitwright.builder.paths import ProjectPaths
from bitwright.builder.preflight import preflight, utc_now
from bitwright.builder.provenance import write_build_provenance
from bitwright.builder.recovery import recovered_build
from bitwright.builder.stage import stage_materials
from bitwright.builder.stageserver import StageServer
from bitwright.builder.thirdparty import third_party_inputs
from bitwright.digest import digest_artifacts, memory_cache
from bitwright.errors import (
    BitwrightError,
    OperationalError,
    ReceiptMismatch,
    StageFailed,
    ToolError,
    UndeclaredInput,
    UsageError,
)
from bitwright.fileio import read_json_object
from bitwright.model import Pipeline, SandboxKind
from bitwright.model.variation import Variation
from bitwright.pins import ci_identity
from bitwright.pipeline import load_pipeline
from bitwright.project import load_project_config, require_committed_config
from bitwright.runner import detect_sandbox, stage_environment
from bitwright.runner.allowances import recorded_environment

__all__ = ["LAYOUT_VALIDITY", "BuildResult", "build"]

LAYOUT_VALIDITY = dt.timedelta(days=365)
"""How long a build's layout stays valid for verifiers."""

Notify = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    """A finished build.

    Attributes:
        context: what the build pinned.
        links: the stage name -> its link in ``.bitwright/attestations/links``.
        ran: stages whose command ran in this build.
        reused: stages DVC skipped or restored, linked by the run that made their outputs.
        layout: the signed layout.
        provenance: the signed SLSA provenance.
        finished_on: RFC 3339 UTC finish time.
        unpinned: stage -> third-party files it read that no TOFU pin covers.
    """

    context: BuildContext
    links: dict[str, Path]
    ran: tuple[str, ...]
    reused: tuple[str, ...]
    layout: Path
    provenance: Path
    finished_on: str
    unpinned: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _dvc_env(context_file: Path, serving: Mapping[str, str]) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return dvc_environment({**serving, CONTEXT_ENV: str(context_file), "PATH": path})


def build(
    repo: Path,
    *,
    key_path: Path | None = None,
    allow_dirty: bool = False,
    strict: bool = False,
    force: bool = False,
    sandbox: SandboxKind | None = None,
    identity_token: str | None = None,
    keyless: bool = False,
    notify: Notify = lambda _: None,
    variation: Variation | None = None,
    quiet_tools: bool = False,
) -> BuildResult:
    """Build the pipeline of ``repo`` with every stage sealed and linked, and sign its layout.

    The links and layout are signed with the key; the provenance too, unless ``keyless``, when
    sigstore signs it with the ambient OIDC identity or ``identity_token``. A ``variation``
    (a nightly rebuild's) is applied to every stage and its knobs are declared in the pins.
    With ``quiet_tools``, DVC's output goes to ``notify`` line by line instead of stderr.
    What a killed build left behind is cleared first (:mod:`.recovery`), and one build runs at
    a time.

    Raises:
        KeyProblem, DirtyTreeError, UsageError: preflight refused to start.
        CheckFailed: a TOFU-pinned input's files differ from their pins.
        StageFailed: a stage failed; no link exists for it.
        ToolError: DVC failed outside any stage.
        OperationalError: another build runs, or a live DVC process holds DVC's lock.
    """
    with recovered_build(ProjectPaths(repo.resolve()), notify):
        return _build(
            repo,
            key_path=key_path,
            allow_dirty=allow_dirty,
            strict=strict,
            force=force,
            sandbox=sandbox,
            identity_token=identity_token,
            keyless=keyless,
            notify=notify,
            variation=variation,
            quiet_tools=quiet_tools,
        )


def _build(
    repo: Path,
    *,
    key_path: Path | None,
    allow_dirty: bool,
    strict: bool,
    force: bool,
    sandbox: SandboxKind | None,
    identity_token: str | None,
    keyless: bool,
    notify: Notify,
    variation: Variation | None,
    quiet_tools: bool,
) -> BuildResult:
    repo = repo.resolve()
    paths = ProjectPaths(repo)
    pipeline = load_pipeline(repo)
    require_committed_config(repo)
    key = key_path or paths.owner_key
    context = preflight(
        repo, key_path=key, allow_dirty=allow_dirty, strict=strict, sandbox=sandbox, notify=notify
    )
    context = with_variation(context, variation)
    notify(f"pinned commit {context.pins.git.commit[:12]}, sandbox {context.sandbox.value}")
    third_party = third_party_inputs(repo, pipeline, context.pins)
    _name_unpinned(third_party.unpinned, notify)
    _clear_attestations(paths, pipeline)
    write_context(context, paths.context_file)

    tools = notify if quiet_tools else None
    ran = _run_pipeline(paths, pipeline, context, force=force, notify=notify, tools=tools)
    links = {n: link for n in pipeline.names if (link := _current_link(paths, n)) is not None}

    signer = load_signer(Path(context.key_path))
    layout_path = _sign_layout(paths, pipeline, context, signer)
    finished_on = utc_now()
    provenance = write_build_provenance(
        paths,
        pipeline,
        context,
        links,
        finished_on=finished_on,
        signer=_provenance_signer(signer, keyless=keyless, identity_token=identity_token),
        ci=ci_identity(os.environ, commit=context.pins.git.commit),
        third_party=third_party.dependencies(),
    )
    notify("signed the layout and the provenance")
    reused = tuple(n for n in pipeline.names if n not in ran)
    return BuildResult(
        context, links, ran, reused, layout_path, provenance, finished_on, third_party.unpinned
    )


def _name_unpinned(unpinned: Mapping[str, Sequence[str]], notify: Notify) -> None:
    """Say which stages read third-party files that no TOFU pin covers (the build goes on)."""
    for stage, files in unpinned.items():
        more = f" and {len(files) - 1} more" if len(files) > 1 else ""
        notify(f"stage {stage} reads unpinned third-party input {files[0]}{more}")


def _sign_layout(
    paths: ProjectPaths, pipeline: Pipeline, context: BuildContext, signer: Signer
) -> Path:
    """Write the owner-signed in-toto layout of ``pipeline``, valid for :data:`LAYOUT_VALIDITY`."""
    layout = build_layout(
        pipeline,
        [signer.public_key],
        expires=dt.datetime.now(dt.UTC).replace(microsecond=0) + LAYOUT_VALIDITY,
        readme=f"bitwright layout of {context.pins.git.remote_url} at {context.pins.git.commit}",
    )
    return write_layout(layout, signer, paths.layout)


def _provenance_signer(
    signer: Signer, *, keyless: bool, identity_token: str | None
) -> AttestationSigner:
    """The key that signed the links, or sigstore with the ambient or given OIDC identity."""
    if keyless or identity_token:
        from bitwright.attest.signers.sigstore_signer import SigstoreSigner  # slow; only here

        return SigstoreSigner(identity_token)
    return KeySigner(signer)


def build_stage(
    repo: Path,
    name: str,
    *,
    key_path: Path,
    sandbox: SandboxKind | None = None,
    notify: Notify = lambda _: None,
    variation: Variation | None = None,
    quiet_tools: bool = False,
) -> Path:
    """Run the one stage ``name`` of ``repo`` sealed and linked, its deps already in place.

    What ``bitwright rebuild --stage`` runs: preflight pins as a build does, then
    ``dvc repro --force --single-item NAME``; no layout or provenance is written.

    Returns:
        The stage's new signed link.

    Raises:
        UsageError: ``dvc.yaml`` has no such stage.
        KeyProblem, DirtyTreeError: preflight refused to start.
        StageFailed: the stage failed; no link exists for it.
        ToolError: DVC failed outside the stage.
        OperationalError: another build runs, or a live DVC process holds DVC's lock.
    """
    with recovered_build(ProjectPaths(repo.resolve()), notify):
        return _build_stage(
            repo,
            name,
            key_path=key_path,
            sandbox=sandbox,
            notify=notify,
            variation=variation,
            quiet_tools=quiet_tools,
        )


def _build_stage(
    repo: Path,
    name: str,
    *,
    key_path: Path,
    sandbox: SandboxKind | None,
    notify: Notify,
    variation: Variation | None,
    quiet_tools: bool,
) -> Path:
    repo = repo.resolve()
    paths = ProjectPaths(repo)
    pipeline = load_pipeline(repo)
    if name not in pipeline.names:
        raise UsageError(
            f"dvc.yaml has no stage {name!r}", hint=f"stages are: {', '.join(pipeline.names)}"
        )
    context = preflight(
        repo, key_path=key_path, allow_dirty=False, strict=False, sandbox=sandbox, notify=notify
    )
    context = with_variation(context, variation)
    paths.links.mkdir(parents=True, exist_ok=True)
    for stale in paths.links.glob(f"{name}.*.link"):
        stale.unlink()
    write_context(context, paths.context_file)
    with StageServer(repo, context) as serving:
        _repro(
            paths,
            ["--force", "--single-item", name],
            notify,
            serving,
            notify if quiet_tools else None,
        )
    link = _current_link(paths, name)
    if link is None:
        raise OperationalError(
            f"stage {name!r} ran but left no link", hint="run `bitwright build --force`"
        )
    return link


def _clear_attestations(paths: ProjectPaths, pipeline: Pipeline) -> None:
    """Remove the last build's attestations: a failed build must not leave them looking current."""
    bundle = paths.attestations / "provenance.sigstore.json"
    for stale in (paths.layout, paths.provenance, bundle, paths.failure_file):
        stale.unlink(missing_ok=True)
    if paths.links.is_dir():
        for link in paths.links.glob("*.link"):
            link.unlink()
    paths.links.mkdir(parents=True, exist_ok=True)


def _current_link(paths: ProjectPaths, stage: str) -> Path | None:
    found = sorted(paths.links.glob(f"{stage}.*.link"))
    return found[0] if found else None


def _run_pipeline(
    paths: ProjectPaths,
    pipeline: Pipeline,
    context: BuildContext,
    *,
    force: bool,
    notify: Notify,
    tools: Notify | None,
) -> tuple[str, ...]:
    """``dvc repro`` with every stage served, then a link for each stage DVC did not run.

    Returns:
        The stages whose command ran in this build.

    Raises:
        OperationalError: a stage still has no link after it was run again.
    """
    with StageServer(paths.repo, context) as serving:
        _repro(paths, ["--force"] if force else [], notify, serving, tools)
        attached, missing = _attach_stored_links(paths, pipeline, context, notify)
        for name in missing:
            _repro(paths, ["--force", "--single-item", name], notify, serving, tools)
        if missing:
            # stages downstream of a rerun that changed its outputs
            _repro(paths, [], notify, serving, tools)
    if missing:
        late, still = _attach_stored_links(paths, pipeline, context, notify)
        if still:
            raise OperationalError(
                f"stage(s) {', '.join(still)} have outputs but no link after a forced rerun",
                hint="run `bitwright build --force`",
            )
        attached += late
    return tuple(n for n in pipeline.names if n not in attached)


def _attach_stored_links(
    paths: ProjectPaths, pipeline: Pipeline, context: BuildContext, notify: Notify
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Give stages without a link the link of the run that made their outputs, if it may.

    A stored link stands as it is when all it attests still holds, or is attested again
    for this build when only the commit moved (see :mod:`.linkstore`). What is compared is
    hashed here, by this process.

    Returns:
        The stages given a stored run's link, and the stages to run again.
    """
    store = LinkStore(paths.link_store)
    signer = load_signer(Path(context.key_path))
    sandbox = detect_sandbox(context.sandbox, image=context.pins.container)
    config = load_project_config(paths.repo)
    attached: list[str] = []
    missing: list[str] = []
    for name in pipeline.topological():
        if _current_link(paths, name) is not None:
            continue
        if context.variation is not None:  # a varied build proves nothing an earlier run did
            notify(f"stage {name}: running it again under variation {context.variation.name}")
            missing.append(name)
            continue
        spec = pipeline.stage(name)
        allowances = config.allowances(name)
        try:
            materials = digest_artifacts(paths.repo, stage_materials(spec), memory_cache())
            products = digest_artifacts(paths.repo, spec.outs, memory_cache())
        except OperationalError:
            missing.append(name)
            continue
        environment = (
            recorded_environment(
                sandbox.adapt_environment(
                    stage_environment(
                        spec,
                        repo=paths.repo,
                        settings=context.pins.determinism,
                        source_date_epoch=context.pins.git.epoch,
                        allowances=allowances,
                    )
                ),
                allowances,
            )
            if sandbox.remaps
            else None
        )
        now = StageNow(
            spec,
            context.pins,
            materials,
            products,
            environment,
            context.sandbox,
            context.strict,
            allowances,
        )
        link, why = reuse_stored(store, now, signer, paths.links)
        if link is None:
            notify(f"stage {name}: running it again: {why}")
            missing.append(name)
        else:
            attached.append(name)
    return tuple(attached), tuple(missing)


def _repro(
    paths: ProjectPaths,
    args: Sequence[str],
    notify: Notify,
    serving: Mapping[str, str],
    output: Notify | None = None,
) -> None:
    """Run ``dvc repro ARGS``; its output goes to stderr, or line by line to ``output``."""
    paths.failure_file.unlink(missing_ok=True)
    command = [*dvc_executable(), "repro", *args]
    notify(f"running {' '.join(['dvc', 'repro', *args])}")
    try:
        proc = subprocess.Popen(
            command,
            cwd=paths.repo,
            env=_dvc_env(paths.context_file, serving),
            stdout=2 if output is None else subprocess.PIPE,
            stderr=None if output is None else subprocess.STDOUT,
            text=output is not None,
            errors="replace",
        )
    except OSError as exc:
        raise ToolError(f"cannot run dvc: {exc}", hint="run `make demo` to install it") from None
    if output is not None and proc.stdout is not None:
        for line in proc.stdout:
            if line.strip():
                output(line.rstrip())
    returncode = proc.wait()
    if returncode != 0:
        raise _failure(paths, returncode)


_FAILURE_LIMIT = 1 << 20  # one error message, never more


def _failure(paths: ProjectPaths, returncode: int) -> BitwrightError:
    unknown = ToolError(
        f"dvc repro failed with exit status {returncode}",
        hint="read DVC's message above; `dvc status` shows the pipeline's state",
    )
    if not paths.failure_file.exists():
        return unknown
    try:
        record = read_json_object(
            paths.failure_file, "a stage's failure record", hint="", limit=_FAILURE_LIMIT
        )
    except BitwrightError:
        return unknown
    texts = [record.get(k) for k in ("kind", "stage", "message")] + [record.get("hint") or ""]
    if not all(isinstance(v, str) for v in texts):
        return unknown
    kind, stage, message, hint = (str(v) for v in texts)
    stage_kinds: dict[str, type[StageFailed]] = {
        "ReceiptMismatch": ReceiptMismatch,
        "UndeclaredInput": UndeclaredInput,
    }
    if record.get("stage_failed"):
        return stage_kinds.get(kind, StageFailed)(stage, message, hint=hint)
    if kind == "UsageError":
        return UsageError(message, hint=hint)
    return OperationalError(message, hint=hint)
