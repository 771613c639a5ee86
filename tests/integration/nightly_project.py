"""A tiny real project whose bits follow the declared thread count, for nightly and bisect.

Its ``reduce`` stage sums float32 numbers the way a parallel reduction does: one partial sum
per declared thread, each accumulated in order, then the partials in order. One thread and
two give sums a few ULPs apart, so every tensor derived from the sum moves: the knob a
nightly's ``threads`` variation changes, and the one ``bisect`` must name. ``summary`` only
inherits the difference (and releases the tensors as they are, so the release holds their
bytes). A numpy stage (no torch work) keeps a build to a few seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.integration.project import ROOT, commit_with_data

REDUCE = """\
import pathlib
from concurrent.futures import ThreadPoolExecutor
from bitwright import stagekit
settings = stagekit.begin()
import numpy as np
from safetensors.numpy import save_file
scale = float(pathlib.Path("data/raw/scale.txt").read_text())
values = np.random.default_rng(settings.seed).standard_normal(100_000).astype(np.float32) * scale
{partials}
total = np.float32(0)
for part in partials:
    total = np.float32(total + part)
pathlib.Path("out").mkdir(exist_ok=True)
save_file({{"normalized": values / total, "total": np.array([total])}}, "out/stats.safetensors")
"""

PARALLEL = """\
chunks = np.array_split(values, settings.threads)  # each thread adds up its share in order
with ThreadPoolExecutor(settings.threads) as pool:
    partials = list(pool.map(lambda c: np.cumsum(c, dtype=np.float32)[-1], chunks))
"""

SERIAL = """\
partials = [np.cumsum(c, dtype=np.float32)[-1] for c in np.array_split(values, 4)]
"""

SUMMARY = """\
import json, pathlib, shutil
from bitwright import stagekit
stagekit.begin()
from safetensors.numpy import load_file
stats = load_file("out/stats.safetensors")
mean = float(stats["normalized"].mean(dtype="float64"))
pathlib.Path("out/summary.json").write_text(json.dumps({"mean": mean}, sort_keys=True))
shutil.copyfile("out/stats.safetensors", "out/model.safetensors")  # released as is
"""

DVC_YAML = """\
stages:
  reduce:
    cmd: bitwright stage run reduce -- python stages/reduce.py
    deps:
      - stages/reduce.py
      - data/raw
    outs:
      - out/stats.safetensors
  summary:
    cmd: bitwright stage run summary -- python stages/summary.py
    deps:
      - stages/summary.py
      - out/stats.safetensors
    outs:
      - out/summary.json
      - out/model.safetensors
"""

CONFIG = """\
determinism:
  seed: 11
  torch_deterministic: true
  cudnn_benchmark: false
  allow_tf32: false
  threads: 1
  pythonhashseed: 0
  cublas_workspace_config: ":4096:8"
  mkl_cbwr: AVX2,STRICT
"""


def reduce_stage(*, parallel: bool) -> str:
    """The reduce stage: its partial sums follow the thread count, or a fixed split of 4."""
    return REDUCE.format(partials=(PARALLEL if parallel else SERIAL).rstrip())


def make_nightly_project(base: Path, *, parallel: bool = True) -> Path:
    """Create a committed two-stage project with DVC-tracked data and a local DVC remote."""
    repo = base / "project"
    for sub in ("stages", "configs", "data/raw", "out"):
        (repo / sub).mkdir(parents=True)
    shutil.copytree(ROOT / "containers", repo / "containers")
    (repo / "stages" / "reduce.py").write_text(reduce_stage(parallel=parallel))
    (repo / "stages" / "summary.py").write_text(SUMMARY)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "configs" / "config.yaml").write_text(CONFIG)
    (repo / "data" / "raw" / "scale.txt").write_text("1.5\n")
    (repo / ".gitignore").write_text(".bitwright/\n")
    (repo / "out" / ".gitignore").write_text(
        "/stats.safetensors\n/summary.json\n/model.safetensors\n"
    )
    commit_with_data(repo, base / "remote")
    return repo
