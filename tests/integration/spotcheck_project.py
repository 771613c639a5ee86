"""A tiny real project whose training stage records a committed trajectory, and its forgeries.

``train`` fits a linear classifier with SGD and momentum on DVC-tracked data, recording
63 segments of 4 steps through :class:`bitwright.trajectory.Recorder`; ``package`` copies the
model into the release. Built with ``bitwright build``, its states pushed to a local DVC
remote with ``dvc push``, released with ``bitwright release``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.integration.insider import rerun_stage, resign_link, resign_provenance
from tests.integration.project import BITWRIGHT, ROOT, commit_with_data, copy_with_remote, sh
from tests.integration.project import CONFIG as BASE_CONFIG

from bitwright.digest import sha256_file

SEGMENTS = 63
FORGE_MARK = "    for segment in run.segments():\n"

TRAIN = """\
import pathlib, sys
from bitwright import stagekit
settings = stagekit.begin()
import torch, yaml
from safetensors.torch import load_file, save_file
from torch.nn import functional
from bitwright.trajectory import Recorder
from bitwright.trajectory.torchstate import TorchState, as_index

def main():
    params = yaml.safe_load(open("params.yaml"))["train"]
    data = load_file("data/raw/points.safetensors")
    x, y = data["x"], data["y"]
    torch.manual_seed(settings.seed)
    model = torch.nn.Linear(8, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    dropout = torch.Generator().manual_seed(settings.seed + 1)
    run = Recorder("checkpoints", state=TorchState(model, optimizer, {"dropout": dropout}),
                   seed=settings.seed, data="data/raw/points.safetensors", items=len(y),
                   batch_size=16, steps=params["steps"], segment_steps=params["segment_steps"],
                   model="model/model.safetensors")
    for segment in run.segments():
        for batch in segment:
            index = as_index(batch)
            keep = (torch.rand(8, generator=dropout) > 0.1).float()
            loss = functional.cross_entropy(model(x[index] * keep), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    run.finish()
    if run.replaying:
        return
    pathlib.Path("model").mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, "model/model.safetensors",
              metadata={"format": "pt"})

main()
"""

PACKAGE = """\
import pathlib, shutil
from bitwright import stagekit
stagekit.begin()
pathlib.Path("release").mkdir(exist_ok=True)
shutil.copyfile("model/model.safetensors", "release/model.safetensors")
"""

DVC_YAML = """\
stages:
  train:
    cmd: bitwright stage run train -- python stages/train.py
    deps:
      - stages/train.py
      - data/raw
    params:
      - train
    outs:
      - model
      - checkpoints
  package:
    cmd: bitwright stage run package -- python stages/package.py
    deps:
      - stages/package.py
      - model
    outs:
      - release
"""

# the two-stage project's determinism settings (seed 7, one thread, strict MKL)
CONFIG = f"train:\n  steps: {SEGMENTS * 4}\n  segment_steps: 4\n" + (
    "determinism:" + BASE_CONFIG.split("\ndeterminism:", 1)[1]
)


def create(base: Path) -> Path:
    """Create, commit, build and push the project in ``base/project`` (remote ``base/remote``)."""
    import torch
    from safetensors.torch import save_file

    repo = base / "project"
    for directory in ("stages", "configs", "data/raw"):
        (repo / directory).mkdir(parents=True)
    shutil.copytree(ROOT / "containers", repo / "containers")
    (repo / "stages" / "train.py").write_text(TRAIN)
    (repo / "stages" / "package.py").write_text(PACKAGE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "configs" / "config.yaml").write_text(CONFIG)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(100, 8, generator=generator)
    save_file(
        {"x": x, "y": (x[:, 0] > 0).long() + (x[:, 1] > 0).long()},
        str(repo / "data" / "raw" / "points.safetensors"),
        metadata={"format": "pt"},
    )
    (repo / ".gitignore").write_text(".bitwright/\n/model\n/checkpoints\n/release\n")
    commit_with_data(repo, base / "remote")
    sh(BITWRIGHT, "keygen", cwd=repo)
    sh(BITWRIGHT, "build", cwd=repo)
    sh("dvc", "push", "-q", cwd=repo)
    return repo


def release(repo: Path, out: Path) -> Path:
    """Bundle the last build of ``repo`` into ``out``."""
    sh(BITWRIGHT, "release", "--out", str(out), cwd=repo)
    return out


def forge(project: Path, base: Path) -> Path:
    """An insider forgery of ``project``: its training redone by other code, all re-signed.

    Every third segment starts from weights nudged after its start state was committed. The
    link of ``train`` is rewritten to name the committed code as its material and signed with
    the owner's key, ``package`` is rerun on the forged model, the provenance is rewritten and
    signed, and the states are committed and pushed with DVC: ``verify`` passes.
    """
    repo = copy_with_remote(project, base / "project")
    train = repo / "stages" / "train.py"
    honest = train.read_text()
    nudge = (
        "        if segment.index % 3 == 0:\n"
        "            with torch.no_grad():\n"
        "                model.weight.add_(0.05)\n"
    )
    train.write_text(honest.replace(FORGE_MARK, FORGE_MARK + nudge))
    rerun_stage(repo, "train", "python", "stages/train.py")
    train.write_text(honest)
    _resign_train(repo, sha256_file(train))
    rerun_stage(repo, "package", "python", "stages/package.py")
    resign_provenance(repo)
    sh("dvc", "commit", "-q", "-f", cwd=repo)
    sh("dvc", "push", "-q", cwd=repo)
    return repo


def _resign_train(repo: Path, train_sha256: str) -> None:
    """Name the committed code as train's material, and the forged model as its product."""
    model_sha256 = sha256_file(repo / "model" / "model.safetensors")

    def edit(body: dict[str, Any]) -> None:
        body["materials"]["stages/train.py"]["sha256"] = train_sha256
        body["products"]["model/model.safetensors"]["sha256"] = model_sha256

    resign_link(repo, "train", edit)
