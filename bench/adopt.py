"""Benchmark: `bitwright build` of an adopted DVC project against its plain `dvc repro --force`.

The sample project of the tests (scikit-learn and dvclive, four stages, the first a shell
command; ``tests/fixtures/sklearn_project``) is made a git + DVC repository in a temporary
directory and cloned twice. One clone gets ``bitwright init`` and a commit, then runs
``bitwright build --force`` (every stage sealed, judged and linked, layout and provenance
signed); the other runs ``dvc repro --force`` of the untouched ``dvc.yaml`` in the same
determinism environment (one thread, the same hash seed), so both do the same work. Each runs
``--repeat`` times after a warm-up, side by side; the best times are compared.

    .venv/bin/python bench/adopt.py [--repeat 3] [--stages stagekit|plain]

``--stages stagekit`` (the default) runs the variant whose Python stages call
``bitwright.stagekit.begin()`` (and whose shell stage ends with a receipt), in both clones:
a build requires every stage to confirm its settings until the runner confirms them itself.
``--stages plain`` benchmarks the project exactly as it is published.

Goal (printed, never asserted): bitwright build <= 1.15x plain dvc repro.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from benchkit import BIN, SEALED_ENV, bench_env, print_ratio, run

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "fixtures" / "sklearn_project"
GOAL = 1.15
RECEIPT = "from bitwright import stagekit\n\nstagekit.begin()\n"
SHELL_RECEIPT = ' && python -c "from bitwright import stagekit; stagekit.begin()"'


def sample(target: Path, env: dict[str, str], *, stagekit: bool) -> Path:
    """The sample project as a committed git + DVC repository."""
    shutil.copytree(SAMPLE, target)
    (target / "data" / "raw").mkdir()
    (target / "data" / "wine.csv").rename(target / "data" / "raw" / "wine.csv")
    if stagekit:
        for script in sorted((target / "src").glob("*.py")):
            text = script.read_text()
            end = text.index('"""', 3) + 3
            script.write_text(text[:end] + "\n\n" + RECEIPT + text[end:])
        dvc_yaml = target / "dvc.yaml"
        marker = "> data/prepared/wine.csv"
        dvc_yaml.write_text(dvc_yaml.read_text().replace(marker, marker + SHELL_RECEIPT, 1))
    for args in (
        ["git", "init", "-q", "-b", "main"],
        [str(BIN / "dvc"), "init", "-q"],
        [str(BIN / "dvc"), "add", "-q", "data/raw"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "sample"],
    ):
        run(args, target, env)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stages", choices=("stagekit", "plain"), default="stagekit")
    args = parser.parse_args()
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="bitwright-adopt-") as tmp:
        origin = sample(Path(tmp) / "origin", env, stagekit=args.stages == "stagekit")
        sealed, plain = Path(tmp) / "sealed", Path(tmp) / "plain"
        for clone in (sealed, plain):
            run(["git", "clone", "-q", str(origin), str(clone)], Path(tmp), env)
            shutil.copytree(origin / ".dvc" / "cache", clone / ".dvc" / "cache")
            run([str(BIN / "dvc"), "checkout", "-q", "data/raw.dvc"], clone, env)
        run([str(BIN / "bitwright"), "init"], sealed, env)
        run(["git", "add", "-A"], sealed, env)
        run(["git", "commit", "-q", "-m", "Build with bitwright"], sealed, env)
        plain_env = {**env, **SEALED_ENV}
        build = [str(BIN / "bitwright"), "build", "--force"]
        repro = [str(BIN / "dvc"), "repro", "--force", "-q"]
        run(build, sealed, env)  # warm-up: page cache, DVC's caches, the digest cache
        # as a project does after a build: commit dvc.lock and the metrics DVC leaves to git
        run(["git", "add", "-A"], sealed, env)
        run(["git", "commit", "-q", "-m", "build outputs"], sealed, env)
        run(repro, plain, plain_env)
        timings: dict[str, list[float]] = {"bitwright build": [], "dvc repro": []}
        for _ in range(args.repeat):
            timings["bitwright build"].append(run(build, sealed, env))
            timings["dvc repro"].append(run(repro, plain, plain_env))
    print(f"sample project ({args.stages} stages), best of {args.repeat}")
    print_ratio(timings, goal=GOAL, subject="plain dvc repro")


if __name__ == "__main__":
    main()
