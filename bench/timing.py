"""Timing helpers of the benchmarks: the best of some runs of a call or of a command."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def best_call(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_command(command: list[str], repeat: int) -> float:
    """The fastest of ``repeat`` runs of ``command`` (start-up included), in seconds."""
    return best_call(lambda: subprocess.run(command, capture_output=True, check=False), repeat)
