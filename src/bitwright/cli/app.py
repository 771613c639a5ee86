"""The typer application every command module registers on, and its shared output helpers.

Help is plain text in click's layout, written here rather than by typer's rich renderer:
``bitwright --help`` lists the commands from :mod:`.commands` without importing them (a
start-up of a tenth of a second, not one), and every command's help shows each option once
with its value's name (``--key PUB``), without type tags (``<bool>``) or braces.

Global options (``--verbose``, ``--version``) are taken from the command line by
:mod:`.main` wherever they stand; they are declared here so that help lists them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = [
    "GLOBAL_OPTIONS",
    "PROGRESS_THRESHOLD",
    "BitwrightCommand",
    "app",
    "byte_progress",
    "emit_json",
    "stage_app",
    "stderr",
]


class BitwrightCommand(TyperCommand):
    """A command whose usage and help name every value once and plainly."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] RELEASE``: arguments by their metavar, optional ones in brackets."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = _metavar(param)
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """List arguments, then options, each with its help and default."""
        params = self.get_params(ctx)
        arguments = [
            (_metavar(p), str(getattr(p, "help", None) or ""))
            for p in params
            if p.param_type_name == "argument"
        ]
        options = [_option_row(p) for p in params if p.param_type_name == "option"]
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class BitwrightGroup(TyperGroup):
    """The ``bitwright`` group: its help lists every command without importing any.

    The global options are taken from the command line by :mod:`.main` wherever they stand,
    so they are not parameters of the group (which would make typer build its parameter
    adapters, and import pydantic, for a mere ``--help``); the help lists them here.
    """

    def get_help_option(self, ctx: Any) -> Any:
        """``--help``, defaulting to False: an absent flag then needs no value coercion.

        typer coerces every parameter value that is not already a bool through a pydantic
        adapter; an absent ``--help`` would otherwise import pydantic for the group alone.
        """
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """The global options, then the group's own (``--help``)."""
        rows = [(name, text) for name, text in GLOBAL_OPTIONS] if ctx.parent is None else []
        rows += [row for p in self.get_params(ctx) if (row := p.get_help_record(ctx))]
        if rows:
            with formatter.section("Options"):
                formatter.write_dl(rows)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """At the top, the command table of :mod:`.commands`; below, the registered ones."""
        if ctx.parent is not None:
            super().format_commands(ctx, formatter)
            return
        from bitwright.cli.commands import summaries

        with formatter.section("Commands"):
            formatter.write_dl(list(summaries().items()))


GLOBAL_OPTIONS = (
    ("--verbose", "With an error, show its traceback (before or after COMMAND)."),
    ("--version", "Print the version and exit."),
)
"""Options of every command, taken by :mod:`.main` wherever they stand before ``--``."""


class _App(typer.Typer):
    """A Typer whose commands are :class:`BitwrightCommand` unless they ask otherwise."""

    def command(self, *args: Any, cls: Any = None, **kwargs: Any) -> Callable[[Any], Any]:
        return super().command(*args, cls=cls or BitwrightCommand, **kwargs)


_SETTINGS = {"help_option_names": ["--help", "-h"], "max_content_width": 100}

app = _App(
    name="bitwright",
    help="Reproducible, attested model builds: build, release, verify, rebuild.",
    cls=BitwrightGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=_SETTINGS,
)
stage_app = _App(
    help="Run one pipeline stage sealed (what dvc.yaml cmds wrap).",
    cls=BitwrightGroup,
    rich_markup_mode=None,
    add_completion=False,
    context_settings=_SETTINGS,
)
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
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    )


def _metavar(param: Any) -> str:
    return str(param.metavar or param.name.upper())


def _option_row(param: Any) -> tuple[str, str]:
    # short names first, as click lists them: the order a name reached the option in can vary
    # from run to run (the help option's), the help text may not
    names = ", ".join(
        sorted([*param.opts, *param.secondary_opts], key=lambda o: o.startswith("--"))
    )
    if not param.is_flag:
        names += f" {_metavar(param)}"
    help_text = param.help or ""
    default = param.default
    shown = default.value if isinstance(default, Enum) else default
    if not param.is_flag and shown not in (None, "", (), []) and param.show_default is not False:
        help_text += f"  [default: {shown}]"
    return names, help_text
