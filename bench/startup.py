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
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
GOAL = 0.3
COMMANDS = ("keygen", "build", "stage", "release", "verify", "rebuild", "params", "digest")


def median_seconds(argv: list[str], repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of running ``argv`` ``repeat`` times."""
    walls, cpus = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(child.pid, 0)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
        child.returncode = 0  # reaped by wait4
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    bitwright = str(BIN / "bitwright")
    with tempfile.NamedTemporaryFile() as small:
        small.write(b"x" * 4096)
        small.flush()
        rows = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import typer'": [sys.executable, "-c", "import typer"],
            "bitwright --version": [bitwright, "--version"],
            "bitwright --help": [bitwright, "--help"],
            **{f"bitwright {name} --help": [bitwright, name, "--help"] for name in COMMANDS},
            "bitwright digest FILE": [bitwright, "digest", "--no-cache", small.name],
        }
        for argv in rows.values():  # warm the page cache and the bytecode caches
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        results = {label: median_seconds(argv, args.repeat) for label, argv in rows.items()}
    wall0, cpu0 = results["python -c pass"]
    print(f"{'command':<30}{'wall s':>9}{'cpu s':>9}{'cpu x python':>14}  goal <= {GOAL} s")
    for label, (wall, cpu) in results.items():
        verdict = ""
        if label.startswith("bitwright"):
            verdict = "meets" if wall <= GOAL else "misses (wall)" if cpu <= GOAL else "misses"
        print(f"{label:<30}{wall:>9.3f}{cpu:>9.3f}{cpu / max(cpu0, 1e-3):>14.1f}  {verdict}")
    ours = {label: v for label, v in results.items() if label.startswith("bitwright")}
    slowest = max(ours, key=lambda label: ours[label][0])
    print(
        f"slowest bitwright start-up: {slowest}, {ours[slowest][0]:.3f} s wall, "
        f"{ours[slowest][1]:.3f} s cpu; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
