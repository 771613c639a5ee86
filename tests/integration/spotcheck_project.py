"""A tiny real project whose training stage records a committed trajectory, and its forgeries.

``train`` fits a linear classifier with SGD and momentum on DVC-tracked data, recording
63 segments of 4 steps through :class:`bitwright.trajectory.Recorder`; ``package`` copies the
model into the release. Built with ``bitwright build``, its states pushed to a local DVC
remote with ``dvc push``, released with ``bitwright release``.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

from tests.integration.project import BITWRIGHT, ROOT, commit, env, sh
from tests.integration.project import CONFIG as BASE_CONFIG

from bitwright.attest import Link, load_signer, write_link
from bitwright.attest.signers import KeySigner
from bitwright.builder import ProjectPaths
from bitwright.builder.context import read_context
from bitwright.builder.preflight import utc_now
from bitwright.builder.provenance import write_build_provenance
from bitwright.digest import sha256_file
from bitwright.pipeline import load_pipeline

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
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("dvc", "init", "-q", cwd=repo)
    sh("dvc", "config", "core.analytics", "false", cwd=repo)
    (base / "remote").mkdir()
    sh("dvc", "remote", "add", "--local", "-d", "origin", str(base / "remote"), cwd=repo)
    sh("dvc", "add", "-q", "data/raw", cwd=repo)
    sh(BITWRIGHT, "params", "--write", cwd=repo)
    commit(repo, "project")
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
    repo = base / "project"
    shutil.copytree(project, repo, symlinks=True)
    config = repo / ".dvc" / "config.local"
    config.write_text(
        config.read_text().replace(str(project.parent / "remote"), str(base / "remote"))
    )
    shutil.copytree(project.parent / "remote", base / "remote")
    paths = ProjectPaths(repo)
    train = repo / "stages" / "train.py"
    honest = train.read_text()
    nudge = (
        "        if segment.index % 3 == 0:\n"
        "            with torch.no_grad():\n"
        "                model.weight.add_(0.05)\n"
    )
    train.write_text(honest.replace(FORGE_MARK, FORGE_MARK + nudge))
    _stage_run(repo, "train")
    train.write_text(honest)
    _resign_train(repo, sha256_file(train))
    _stage_run(repo, "package")
    write_build_provenance(
        paths,
        load_pipeline(repo),
        read_context(paths.context_file),
        {p.name.split(".")[0]: p for p in paths.links.glob("*.link")},
        finished_on=utc_now(),
        signer=KeySigner(load_signer(paths.owner_key)),
    )
    sh("dvc", "commit", "-q", "-f", cwd=repo)
    sh("dvc", "push", "-q", cwd=repo)
    return repo


def _stage_run(repo: Path, stage: str) -> None:
    run_env = {**env(), "BITWRIGHT_BUILD_CONTEXT": str(ProjectPaths(repo).context_file)}
    done = subprocess.run(
        [BITWRIGHT, "stage", "run", stage, "--", "python", f"stages/{stage}.py"],
        cwd=repo,
        env=run_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _resign_train(repo: Path, train_sha256: str) -> None:
    paths = ProjectPaths(repo)
    (link_path,) = paths.links.glob("train.*.link")
    body = json.loads(base64.b64decode(json.loads(link_path.read_text())["payload"]))
    body["materials"]["stages/train.py"]["sha256"] = train_sha256
    model = repo / "model" / "model.safetensors"
    body["products"]["model/model.safetensors"]["sha256"] = sha256_file(model)
    link_path.unlink()
    write_link(Link.model_validate(body), load_signer(paths.owner_key), paths.links)
