"""``bitwright vsa add RELEASE VSA...``: keep rebuilders' verdicts with the release they judge.

Each VSA's subjects must be exactly the release's artifacts (names and sha256); then it is
copied into ``RELEASE/verdicts/`` for ``bitwright gate`` to count. Exit 0 added, 1 a VSA is
for other artifacts (nothing added), 3 unreadable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bitwright.cli.app import app, emit_json, stderr

__all__ = ["vsa_add_command", "vsa_app"]

vsa_app = typer.Typer(help="Verdicts (SLSA VSAs) of independent rebuilders.")
app.add_typer(vsa_app, name="vsa")


@vsa_app.command("add")
def vsa_add_command(
    release: Annotated[Path, typer.Argument(help="The release directory.")],
    vsas: Annotated[list[Path], typer.Argument(help="VSA files (vsa.intoto.json).")],
    json_out: Annotated[bool, typer.Option("--json", help="Machine output on stdout.")] = False,
) -> None:
    """Check each VSA's subjects against the release and keep it in RELEASE/verdicts/."""
    from bitwright.digest import digest_tree
    from bitwright.errors import OperationalError
    from bitwright.gate.verdicts import add_verdicts
    from bitwright.release.layout import ReleaseLayout

    artifacts = ReleaseLayout(release).artifacts
    if not artifacts.is_dir():
        raise OperationalError(
            f"{artifacts} not found", hint="pass a release directory (bitwright release)"
        )
    written = add_verdicts(release, digest_tree(artifacts).files, vsas)
    if json_out:
        emit_json({"added": [str(p) for p in written]})
    for path in written:
        stderr.print(f"[green]added[/] {escape(str(path))}")
