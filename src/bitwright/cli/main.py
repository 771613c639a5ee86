"""Entry point of the ``bitwright`` console script: wires commands, maps errors to exit codes.

``bitwright stage run`` under a build is answered before anything heavy is imported: the
build process runs the stage (:mod:`._stage_client`).
"""

from __future__ import annotations

import sys

__all__ = ["run"]


def run() -> None:
    """Run the CLI; a :class:`BitwrightError` becomes one line on stderr and its exit code."""
    if sys.argv[1:3] == ["stage", "run"]:
        from bitwright.cli._stage_client import forward

        code = forward(sys.argv[3:])
        if code is not None:
            sys.exit(code)
    _run_app()


def _run_app() -> None:
    import typer
    from rich.markup import escape
    from typer._click import exceptions as click_exceptions  # typer 0.29 vendors its own click

    from bitwright.cli.app import app, stderr
    from bitwright.cli.commands import register
    from bitwright.errors import BitwrightError, ExitCode

    verbose = "--verbose" in sys.argv[1:]
    if verbose:
        sys.argv.remove("--verbose")
    register(sys.argv[1:])
    try:
        # Non-standalone mode returns the code of a typer.Exit instead of exiting.
        code = app(standalone_mode=False)
    except BitwrightError as exc:
        if verbose:
            stderr.print_exception()
        stderr.print(f"[bold red]error:[/] {escape(exc.diagnostics())}", markup=True)
        sys.exit(int(exc.exit_code))
    except SystemExit:
        raise
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)
    except click_exceptions.UsageError as exc:
        exc.show()
        sys.exit(int(ExitCode.USAGE))
    except typer.Abort:
        sys.exit(130)
    except click_exceptions.ClickException as exc:
        exc.show()
        sys.exit(int(ExitCode.USAGE))
    sys.exit(code if isinstance(code, int) else 0)
