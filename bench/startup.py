"""Benchmark: how long every ``bitwright`` command takes to start, as a command.

Each command is timed as a whole process (interpreter start-up and imports included) with
``--help``, which does everything a command does before its work starts (parse the command
line, import the command's module) and nothing more; ``--version`` and the top-level
``--help`` too. Peers measured in the same run: ``python -c pass`` (the interpreter alone)
and ``python -c "import typer"`` (the command-line library alone). Median of ``--repeat``.

    .venv/bin/python bench/startup.py [--repeat 15]

Goal (printed, never asserted): every command starts within 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
GOAL = 0.3
COMMANDS = ("keygen", "build", "stage", "release", "verify", "rebuild", "params", "digest")


def median_seconds(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    bitwright = str(BIN / "bitwright")
    rows = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "bitwright --version": [bitwright, "--version"],
        "bitwright --help": [bitwright, "--help"],
        **{f"bitwright {name} --help": [bitwright, name, "--help"] for name in COMMANDS},
    }
    for argv in rows.values():  # warm the page cache and the bytecode caches
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    results = {label: median_seconds(argv, args.repeat) for label, argv in rows.items()}
    baseline = results["python -c pass"]
    print(f"{'command':<32}{'median s':>10}{'x python':>10}  goal <= {GOAL} s")
    for label, seconds in results.items():
        verdict = (
            "" if not label.startswith("bitwright") else ("meets" if seconds <= GOAL else "misses")
        )
        print(f"{label:<32}{seconds:>10.3f}{seconds / baseline:>10.1f}  {verdict}")
    slowest = max((s, label) for label, s in results.items() if label.startswith("bitwright"))
    print(f"slowest bitwright start-up: {slowest[1]} {slowest[0]:.3f} s")


if __name__ == "__main__":
    main()
