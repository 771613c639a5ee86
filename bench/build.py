"""Benchmark: the overhead of `bitwright build` over plain `dvc repro` of the same pipeline.

Two clones of this repository at HEAD are made in a temporary directory. One runs
``bitwright build --force`` (every stage sealed, receipts checked, links signed, layout and
provenance written); the other runs ``dvc repro --force`` of the same ``dvc.yaml`` with the
``bitwright stage run NAME --`` wrappers removed, in the same determinism environment (one
thread, the same MKL, hash and CPU kernel path settings), so both do the same training work.
Each is run ``--repeat`` times after a warm-up; the best time of each is compared.

    .venv/bin/python bench/build.py [--repeat 3]

Goal (printed, never asserted): bitwright build <= 1.10x plain dvc repro.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchkit import BIN, SEALED_ENV, print_ratio, run
from bitwright.builder.data import pull_missing_data

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.10


def clone(target: Path, env: dict[str, str]) -> Path:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True, env=env)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}:{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory(prefix="bitwright-bench-") as tmp:
        sealed = clone(Path(tmp) / "sealed", env)
        plain = clone(Path(tmp) / "plain", env)
        run([str(BIN / "bitwright"), "keygen"], sealed, env)
        dvc_yaml = plain / "dvc.yaml"
        dvc_yaml.write_text(re.sub(r"bitwright stage run \S+ -- ", "", dvc_yaml.read_text()))
        pull_missing_data(plain)  # the data snapshots, as `bitwright build` fetches them
        plain_env = {**env, **SEALED_ENV}
        build = [str(BIN / "bitwright"), "build", "--force"]
        repro = [str(BIN / "dvc"), "repro", "--force", "-q"]
        # warm-up: page cache, DVC's caches, bitwright's digest cache, first-run data pull
        run(build, sealed, env)
        run(repro, plain, plain_env)
        timings: dict[str, list[float]] = {"bitwright build": [], "dvc repro": []}
        for _ in range(args.repeat):
            timings["bitwright build"].append(run(build, sealed, env))
            timings["dvc repro"].append(run(repro, plain, plain_env))
        shutil.rmtree(sealed / ".bitwright", ignore_errors=True)
    print_ratio(timings, goal=GOAL, subject="plain dvc repro")


if __name__ == "__main__":
    main()
