"""``bitwright verify RELEASE``: check a release's signatures, in-toto chain and every file.

Trusts only what the command line gives it: ``--key`` public keys, a ``--trust`` file, and
keyless signers as ``--identity`` / ``--issuer`` pairs (with ``--trust-config`` for a private
sigstore instance). What the verifier expects of the release (``--source-uri``, ``--commit``
or ``--ref``, ``--not-before``, ``--require-clean``, ``--require-signed-source``) is the
``binding`` check. The table of checks, what was released and any warning go to stderr;
``--json`` prints the report on stdout. Exit 0 verified, 1 a check failed, 2 usage,
3 operational (a file that cannot be read, larger than the limits...).

The artifacts start hashing in a child process before the verifier's own imports, so that
the two overlap.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bitwright.cli.app import PROGRESS_THRESHOLD, app, byte_progress, emit_json, stderr
from bitwright.cli.options import KeyOption, TrustOption
from bitwright.errors import ExitCode, UsageError
from bitwright.release.layout import ReleaseLayout
from bitwright.verify.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from bitwright.attest.trust import TrustPolicy
    from bitwright.digest import BackgroundTreeDigest
    from bitwright.verify.report import VerifyReport

__all__ = ["trust_policy", "verify_command"]

_STYLE = {"passed": "green", "failed": "bold red", "skipped": "yellow"}


def trust_policy(
    keys: list[Path],
    trust_file: Path | None,
    identities: list[str],
    issuers: list[str],
    trust_config: Path | None,
) -> TrustPolicy:
    """Combine the trust given on the command line into one policy.

    Raises:
        UsageError: nothing trusted, or identities and issuers that do not pair up.
        KeyProblem, OperationalError: a key or the trust file cannot be read.
    """
    from bitwright.attest import load_public_key
    from bitwright.attest.trust import SigstoreIdentity, TrustPolicy, load_trust_file

    if len(identities) != len(issuers):
        raise UsageError(
            f"{len(identities)} --identity but {len(issuers)} --issuer given",
            hint="give each keyless signer as a pair: --identity ID --issuer URL",
        )
    policy = load_trust_file(trust_file) if trust_file is not None else TrustPolicy()
    policy = replace(
        policy,
        keys=(*policy.keys, *(load_public_key(k) for k in keys)),
        identities=(
            *policy.identities,
            *(
                SigstoreIdentity(identity=i, issuer=s)
                for i, s in zip(identities, issuers, strict=True)
            ),
        ),
        trust_config=trust_config or policy.trust_config,
    )
    if not policy.keys and not policy.identities:
        raise UsageError(
            "verify trusts only keys you give it, and none was given",
            hint="pass the owner's public key (--key PUB), a trust file (--trust FILE) or a "
            "keyless signer (--identity ID --issuer URL); never a key from inside the release",
        )
    return policy


@app.command("verify")
def verify_command(
    release: Annotated[Path, typer.Argument(help="The release directory.", metavar="RELEASE")],
    key: KeyOption = None,
    trust: TrustOption = None,
    identity: Annotated[
        list[str] | None,
        typer.Option(
            "--identity", help="A trusted keyless signer (certificate identity).", metavar="ID"
        ),
    ] = None,
    issuer: Annotated[
        list[str] | None,
        typer.Option(
            "--issuer",
            help="The OIDC issuer of the --identity at the same position.",
            metavar="URL",
        ),
    ] = None,
    trust_config: Annotated[
        Path | None,
        typer.Option(
            "--trust-config",
            help="Sigstore trust config or trusted_root.json (offline).",
            metavar="FILE",
        ),
    ] = None,
    source_uri: Annotated[
        str | None,
        typer.Option(
            "--source-uri", help="The release must be built from this repository.", metavar="URI"
        ),
    ] = None,
    commit: Annotated[
        str | None,
        typer.Option(
            "--commit", help="The release must be built from this full commit id.", metavar="SHA"
        ),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option(
            "--ref",
            help="... or from the commit this branch or tag names now (git ls-remote).",
            metavar="REF",
        ),
    ] = None,
    not_before: Annotated[
        str | None,
        typer.Option(
            "--not-before",
            help="The build must have finished at or after this date (ISO 8601).",
            metavar="DATE",
        ),
    ] = None,
    require_clean: Annotated[
        bool, typer.Option("--require-clean", help="Refuse a release built from a dirty tree.")
    ] = False,
    require_signed_source: Annotated[
        Path | None,
        typer.Option(
            "--require-signed-source",
            help="The source commit must be SSH-signed by a key of this allowed-signers file.",
            metavar="ALLOWED_SIGNERS",
        ),
    ] = None,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing", help="Accept a release without AI BOM or model.sig (warns)."
        ),
    ] = False,
    max_document_bytes: Annotated[
        int,
        typer.Option(
            "--max-document-bytes",
            help="Largest link, layout, provenance, signature accepted.",
            metavar="N",
            min=1,
        ),
    ] = DEFAULT_LIMITS.document_bytes,
    max_aibom_bytes: Annotated[
        int, typer.Option("--max-aibom-bytes", help="Largest AI BOM accepted.", metavar="N", min=1)
    ] = DEFAULT_LIMITS.aibom_bytes,
    max_json_depth: Annotated[
        int,
        typer.Option("--max-json-depth", help="Deepest JSON nesting accepted.", metavar="N", min=1),
    ] = DEFAULT_LIMITS.json_depth,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a release without rebuilding it: signatures, in-toto chain, every file."""
    with _hashing(release) as digests:  # from here on, the rest overlaps the hashing
        from bitwright.verify.binding import Expectations, parse_date
        from bitwright.verify.verify import verify_release

        expected = Expectations(  # the command line first: a usage error before any file
            source_uri=source_uri,
            commit=commit,
            ref=ref,
            not_before=parse_date(not_before) if not_before is not None else None,
            require_clean=require_clean,
            allowed_signers=require_signed_source,
        )
        policy = trust_policy(key or [], trust, identity or [], issuer or [], trust_config)
        report = verify_release(
            release,
            policy,
            digests=digests,
            limits=Limits(max_document_bytes, max_aibom_bytes, max_json_depth),
            expected=expected,
            allow_missing=allow_missing,
            trusted_files=[*(key or []), *([trust] if trust else [])],
            aibom_in_child=True,
        )
    _print_report(report)
    if json_out:
        emit_json(report.to_json())
    if report.ok:
        stderr.print(f"[green]verified[/] {_escape(report.release)}")
        return
    failure = report.first_failure
    if failure is not None:
        line = f"{failure.name}: {failure.detail}"
        line += f" (hint: {failure.hint})" if failure.hint else ""
    else:
        line = f"{', '.join(report.missing_required)} did not run"
    stderr.print(f"[bold red]verification failed:[/] {_escape(line)}")
    raise typer.Exit(int(ExitCode.CHECK_FAILED))


@contextmanager
def _hashing(release: Path) -> Iterator[BackgroundTreeDigest | None]:
    """Start hashing the release's artifacts; a progress bar on a terminal when they are large.

    Yields None when there is no ``artifacts/`` directory (the verifier then says so).
    """
    from bitwright.digest import BackgroundTreeDigest, walk_tree

    artifacts = ReleaseLayout(release).artifacts
    if not artifacts.is_dir() or artifacts.is_symlink():
        yield None
        return
    total = sum(entry.size for entry in walk_tree(artifacts)) if stderr.is_terminal else 0
    if total <= PROGRESS_THRESHOLD:
        with BackgroundTreeDigest(artifacts) as digests:
            yield digests
        return
    with byte_progress() as progress:
        task = progress.add_task("hashing artifacts", total=total)
        with BackgroundTreeDigest(artifacts, lambda n: progress.advance(task, n)) as digests:
            yield digests


def _print_report(report: VerifyReport) -> None:
    from rich.table import Table

    table = Table(title=f"bitwright verify {_escape(report.release)}", title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        style = _STYLE[check.status.value]
        table.add_row(check.name, f"[{style}]{check.status.value}[/]", _escape(check.detail))
    stderr.print(table)
    facts = report.source
    if facts is not None:
        built = facts.finished_on or facts.started_on or "an unrecorded time"
        stderr.print(f"source:  {_escape(facts.repository)} at {facts.commit} ({facts.signature})")
        stderr.print(f"builder: {_escape(facts.builder)}, finished {built}")
    for warning in report.warnings:
        stderr.print(f"[yellow]warning:[/] {_escape(warning)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
