"""Benchmark: what running a stage in the build image (podman) costs next to bubblewrap.

Two measurements, each side by side in the same run:

* one stage, alone: a stage that only starts Python (``python3 -c pass``) run sealed by the
  runner, ``--repeat`` times with each sandbox; bubblewrap runs the host's ``python3``, podman
  the image's, both Debian's CPython 3.11. The difference is the sandbox's own cost per stage.
* a whole build: ``bitwright build --force`` of the reference pipeline in a clone at HEAD,
  with the sandbox builder and with ``--builder container``; the difference divided by the
  number of stages is the per-stage overhead with real stages (torch imports and all).

    .venv/bin/python bench/container.py [--repeat 5] [--no-build]

Needs podman and the project's build image (``bitwright image build``). Goal (printed, never
asserted): the container builder adds at most 1 s per stage.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bitwright.errors import OperationalError
from bitwright.image.obtain import obtain_image
from bitwright.model import DeterminismSettings, Sha256, StageSpec
from bitwright.pins import pin_container
from bitwright.runner import BubblewrapSandbox, PodmanSandbox, Sandbox, run_sealed

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GOAL_SECONDS = 1.0
STAGES = 4  # the reference pipeline's


def empty_stage(root: Path) -> StageSpec:
    (root / "out").mkdir(parents=True)
    (root / "params.yaml").write_text("x: 1\n")
    return StageSpec(
        name="empty",
        cmd="bitwright stage run empty -- python3 -c pass",
        deps=("params.yaml",),
        outs=(),
        params=(("params.yaml", "x"),),
    )


def time_stage(root: Path, spec: StageSpec, sandbox: Sandbox) -> float:
    start = time.perf_counter()
    run = run_sealed(
        spec,
        repo=root,
        argv=["python3", "-c", "pass"],
        settings=DeterminismSettings(),
        source_date_epoch=1_700_000_000,
        strict=False,
        sandbox=sandbox,
        digest=lambda paths: {
            p: Sha256(hashlib.sha256((root / p).read_bytes()).hexdigest()) for p in paths
        },
        log_dir=root.parent / "logs",
        echo=False,
    )
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"the empty stage failed under {sandbox.kind.value}: see {root.parent / 'logs'}")
    return elapsed


def stage_overhead(repeat: int) -> dict[str, float]:
    try:
        pin = pin_container(ROOT)
        obtain_image(pin, project=ROOT)
    except OperationalError as exc:  # one line, as the CLI would say it
        sys.exit(f"the project's build image is not at hand: {exc.diagnostics()}")
    sandboxes: dict[str, Sandbox] = {
        "bubblewrap": BubblewrapSandbox.detect(),
        "podman": PodmanSandbox.detect(pin.image, pin.digest),
    }
    timings: dict[str, list[float]] = {name: [] for name in sandboxes}
    with tempfile.TemporaryDirectory(prefix="bitwright-bench-") as tmp:
        root = Path(tmp) / "repo"
        spec = empty_stage(root)
        for sandbox in sandboxes.values():
            time_stage(root, spec, sandbox)  # warm-up: page cache, podman's storage
        for _ in range(repeat):  # alternate, so that a busy moment hits both
            for name, sandbox in sandboxes.items():
                timings[name].append(time_stage(root, spec, sandbox))
    return {name: statistics.median(values) for name, values in timings.items()}


def build_overhead(repeat: int) -> dict[str, float]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}:{os.environ['PATH']}"}
    timings: dict[str, list[float]] = {"sandbox": [], "container": []}
    with tempfile.TemporaryDirectory(prefix="bitwright-bench-") as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, env=env)
        keygen = [str(BIN / "bitwright"), "keygen"]
        subprocess.run(keygen, cwd=repo, env=env, check=True, capture_output=True)
        commands = {
            "sandbox": [str(BIN / "bitwright"), "build", "--force"],
            "container": [str(BIN / "bitwright"), "build", "--force", "--builder", "container"],
        }
        for command in commands.values():  # warm-up
            subprocess.run(command, cwd=repo, env=env, check=True, capture_output=True)
        for _ in range(repeat):
            for name, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, cwd=repo, env=env, check=True, capture_output=True)
                timings[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-build", action="store_true", help="only the one-stage rows")
    args = parser.parse_args()
    stage = stage_overhead(args.repeat)
    extra = stage["podman"] - stage["bubblewrap"]
    print(f"{'row':<34}{'seconds':>10}{'ratio':>8}")
    print(f"{'one empty stage, bubblewrap':<34}{stage['bubblewrap']:>10.3f}{1.0:>8.2f}")
    print(
        f"{'one empty stage, podman':<34}{stage['podman']:>10.3f}"
        f"{stage['podman'] / stage['bubblewrap']:>8.2f}"
    )
    print(f"podman adds {extra * 1000:.0f} ms to a stage (median of {args.repeat})")
    per_stage = extra
    if not args.no_build:
        build = build_overhead(max(1, args.repeat // 2))
        print(f"{'bitwright build, sandbox':<34}{build['sandbox']:>10.2f}{1.0:>8.2f}")
        print(
            f"{'bitwright build, container':<34}{build['container']:>10.2f}"
            f"{build['container'] / build['sandbox']:>8.2f}"
        )
        per_stage = (build["container"] - build["sandbox"]) / STAGES
        print(f"the container builder adds {per_stage:.2f} s per stage of the reference pipeline")
    verdict = "met" if per_stage <= GOAL_SECONDS else "NOT met"
    print(f"goal: at most {GOAL_SECONDS:.1f} s per stage: {verdict}")


if __name__ == "__main__":
    main()
