"""What the AI BOM of a release says: which released files are models, which are data.

A release holds what the project declares (see :mod:`bitwright.builder.provenance`). Here its
files are sorted for :func:`~bitwright.release.aibom.build_aibom`:

* each ``artifacts:`` entry of ``dvc.yaml`` of type ``model`` is one model, with every
  released file under its path; any other released file that is a model by its format
  (pickle, joblib, safetensors, ONNX, torch, Keras) is a model of its own, named by its path
  (a project without ``artifacts:`` gets one model of all of them, named as before from
  ``release:`` in ``params.yaml``);
* metrics and plots outputs of ``dvc.yaml`` (and JSON or YAML files named ``metrics``) are data;
  everything else is a plain file;
* each model's framework is the config's ``release.framework`` or ``release.framework`` of
  ``params.yaml``, else what its files show (a pickle naming ``sklearn`` is scikit-learn, a
  safetensors or torch file is PyTorch when torch was installed), with the installed version;
* the metrics of every released metrics file go into each model's card.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bitwright.attest.statement import Statement
from bitwright.errors import OperationalError, VerificationFailed
from bitwright.fileio import load_json, read_regular
from bitwright.model import BuildPins, Pipeline, Sha256
from bitwright.pipeline import load_params, load_pipeline
from bitwright.project import load_project_config
from bitwright.release.aibom import ModelFacts, ReleasedFile, build_aibom, flatten_metrics

__all__ = ["model_format", "release_aibom"]

_FORMATS = {
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
    ".safetensors": "safetensors",
    ".onnx": "onnx",
    ".pt": "torch",
    ".pth": "torch",
    ".h5": "keras",
    ".keras": "keras",
}
_FRAMEWORK_BY_FORMAT = {"safetensors": "pytorch", "torch": "pytorch", "onnx": "onnx"}
_DISTRIBUTION = {"pytorch": "torch", "scikit-learn": "scikit-learn", "onnx": "onnx"}
_METRICS_NAME = re.compile(r"(^|/)[^/]*metrics[^/]*\.(json|ya?ml)$")
_SNIFF = 1 << 20
_TASKS = ("classification", "regression", "clustering", "segmentation", "detection", "ranking")
"""Artifact labels that say a model's task (when params.yaml's release.task does not)."""


def model_format(path: Path, name: str) -> str | None:
    """The model format of the file at ``path`` (released as ``name``), or None if none.

    By its suffix, else by its first bytes (a pickle of protocol 2 to 5).
    """
    suffix = Path(name).suffix.lower()
    if suffix in _FORMATS:
        return _FORMATS[suffix]
    with path.open("rb") as handle:
        head = handle.read(2)
    return "pickle" if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5 else None


def release_aibom(
    repo: Path, statement: Statement, subjects: Mapping[str, str], pins: BuildPins
) -> str:
    """The JSON text of the release's ``aibom.cdx.json`` (see the module docstring).

    Raises:
        OperationalError: a released file cannot be read, or the facts describe no model.
    """
    pipeline = load_pipeline(repo)
    config = load_project_config(repo).release
    params = load_params(repo)
    facts: Mapping[str, Any] = params.get("release") or {}
    files = {name: Sha256(digest) for name, digest in subjects.items()}
    declared = {p for s in pipeline.stages for p in s.metrics} | set(pipeline.metrics)
    plots = {p for s in pipeline.stages for p in s.plots}
    roles = {name: _role(name, declared, plots) for name in files}
    metrics = _metrics(repo, [n for n, r in roles.items() if r == "metrics"])
    formats = {n: model_format(repo / n, n) for n, r in roles.items() if r == "file"}
    groups = _model_groups(pipeline, files, formats, roles)
    grouped = {name for members in groups.values() for name in members}
    base = _base_facts(repo, facts, pins, metrics)
    framework = config.framework or str(facts.get("framework", ""))
    models = []
    for key, members in groups.items():
        spec = next((a for a in pipeline.artifacts if a.name == key), None)
        kinds = sorted({formats.get(m) or "" for m in members} - {""})
        own = {
            **base,
            "name": key if pipeline.artifacts else base["name"],
            "description": (spec.desc if spec else "") or base["description"],
        }
        task = next((t for t in (spec.labels if spec else ()) if t in _TASKS), "")
        if task and "task" not in facts:
            own["task"] = task
        models.append(
            ModelFacts(
                **own,
                framework=_framework(framework, kinds, [repo / m for m in members], pins),
                files={m: files[m] for m in members},
                stage=_producers(pipeline, members),
                format=", ".join(kinds),
                artifact=spec.name if spec else "",
                labels=spec.labels if spec else (),
            )
        )
    others = [
        ReleasedFile(n, files[n], roles[n], pipeline.producer_of(n) or "")
        for n in sorted(files)
        if n not in grouped
    ]
    return build_aibom(
        models,
        files=others,
        packages=pins.environment.packages,
        python=pins.environment.python,
        source_uri=pins.git.remote_url,
        commit=pins.git.commit,
        serial_seed=f"{pins.git.commit}:{statement.to_json()['subject']}",
        timestamp=dt.datetime.fromtimestamp(pins.git.commit_time, dt.UTC),
    )


def _role(name: str, metrics: set[str], plots: set[str]) -> str:
    if any(name == p or name.startswith(p.rstrip("/") + "/") for p in plots):
        return "plots"
    if name in metrics or _METRICS_NAME.search(name):
        return "metrics"
    return "file"


def _model_groups(
    pipeline: Pipeline,
    files: Mapping[str, Sha256],
    formats: Mapping[str, str | None],
    roles: Mapping[str, str],
) -> dict[str, list[str]]:
    """Model name -> its released files (see the module docstring).

    A release in which nothing is a model still describes one: its plain files (or, if
    there are none, all of them), as bitwright did before models were told apart.
    """
    groups: dict[str, list[str]] = {}
    for artifact in pipeline.artifacts:
        if artifact.type != "model":
            continue
        inside = [
            n for n in files if n == artifact.path or n.startswith(artifact.path.rstrip("/") + "/")
        ]
        if inside:
            groups[artifact.name] = inside
    taken = {n for members in groups.values() for n in members}
    loose = [n for n in sorted(files) if formats.get(n) and n not in taken]
    if not pipeline.artifacts and loose:
        return {"model": loose}
    groups.update({name: [name] for name in loose})
    if groups:
        return groups
    plain = [n for n in sorted(files) if roles[n] == "file"]
    return {"model": plain or sorted(files)}


def _base_facts(
    repo: Path, facts: Mapping[str, Any], pins: BuildPins, metrics: Mapping[str, Any]
) -> dict[str, Any]:
    licences = {p.path: str(facts.get("data_licence", "")) for p in pins.data}
    return {
        "name": str(facts.get("name", repo.name)),
        "version": str(facts.get("version", pins.git.commit[:12])),
        "task": str(facts.get("task", "unspecified")),
        "architecture": str(facts.get("architecture", "unspecified")),
        "architecture_family": str(facts.get("architecture_family", "")),
        "metrics": metrics,
        "datasets": pins.data,
        "licence": str(facts.get("licence", "NOASSERTION")),
        "description": str(facts.get("description", "")),
        "dataset_licences": {k: v for k, v in licences.items() if v},
    }


def _metrics(repo: Path, names: list[str]) -> dict[str, float | int | str]:
    """The released metrics, flattened; named by file too when there are several files."""
    found: dict[str, float | int | str] = {}
    for name in sorted(names):
        if not name.endswith(".json"):
            continue
        try:
            document = load_json(read_regular(repo / name), source=name, hint="")
        except (OperationalError, VerificationFailed):
            continue  # a metrics file that is not JSON is still released; it has no numbers
        if not isinstance(document, dict):
            continue
        for key, value in flatten_metrics(document).items():
            found[key if len(names) == 1 else f"{name}#{key}"] = value
    return dict(sorted(found.items()))


def _framework(chosen: str, formats: list[str], paths: list[Path], pins: BuildPins) -> str:
    """``NAME VERSION`` of a model's framework, or "" when neither said nor seen."""
    name = chosen
    if not name:
        if any(f in ("pickle", "joblib") for f in formats) and any(
            b"sklearn" in _head(p) for p in paths
        ):
            name = "scikit-learn"
        else:
            name = next((_FRAMEWORK_BY_FORMAT[f] for f in formats if f in _FRAMEWORK_BY_FORMAT), "")
    if not name:
        return ""
    distribution = _DISTRIBUTION.get(name.lower(), name)
    if name.lower() == "pytorch" and pins.environment.torch:
        return f"pytorch {pins.environment.torch}"
    prefix = f"{distribution.lower()}=="
    version = next(
        (p[len(prefix) :] for p in pins.environment.packages if p.startswith(prefix)), ""
    )
    return f"{name} {version}" if version else ""


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(_SNIFF)
    except OSError:
        return b""


def _producers(pipeline: Pipeline, members: list[str]) -> str:
    stages = dict.fromkeys(s for m in members if (s := pipeline.producer_of(m)) is not None)
    return ", ".join(stages)
