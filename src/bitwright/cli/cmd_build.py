"""``bitwright build``: the maintainer's one command."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bitwright.cli.app import app, emit_json, stderr
from bitwright.cli.progress import live_progress, progress_wanted
from bitwright.model import SandboxKind

__all__ = ["Builder", "build_command"]


class Builder(StrEnum):
    """``--builder``: where the stages run."""

    SANDBOX = "sandbox"
    CONTAINER = "container"

    @property
    def sandbox(self) -> SandboxKind | None:
        """The sandbox every stage runs in: podman for the container, the host's best else."""
        return SandboxKind.PODMAN if self is Builder.CONTAINER else None


@app.command("build")
def build_command(
    key: Annotated[
        Path | None, typer.Option("--key", help="Signing key (default .bitwright/keys/owner.key).")
    ] = None,
    allow_dirty: Annotated[
        bool,
        typer.Option(
            "--allow-dirty", help="Build a dirty tree; the build is marked not rebuildable."
        ),
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail a stage that reads an undeclared input.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Run every stage, even unchanged.")
    ] = False,
    keyless: Annotated[
        bool, typer.Option("--keyless", help="Sign the provenance with sigstore (ambient OIDC).")
    ] = False,
    identity_token: Annotated[
        str | None,
        typer.Option("--identity-token", help="OIDC token for sigstore keyless signing."),
    ] = None,
    builder: Annotated[
        Builder,
        typer.Option(
            "--builder",
            help="sandbox: stages sealed on this host (bubblewrap). container: every stage in "
            "the locked build image, by digest (podman).",
        ),
    ] = Builder.SANDBOX,
    json_out: Annotated[bool, typer.Option("--json", help="Machine output on stdout.")] = False,
    repo: Annotated[Path, typer.Option("--repo", help="Project root.")] = Path("."),
) -> None:
    """Pin inputs, run `dvc repro` with every stage sealed and linked, sign the layout."""
    from bitwright.builder import build  # where used: --help and start-up stay light

    with live_progress("build", json_out=json_out) as notify:
        result = build(
            repo,
            key_path=key,
            allow_dirty=allow_dirty,
            strict=strict,
            force=force,
            sandbox=builder.sandbox,
            keyless=keyless,
            identity_token=identity_token,
            notify=notify,
            quiet_tools=progress_wanted(json_out),
        )
    root = result.layout.parent
    if json_out:
        emit_json(
            {
                "commit": result.context.pins.git.commit,
                "rebuildable": result.context.pins.git.rebuildable,
                "links": {k: str(v) for k, v in result.links.items()},
                "ran": list(result.ran),
                "reused": list(result.reused),
                "layout": str(result.layout),
                "provenance": str(result.provenance),
                "sandbox": result.context.sandbox.value,
                "unpinned": {stage: list(files) for stage, files in result.unpinned.items()},
                "image": result.context.pins.container.digest
                if result.context.pins.container
                else None,
            }
        )
    stderr.print(
        f"[green]built[/] {len(result.links)} stage(s) at commit "
        f"{result.context.pins.git.commit[:12]} "
        f"(ran: {', '.join(result.ran) or 'none'}; reused: {', '.join(result.reused) or 'none'})"
    )
    for stage, files in result.unpinned.items():
        stderr.print(
            f"[yellow]warning:[/] stage {escape(stage)} reads {len(files)} third-party file(s) "
            f"no pin covers, e.g. {escape(files[0])} (hint: bitwright pin add)"
        )
    if not result.context.pins.git.rebuildable:
        stderr.print("[yellow]warning:[/] the tree was dirty: this build is not rebuildable")
    stderr.print(f"links:  {root / 'links'}")
    stderr.print(f"layout: {result.layout}")
    stderr.print(f"provenance: {result.provenance}")
    image = result.context.pins.container
    if image is not None:
        stderr.print(f"image: {image.image}@{image.digest} (every stage ran in it)")
