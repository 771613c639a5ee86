"""``bitwright bisect``: the change or commit that breaks a stage's bits.

Two searches:

* ``bitwright bisect RELEASE --key PUB --variation NAME... [--stage S]``: the minimal set of
  the variations' changes (variables, knobs, umask, host name, path) under which the stage
  still differs from the release. ``--history FILE`` instead of ``--variation`` takes the
  variations under which the stage failed on the last night.
* ``bitwright bisect --history FILE --stage S [--good C] [--bad C] [--repo R]``: the first
  commit between the last night the stage reproduced and the first it did not at which its
  products stop being the same when built twice (plainly and under the failing variations).

Exit 0 found, 1 none, 2 usage, 3 operational. ``--json`` prints the result on stdout.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bitwright.cli.app import app, emit_json, stderr
from bitwright.cli.cmd_verify import trust_policy
from bitwright.cli.options import DataRemoteOption, KeyOption, SourceOption, TrustOption
from bitwright.cli.progress import live_progress
from bitwright.errors import ExitCode, UsageError
from bitwright.model.variation import Variation
from bitwright.nightly.bisect import (
    BisectResult,
    CommitBuilder,
    bisect_changes,
    bisect_commits,
    commits_between,
    good_and_bad,
)
from bitwright.nightly.history import read_history
from bitwright.nightly.run import Rebuilder
from bitwright.pins import pin_determinism
from bitwright.pipeline import load_params
from bitwright.runner import detect_sandbox
from bitwright.runner.variations import CATALOG, plan, probe_machine

__all__ = ["bisect_command"]


@app.command("bisect")
def bisect_command(
    release: Annotated[
        Path | None, typer.Argument(help="The release whose stage differs under a variation.")
    ] = None,
    key: KeyOption = None,
    trust: TrustOption = None,
    variation: Annotated[
        list[str] | None,
        typer.Option("--variation", help=f"A failing variation; repeat ({', '.join(CATALOG)})."),
    ] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="The stage to watch.")] = None,
    history: Annotated[
        Path | None, typer.Option("--history", help="A nightly history (history.jsonl).")
    ] = None,
    good: Annotated[str | None, typer.Option("--good", help="A commit that reproduced.")] = None,
    bad: Annotated[str | None, typer.Option("--bad", help="A commit that did not.")] = None,
    repo: Annotated[Path, typer.Option("--repo", help="The repository of the commits.")] = Path(
        "."
    ),
    source: SourceOption = None,
    data_remote: DataRemoteOption = None,
    work: Annotated[Path, typer.Option("--work", help="Where the trial workspaces go.")] = Path(
        "bisect-work"
    ),
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Find the minimal change, or the first commit, that moves a stage's bits."""
    with live_progress("bisect", json_out=json_out) as notify:
        if release is not None:
            policy = trust_policy(key or [], trust, [], [], None)
            names = list(variation or [])
            if not names and history is not None:
                names = _failing_on_last_night(history, stage)
            if not names:
                raise UsageError(
                    "bisect RELEASE needs the failing variation",
                    hint="pass --variation NAME (or --history FILE of the nightly that failed)",
                )
            rebuilder = Rebuilder(release.resolve(), policy, source, data_remote, notify=notify)
            result = bisect_changes(
                rebuilder,
                _variations(names, repo),
                work=work.resolve(),
                stage=stage,
                notify=notify,
            )
        else:
            if history is None or stage is None:
                raise UsageError(
                    "bisect needs RELEASE (to narrow a variation down) or --history and --stage "
                    "(to find a commit)",
                    hint="see `bitwright bisect --help`",
                )
            result = _bisect_history(history, stage, good, bad, repo, variation, work, notify)
    _print(result)
    if json_out:
        emit_json(result.to_json())
    if not result.found:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


def _failing_on_last_night(history: Path, stage: str | None) -> list[str]:
    nights = read_history(history).nights
    if not nights:
        return []
    last = nights[-1]
    return [
        v.name
        for v in last.variations[1:]
        if any(not s.result.reproduced for s in v.stages if stage in (None, s.stage))
    ]


def _variations(names: list[str], repo: Path) -> list[Variation]:
    params = load_params(repo) if (repo / "params.yaml").is_file() else {}
    planned = plan(names, probe_machine(detect_sandbox(None)), pin_determinism(params))
    missing = [p for p in planned if p.variation is None]
    if missing:
        raise UsageError(
            f"variation {missing[0].name} cannot be applied here: {missing[0].reason}",
            hint="bisect on a machine that can apply it",
        )
    return [p.variation for p in planned if p.variation is not None]


def _bisect_history(
    history: Path,
    stage: str,
    good: str | None,
    bad: str | None,
    repo: Path,
    variation: list[str] | None,
    work: Path,
    notify: Callable[[str], None],
) -> BisectResult:
    nights = read_history(history).nights
    failing: tuple[str, ...] = ()
    if good is None or bad is None:
        found_good, found_bad, failing = good_and_bad(nights, stage)
        good, bad = good or found_good, bad or found_bad
    names = list(variation or [n for n in failing if n in CATALOG])
    varied = Variation.combine("+".join(names), _variations(names, repo)) if names else None
    commits = commits_between(repo, good, bad)
    notify(f"{len(commits)} commit(s) after {good[:12]} up to {bad[:12]}")
    builder = CommitBuilder(repo.resolve(), work.resolve(), varied, notify)
    return bisect_commits(builder, commits, stage)


def _print(result: BisectResult) -> None:
    for trial in result.trials:
        stderr.print(f"tried {escape(', '.join(trial.tried) or 'nothing')}: {trial.result}")
    for moved in result.moved:
        stderr.print(f"moved: {escape(moved.describe())}")
    style = "bold red" if result.found else "yellow"
    word = "FOUND" if result.found else "NONE"
    stderr.print(f"[{style}]{word}[/]: {escape(result.reason)}")
