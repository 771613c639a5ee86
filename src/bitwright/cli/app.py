"""The typer application every command module registers on, and its shared output helpers."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

__all__ = ["PROGRESS_THRESHOLD", "app", "byte_progress", "emit_json", "stage_app", "stderr"]

app = typer.Typer(
    name="bitwright",
    help="Reproducible, attested model builds: build, release, verify, rebuild, gate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stage_app = typer.Typer(help="Run one pipeline stage sealed (what dvc.yaml cmds wrap).")
app.add_typer(stage_app, name="stage")

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
"""Progress, summaries and errors go to stderr; stdout is kept for data (``--json``, digests)."""


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (the ``--json`` output of every command)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


PROGRESS_THRESHOLD = 256 << 20
"""Inputs larger than this (bytes) get a progress bar, on a terminal."""


def byte_progress() -> Progress:
    """A transient progress bar of bytes processed, on stderr."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    )
