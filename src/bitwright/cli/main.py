"""Entry point of the ``bitwright`` console script: the command-line contract, for every command.

* Exit codes (DESIGN.md): 0 success, 1 the check said no, 2 usage error, 3 operational
  error. An error that is no :class:`~bitwright.errors.BitwrightError` (a library failing in
  a way bitwright did not foresee) is operational too, never 1.
* Every failure is one line on stderr, ``error: WHAT (hint: WHAT NEXT)``; the traceback
  only with ``--verbose``.
* With ``--json``, a failure also prints one JSON object on stdout:
  ``{"ok": false, "error": {"exit_code", "kind", "message", "hint"}}``.
* ``--verbose`` and ``--version`` work before or after the command (not after ``--``).

``bitwright stage run`` under a build is answered before anything heavy is imported: the
build process runs the stage (:mod:`._stage_client`). ``--version`` imports nothing, and a
plain ``bitwright digest PATH...`` runs without typer (:mod:`.digest_run`).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["main", "run"]

_USAGE, _OPERATIONAL, _INTERRUPTED = 2, 3, 130


@dataclass(frozen=True)
class _Failure:
    exit_code: int
    kind: str
    message: str
    hint: str


def run() -> None:
    """Run the CLI with ``sys.argv`` and exit with its status."""
    argv = sys.argv[1:]
    if argv[:2] == ["stage", "run"]:
        from bitwright.cli._stage_client import forward

        code = forward(argv[2:])
        if code is not None:
            sys.exit(code)
    sys.exit(main(argv))


def main(argv: Sequence[str]) -> int:
    """Run the command in ``argv``; return its exit status (errors already reported)."""
    # pydantic scans every installed distribution for plugins on its first model; bitwright's
    # models want none (a plugin observing a verification is not wanted either).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    args, verbose, version = _global_options(argv)
    if version:
        from bitwright import __version__

        sys.stdout.write(f"bitwright {__version__}\n")
        return 0
    try:
        return _invoke(args)
    except SystemExit as done:  # typer.Exit and sys.exit inside commands
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException as exc:  # noqa: BLE001  (every failure becomes one line and a code)
        failure = _failure(exc)
        if verbose:
            traceback.print_exception(exc, file=sys.stderr)
        _report(failure, json_mode=_json_requested(args))
        return failure.exit_code


def _invoke(args: list[str]) -> int:
    if args[:1] == ["digest"]:
        from bitwright.cli.digest_run import fast_arguments, run_digest

        plain = fast_arguments(args[1:])
        if plain is not None:  # no typer: a cached pass takes milliseconds
            paths, as_json, no_cache = plain
            run_digest(paths, as_json=as_json, no_cache=no_cache)
            return 0
    from bitwright.cli.app import app
    from bitwright.cli.commands import register

    register(args)
    code = app(args=args, prog_name="bitwright", standalone_mode=False)
    return code if isinstance(code, int) else 0


def _global_options(argv: Sequence[str]) -> tuple[list[str], bool, bool]:
    """Take ``--verbose`` and ``--version`` out of ``argv`` wherever they stand before ``--``."""
    args: list[str] = []
    verbose = version = False
    for index, arg in enumerate(argv):
        if arg == "--":
            args.extend(argv[index:])
            break
        if arg == "--verbose":
            verbose = True
        elif arg == "--version":
            version = True
        else:
            args.append(arg)
    return args, verbose, version


def _json_requested(args: Sequence[str]) -> bool:
    end = args.index("--") if "--" in args else len(args)
    return "--json" in args[:end]


def _failure(exc: BaseException) -> _Failure:
    from bitwright.errors import BitwrightError

    if isinstance(exc, BitwrightError):
        return _Failure(int(exc.exit_code), type(exc).__name__, exc.message, exc.hint)
    if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "Abort":
        return _Failure(_INTERRUPTED, "Interrupted", "interrupted", "")
    if _is_usage_error(exc):
        return _usage_failure(exc)
    return _Failure(
        _OPERATIONAL,
        "InternalError",
        f"unexpected {type(exc).__name__}: {exc}",
        "this is a bug in bitwright or a library it uses; run again with --verbose and "
        "report the traceback",
    )


def _is_usage_error(exc: BaseException) -> bool:
    # click's exceptions (vendored by typer) by their documented interface, not their module.
    return isinstance(getattr(exc, "exit_code", None), int) and callable(
        getattr(exc, "format_message", None)
    )


def _usage_failure(exc: Any) -> _Failure:
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "bitwright"
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        sys.stderr.write(ctx.get_help() + "\n")  # the help is the answer: no error line
        return _Failure(_USAGE, "UsageError", "", "")
    message = str(exc.format_message())
    code = exc.exit_code if exc.exit_code in (_USAGE, _OPERATIONAL) else _USAGE
    return _Failure(code, "UsageError", message, f"see '{path} --help'")


def _report(failure: _Failure, *, json_mode: bool) -> None:
    message = " ".join(failure.message.split())
    hint = " ".join(failure.hint.split())
    if message:
        line = f"{message} (hint: {hint})" if hint else message
        prefix = "\x1b[1;31merror:\x1b[0m" if sys.stderr.isatty() else "error:"
        sys.stderr.write(f"{prefix} {line}\n")
        sys.stderr.flush()
    if json_mode:
        error = {
            "exit_code": failure.exit_code,
            "kind": failure.kind,
            "message": message,
            "hint": hint,
        }
        sys.stdout.write(json.dumps({"ok": False, "error": error}, indent=2, sort_keys=True))
        sys.stdout.write("\n")
        sys.stdout.flush()
