"""Command-line options that several commands share, typed once.

The commands that check or rebuild a release (``verify``, ``rebuild``, ``nightly``,
``bisect``) take the trust and the source of a release the same way; their options are
declared here so they read and behave alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["DataRemoteOption", "KeyOption", "SourceOption", "TrustOption"]

KeyOption = Annotated[
    list[Path] | None,
    typer.Option("--key", help="A trusted public key (PEM); repeat for more.", metavar="PUB"),
]
TrustOption = Annotated[
    Path | None,
    typer.Option("--trust", help="A trust file (keys, identities, trust_config).", metavar="FILE"),
]
SourceOption = Annotated[
    str | None,
    typer.Option("--source", help="Clone the source from this path or URL.", metavar="URL"),
]
DataRemoteOption = Annotated[
    str | None,
    typer.Option("--data-remote", help="Fetch DVC data from this remote URL.", metavar="URL"),
]
