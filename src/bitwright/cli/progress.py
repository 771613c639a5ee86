"""Progress of long commands (build, rebuild, nightly, bisect) on stderr.

On a terminal, and unless ``--json`` asked for machine output, a live line (rich) shows the
current step, how many of the known steps are done and the time spent, while every step
line is printed above it; elsewhere (CI logs, pipes) each step is one plain line and nothing
redraws. The library reports steps through its ``notify`` callback only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from bitwright.cli.app import stderr

__all__ = ["live_progress", "progress_wanted"]

_COUNT = re.compile(r"\b(\d+)/(\d+)\b")
"""``variation 3/9``, ``trial 2/5``: a step line that says how far along the work is."""


def progress_wanted(json_out: bool) -> bool:
    """Whether to draw live progress: on a terminal, and not for machine output."""
    return stderr.is_terminal and not json_out


@contextmanager
def live_progress(title: str, *, json_out: bool) -> Iterator[Callable[[str], None]]:
    """A ``notify`` callback for a long command: live on a terminal, plain lines elsewhere."""
    if not progress_wanted(json_out):
        yield lambda line: stderr.print(f"bitwright: {escape(line)}", highlight=False)
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as progress:
        task = progress.add_task(title, total=None)

        def notify(line: str) -> None:
            progress.console.print(f"[dim]bitwright:[/] {escape(line)}", highlight=False)
            found = _COUNT.search(line)
            if found:
                done, total = int(found.group(1)), int(found.group(2))
                progress.update(task, completed=max(done - 1, 0), total=total)
            progress.update(task, description=f"{title}: {line[:48]}")

        yield notify
