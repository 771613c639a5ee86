"""``bitwright verify RELEASE``: check a release's signatures, in-toto chain and digests.

Trusts only what the command line gives it: ``--key`` public keys, a ``--trust`` file, and
keyless signers as ``--identity`` / ``--issuer`` pairs (with ``--trust-config`` for a private
sigstore instance). The table of checks goes to stderr, ``--json`` prints the report on
stdout. Exit 0 verified, 1 a check failed, 2 usage, 3 operational.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bitwright.cli.app import PROGRESS_THRESHOLD, app, byte_progress, emit_json, stderr
from bitwright.digest import BackgroundTreeDigest, walk_tree
from bitwright.errors import ExitCode, UsageError
from bitwright.release.layout import ReleaseLayout
from bitwright.verify.report import CheckStatus, VerifyReport

if TYPE_CHECKING:
    from bitwright.attest.trust import TrustPolicy

__all__ = ["trust_policy", "verify_command"]


_STYLE = {
    CheckStatus.PASSED: "green",
    CheckStatus.FAILED: "bold red",
    CheckStatus.SKIPPED: "yellow",
}


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
    release: Annotated[Path, typer.Argument(help="The release directory.")],
    key: Annotated[
        list[Path] | None,
        typer.Option("--key", help="A trusted public key (PEM); repeat for more."),
    ] = None,
    trust: Annotated[
        Path | None, typer.Option("--trust", help="A trust file (keys, identities, trust_config).")
    ] = None,
    identity: Annotated[
        list[str] | None,
        typer.Option("--identity", help="A trusted keyless signer (certificate identity)."),
    ] = None,
    issuer: Annotated[
        list[str] | None,
        typer.Option("--issuer", help="The OIDC issuer of the --identity at the same position."),
    ] = None,
    trust_config: Annotated[
        Path | None,
        typer.Option(
            "--trust-config", help="Sigstore trust config or trusted_root.json (offline)."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a release without rebuilding it: signatures, in-toto chain, artifact digests."""
    with _hashing(release) as digests:  # from here on, the rest overlaps the hashing
        policy = trust_policy(key or [], trust, identity or [], issuer or [], trust_config)
        from bitwright.verify.verify import verify_release

        report = verify_release(release, policy, digests=digests)
    _print_table(report)
    if json_out:
        emit_json(report.to_json())
    failure = report.first_failure
    if report.ok:
        stderr.print(f"[green]verified[/] {escape(report.release)}")
        return
    if failure is not None:
        line = f"{failure.name}: {failure.detail}"
        line += f" (hint: {failure.hint})" if failure.hint else ""
    else:
        line = "a mandatory check did not run"
    stderr.print(f"[bold red]verification failed:[/] {escape(line)}", markup=True)
    raise typer.Exit(int(ExitCode.CHECK_FAILED))


@contextmanager
def _hashing(release: Path) -> Iterator[BackgroundTreeDigest | None]:
    """Start hashing the release's artifacts; a progress bar on a terminal when they are large.

    Yields None when there is no ``artifacts/`` (the verifier then says what is missing).
    """
    artifacts = ReleaseLayout(release).artifacts
    if not artifacts.is_dir():
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


def _print_table(report: VerifyReport) -> None:
    table = Table(title=f"bitwright verify {escape(report.release)}", title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        style = _STYLE[check.status]
        table.add_row(check.name, f"[{style}]{check.status.value}[/]", escape(check.detail))
    stderr.print(table)
