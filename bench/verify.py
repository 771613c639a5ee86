"""Benchmark: `bitwright verify` of a release against the bare cost of hashing its files.

A clone of this repository at HEAD builds the reference pipeline and bundles a release. By
default the model is widened to three hidden layers of 8192 (a ~515 MiB safetensors file) and
trained for one epoch, so that the release is model-sized and hashing matters; ``--hidden`` and
``--epochs`` change that (``--hidden ''`` keeps the configured 0.2 MiB model, where only fixed
costs show). Then, in the same run and best of ``--repeat``:

- ``verify (in-process)``: :func:`bitwright.verify.verify_release` with the owner key;
- ``hash (in-process)``: hashlib sha256 of every file of the release, single pass;
- the same two as whole commands (``bitwright verify`` and ``python -c`` hashing), which adds
  interpreter start-up and imports to both, and ``sha256sum`` over the same files.

    .venv/bin/python bench/verify.py [--hidden 8192,8192,8192] [--epochs 1] [--repeat 5]
    .venv/bin/python bench/verify.py --release DIR --key OWNER.pub   # an existing release

Goal (printed, never asserted): the verify command <= 1.2x the bare hashing commands.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchkit import bench_env
from timing import best_call

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GOAL = 1.2
HASH_ALL = """
import hashlib, pathlib, sys
for p in sorted(pathlib.Path(sys.argv[1]).rglob("*")):
    if p.is_file():
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
"""


def sh(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")


def command_cpu(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """CPU seconds (user + system) of a command and the children it waited for."""
    child = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = 0
    if status != 0:
        sys.exit(f"{' '.join(args)} failed")
    return usage.ru_utime + usage.ru_stime


def hash_release(release: Path) -> None:
    for path in sorted(release.rglob("*")):
        if path.is_file():
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)


def make_release(tmp: Path, hidden: str, epochs: int, env: dict[str, str]) -> Path:
    repo = tmp / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, env=env)
    overrides = []
    if hidden:
        overrides.append(f"model.hidden=[{hidden}]")
    if epochs:
        overrides.append(f"train.epochs={epochs}")
    if overrides:
        sh([str(BIN / "bitwright"), "params", "--write", *overrides], repo, env)
        sh(["git", "commit", "-qam", "bench: scaled model"], repo, env)
    sh([str(BIN / "bitwright"), "keygen"], repo, env)
    sh([str(BIN / "bitwright"), "build"], repo, env)
    sh([str(BIN / "bitwright"), "release", "--out", str(tmp / "release")], repo, env)
    return repo


def time_commands(
    release: Path, pub: Path, tmp: Path, env: dict[str, str], repeat: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Best wall and CPU seconds of verify, python hashing and sha256sum, as commands."""
    files = sorted(str(p) for p in release.rglob("*") if p.is_file())
    commands = {
        "bitwright verify (command)": [str(BIN / "bitwright"), "verify", str(release)]
        + ["--key", str(pub)],
        "python hashing (command)": [sys.executable, "-c", HASH_ALL, str(release)],
        "sha256sum (command)": ["sha256sum", *files],
    }
    wall = {
        label: best_call(lambda a=argv: sh(a, tmp, env), repeat) for label, argv in commands.items()
    }
    cpu = {
        label: min(command_cpu(argv, tmp, env) for _ in range(repeat))
        for label, argv in commands.items()
    }
    return wall, cpu


def report(rows: dict[str, float], cpu: dict[str, float], size: int) -> None:
    print(f"release: {size / 2**20:.1f} MiB; load average {os.getloadavg()[0]:.1f}")
    print(f"{'method':<28}{'best s':>10}{'cpu s':>10}")
    for method, seconds in rows.items():
        print(f"{method:<28}{seconds:>10.3f}{cpu.get(method, float('nan')):>10.3f}")
    verify = rows["bitwright verify (command)"]
    ratios = (
        ("in-process", rows["verify (in-process)"] / rows["hash (in-process)"]),
        ("command vs python hashing", verify / rows["python hashing (command)"]),
        ("command vs sha256sum", verify / rows["sha256sum (command)"]),
    )
    for label, ratio in ratios:
        verdict = "meets" if ratio <= GOAL else "misses"
        print(f"verify / bare hashing ({label}): {ratio:.2f}x ({verdict} the goal <= {GOAL}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--hidden", default="8192,8192,8192", help="hidden widths ('': as configured)"
    )
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (0: as configured)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--release", type=Path, help="time this release instead of building one")
    parser.add_argument("--key", type=Path, help="with --release: the owner's public key")
    args = parser.parse_args()
    if bool(args.release) != bool(args.key):
        parser.error("--release and --key go together")
    env = bench_env()
    from bitwright.attest import load_public_key
    from bitwright.attest.trust import TrustPolicy
    from bitwright.verify import verify_release

    with tempfile.TemporaryDirectory(prefix="bitwright-bench-") as name:
        tmp = Path(name)
        if args.release:
            release, pub = args.release.resolve(), args.key.resolve()
        else:
            repo = make_release(tmp, args.hidden, args.epochs, env)
            release = tmp / "release"
            pub = repo / ".bitwright" / "keys" / "owner.pub"
        policy = TrustPolicy(keys=(load_public_key(pub),))
        size = sum(p.stat().st_size for p in release.rglob("*") if p.is_file())
        hash_release(release)  # warm the page cache
        assert verify_release(release, policy).ok
        rows = {
            "verify (in-process)": best_call(lambda: verify_release(release, policy), args.repeat),
            "hash (in-process)": best_call(lambda: hash_release(release), args.repeat),
        }
        wall, cpu = time_commands(release, pub, tmp, env, args.repeat)
    report({**rows, **wall}, cpu, size)


if __name__ == "__main__":
    main()
