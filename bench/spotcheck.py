"""Benchmark: a spot-check audit against the training it audits, and what recording costs.

A clone of this repository at HEAD is built in a temporary directory (``bitwright build``: the
training stage sealed, recording its committed trajectory), its trajectory pushed with
``dvc push checkpoints`` and released. Then, side by side on this machine:

- ``training``: the training stage as the build ran it (sealed, recording), from its signed
  link's start and finish times, start-up included; and ``python pipelines/train.py`` in the
  clone, in the sealed determinism environment, once whole;
- ``recording overhead``: ``--epochs`` (1000) of the same training with the reference segments
  and with one segment (two states), alternated ``--repeat`` (3) times, least CPU of each;
- ``audit``: ``bitwright rebuild dist/release --spot-check 21 --seed S`` as a command: its sealed
  replay process(es) (start-up, torch import, data, 21 segments) and the whole command (verify,
  clone, DVC fetches, replay, VSA).

Fractions are of CPU seconds (user + system of the processes and their children): on a shared
machine wall time swings with other people's load, CPU time much less. Wall times are printed.

    .venv/bin/python bench/spotcheck.py [--repeat 3] [--epochs 1000] [--segments 21] [--jobs 1]

Goals (printed, never asserted): replay <= 5% of training at 21 segments; recording <= 10%.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AUDIT_GOAL = 0.05
RECORDING_GOAL = 0.10


def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; return its wall seconds, its CPU seconds and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed in {cwd}:\n{done.stderr[-2000:]}")
    return wall, cpu, done.stdout


def stage_env(clone: Path) -> dict[str, str]:
    """The sealed determinism environment, for a training run outside the sandbox."""
    from bitwright.model import DeterminismSettings

    settings = DeterminismSettings()
    return {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(clone),
        "PYTHONDONTWRITEBYTECODE": "1",
        "BITWRIGHT_DETERMINISM": json.dumps(settings.to_json()),
        **settings.environment(),
    }


def train_link(clone: Path) -> dict[str, object]:
    (path,) = (clone / ".bitwright" / "attestations" / "links").glob("train.*.link")
    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))


def seconds(link: dict[str, object]) -> float:
    from datetime import datetime

    byproducts = link["byproducts"]
    assert isinstance(byproducts, dict)
    started = datetime.fromisoformat(str(byproducts["started-on"]))
    return (datetime.fromisoformat(str(byproducts["finished-on"])) - started).total_seconds()


def set_param(clone: Path, key: str, value: int) -> None:
    """Set ``train.<key>`` in the clone's params.yaml (the build is over: the tree may change)."""
    params = clone / "params.yaml"
    text = re.sub(rf"(?m)^  {key}: \d+$", f"  {key}: {value}", params.read_text())
    params.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1000, help="of the recording comparison")
    parser.add_argument("--segments", type=int, default=21)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    bitwright = str(BIN / "bitwright")
    with tempfile.TemporaryDirectory(prefix="bitwright-bench-spotcheck-") as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, env=env)
        run([bitwright, "keygen"], clone, env)
        print("building the reference pipeline (training records its trajectory) ...", flush=True)
        build_wall, _, _ = run([bitwright, "build"], clone, env)
        run([str(BIN / "dvc"), "push", "-q", "checkpoints"], clone, env)
        run([bitwright, "release", "--out", "dist/release"], clone, env)
        link = train_link(clone)
        training = seconds(link)
        trajectory = link["byproducts"]["trajectory"]  # type: ignore[index]
        states = sorted((clone / "checkpoints").glob("state-*"))
        sizes = [p.stat().st_size for p in states]

        print(f"auditing {args.segments} segments ...", flush=True)
        audit_wall, audit_cpu, out = run(
            [
                bitwright,
                "rebuild",
                "dist/release",
                "--spot-check",
                str(args.segments),
                "--seed",
                str(args.seed),
                "--jobs",
                str(args.jobs),
                "--key",
                ".bitwright/keys/owner.pub",
                "--json",
            ],
            clone,
            env,
        )
        report = json.loads(out)
        cost = report["cost"]

        print("the whole training outside the sandbox ...", flush=True)
        full_wall, full_cpu, _ = run(
            [sys.executable, "pipelines/train.py"], clone, stage_env(clone)
        )
        print(f"{args.epochs} epochs, recording on and off, {args.repeat} times ...", flush=True)
        recording: list[tuple[float, float]] = []
        plain: list[tuple[float, float]] = []
        set_param(clone, "epochs", args.epochs)
        for _ in range(args.repeat):
            for target, segment_steps in ((recording, 160), (plain, 10**9)):
                set_param(clone, "segment_steps", segment_steps)
                wall, cpu, _ = run([sys.executable, "pipelines/train.py"], clone, stage_env(clone))
                target.append((wall, cpu))

    rec_wall, rec_cpu = min(recording, key=lambda x: x[1])
    plain_wall, plain_cpu = min(plain, key=lambda x: x[1])
    segments = trajectory["segments"]  # type: ignore[index]
    replay_cpu = float(cost["replay_cpu_seconds"])
    rows = [
        ("training stage, sealed, recording (its link)", training, None, None, None),
        (f"train.py, {segments} segments", full_wall, full_cpu, None, None),
        (f"train.py {args.epochs} epochs, recording", rec_wall, rec_cpu, None, None),
        (f"train.py {args.epochs} epochs, one segment", plain_wall, plain_cpu, None, None),
        ("  recording overhead (CPU)", None, None, rec_cpu / plain_cpu - 1, RECORDING_GOAL),
        (
            f"audit replay: {args.segments} segments, {int(cost['replay_processes'])} process(es)",
            cost["replay_seconds"],
            replay_cpu,
            replay_cpu / full_cpu,
            AUDIT_GOAL,
        ),
        (
            "  replay wall / training stage wall",
            None,
            None,
            cost["replay_seconds"] / training,
            None,
        ),
        (
            "audit command, whole",
            audit_wall,
            audit_cpu + replay_cpu,
            (audit_cpu + replay_cpu) / full_cpu,
            None,
        ),
    ]
    print(f"\n{'what':<48} {'wall s':>8} {'CPU s':>8} {'fraction':>9} {'goal':>6}")
    for name, wall, cpu, fraction, goal in rows:
        cells = [f"{v:8.2f}" if v is not None else " " * 8 for v in (wall, cpu)]
        share = f"{fraction:9.2%}" if fraction is not None else " " * 9
        print(f"{name:<48} {cells[0]} {cells[1]} {share} {f'{goal:6.0%}' if goal else ''}")
    print(
        f"fractions of CPU are of the whole train.py; the audit command's CPU is bitwright's, "
        f"DVC's and git's plus the replay's (reported by the replay process). "
        f"states: {len(states)} files, "
        f"{sum(sizes) / len(sizes) / 1024:.1f} KiB each, {sum(sizes) / 2**20:.1f} MiB in all; "
        f"whole build {build_wall:.1f} s; audit passed: {report['passed']}; "
        f"p(caught | 20% forged) = {report['detectionProbability']['0.2']:.4f}"
    )


if __name__ == "__main__":
    main()
