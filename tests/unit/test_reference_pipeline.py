"""The reference pipeline's stage code: real training, bitwise reproducible, fail-closed inputs.

The stage scripts run here directly (as `python pipelines/NAME.py` from a copy of the
repository, with the environment the sealed runner gives them), not through DVC or the
runner: what is tested is the stage code itself.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from bitwright.builder.data import pull_missing_data
from bitwright.model import DeterminismSettings, to_jsonable

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGES = ("prepare", "train", "evaluate", "package")
OUTPUTS = {
    "data/prepared/train.safetensors",
    "data/prepared/test.safetensors",
    "models/model.safetensors",
    "models/train_log.json",
    "reports/metrics.json",
    "release/model.safetensors",
    "release/metrics.json",
    "release/MODEL_CARD.md",
}
DATA_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"


def make_checkout(root: Path) -> Path:
    """Copy what the stages read (code, raw data, params) into a fresh directory."""
    root.mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "pipelines", root / "pipelines", ignore=_pycache)
    pull_missing_data(REPO_ROOT)  # a fresh clone has data/raw.dvc, not the data itself
    shutil.copytree(REPO_ROOT / "data" / "raw", root / "data" / "raw")
    # the reference trains for minutes (so that a spot-check costs a few percent of it): here
    # the same code trains 40 epochs, recorded in segments of one epoch
    params = (REPO_ROOT / "params.yaml").read_text()
    params = re.sub(r"(?m)^  epochs: \d+$", "  epochs: 40", params)
    params = re.sub(r"(?m)^  segment_steps: \d+$", "  segment_steps: 23", params)
    (root / "params.yaml").write_text(params)
    return root


def _pycache(_: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__"]


def stage_env(root: Path, settings: DeterminismSettings) -> dict[str, str]:
    """The environment a sealed stage starts with: cleared, plus the declared settings."""
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "BITWRIGHT_DETERMINISM": json.dumps(to_jsonable(settings)),
        "BITWRIGHT_RECEIPT": str(root / "receipts.jsonl"),
        **settings.environment(),
    }


def start(root: Path, stage: str, settings: DeterminismSettings) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, f"pipelines/{stage}.py"],
        cwd=root,
        env=stage_env(root, settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = proc.communicate(timeout=300)
    return proc.returncode, output


def run_stages(roots: list[Path], stages: tuple[str, ...], settings: DeterminismSettings) -> None:
    """Run the stages in order, each in every checkout at once (the checkouts in parallel)."""
    for stage in stages:
        for code, output in map(finish, [start(r, stage, settings) for r in roots]):
            assert code == 0, f"{stage} failed:\n{output}"


def products(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for d in ("data/prepared", "models", "checkpoints", "reports", "release")
        for p in sorted((root / d).rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("reference")
    roots = [make_checkout(base / "a"), make_checkout(base / "b")]
    run_stages(roots, STAGES, DeterminismSettings())
    return roots[0], roots[1]


def test_two_runs_write_identical_bytes(two_runs: tuple[Path, Path]) -> None:
    first, second = (products(r) for r in two_runs)
    assert {p for p in first if not p.startswith("checkpoints/")} == OUTPUTS
    assert len([p for p in first if p.startswith("checkpoints/state-")]) == 41  # 40 segments
    assert first == second  # the committed trajectory too, state by state


def test_every_stage_reports_the_declared_settings(two_runs: tuple[Path, Path]) -> None:
    receipts = [
        json.loads(line) for line in (two_runs[0] / "receipts.jsonl").read_text().splitlines()
    ]
    assert [r["phase"] for r in receipts] == ["start", "exit"] * len(STAGES)
    for receipt in receipts:
        assert receipt["seed"] == 0
        assert receipt["torch_deterministic"] is True
        assert receipt["threads"] == 1
        assert receipt["devices"] == ["cpu"]
        assert receipt["env"]["MKL_CBWR"] == "AVX2,STRICT"
        assert receipt["hash_randomization"] == 0


def test_outputs_are_a_usable_release(two_runs: tuple[Path, Path]) -> None:
    root = two_runs[0]
    metrics = json.loads((root / "release/metrics.json").read_text())
    assert metrics["accuracy"] > 0.9
    assert metrics["samples"] == sum(c["support"] for c in metrics["per_class"].values())
    assert (root / "release/model.safetensors").read_bytes() == (
        root / "models/model.safetensors"
    ).read_bytes()
    with safe_open(str(root / "release/model.safetensors"), framework="pt") as fh:
        assert fh.metadata() == {"format": "pt"}  # one key: several are written in random order
        assert sorted(fh.keys()) == [
            "input_mean",
            "input_std",
            "layers.0.bias",
            "layers.0.weight",
            "layers.2.bias",
            "layers.2.weight",
        ]
    card = (root / "release/MODEL_CARD.md").read_text()
    assert DATA_SHA256 in card
    assert "CC-BY-4.0" in card and "10.24432/C50P49" in card
    assert f"Accuracy: {metrics['accuracy']:.4f}" in card
    for output in products(root).values():
        assert str(root).encode() not in output  # no absolute path leaks into any output


def test_two_threads_give_the_same_weights_under_mkl_cbwr(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Observed: with MKL_CBWR=AVX2,STRICT, training on 2 threads matches 1 thread bit for bit."""
    root = make_checkout(tmp_path / "threads")
    shutil.copytree(two_runs[0] / "data/prepared", root / "data/prepared")
    run_stages([root], ("train",), DeterminismSettings(threads=2))
    receipt = json.loads((root / "receipts.jsonl").read_text().splitlines()[0])
    assert receipt["threads"] == 2
    assert (root / "models/model.safetensors").read_bytes() == (
        two_runs[0] / "models/model.safetensors"
    ).read_bytes()


def test_prepare_refuses_raw_data_that_differs_from_the_pin(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "tampered")
    raw = root / "data/raw/digits.csv.gz"
    rows = gzip.decompress(raw.read_bytes()).splitlines(keepends=True)
    raw.write_bytes(gzip.compress(b"".join(rows[:-1]), mtime=0))  # one sample dropped
    code, output = finish(start(root, "prepare", DeterminismSettings()))
    assert code != 0
    assert "data/raw/digits.csv.gz has sha256" in output and DATA_SHA256 in output
    assert not (root / "data/prepared").exists()


def test_stage_refuses_a_seed_other_than_the_params_seed(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "seed")
    code, output = finish(start(root, "prepare", DeterminismSettings(seed=7)))
    assert code != 0
    assert "seed 0 differs from the declared seed 7" in output
