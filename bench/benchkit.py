"""What the command benchmarks share: their environment, timing a command, the ratio line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bitwright.model import DeterminismSettings

BIN = Path(sys.executable).parent
"""The virtual environment's ``bin``: its bitwright, dvc and python."""

SEALED_ENV = {**DeterminismSettings().environment(), "TZ": "UTC"}
"""The determinism variables a sealed stage starts with (the CPU kernel path among them), for
the plain runs compared with it."""


def bench_env() -> dict[str, str]:
    """The environment of benchmarked commands: no DVC analytics, this venv first, a git user."""
    return {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.org",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.org",
    }


def run(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run a command to its end and return its wall-clock seconds; exit if it fails."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed in {cwd}:\n{done.stderr[-2000:]}")
    return elapsed


def print_ratio(timings: dict[str, list[float]], *, goal: float, subject: str) -> None:
    """Print each method's best and runs, and the ratio of the first method to the second."""
    best = {name: min(values) for name, values in timings.items()}
    print(f"{'method':<18}{'best s':>9}{'runs':>30}")
    for name, values in timings.items():
        runs = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:<18}{best[name]:>9.2f}{runs:>30}")
    ours, theirs = list(best.values())[:2]
    ratio = ours / theirs
    verdict = "meets" if ratio <= goal else "misses"
    print(f"overhead ratio: {ratio:.3f}x {subject} ({verdict} the goal <= {goal:.2f}x)")
