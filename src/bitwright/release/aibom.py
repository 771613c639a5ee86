"""The AI bill of materials: a CycloneDX 1.6 ML-BOM of a released model, its data and software.

:func:`build_aibom` writes the JSON text of ``aibom.cdx.json``:

* each model, a ``machine-learning-model`` component whose ``modelCard`` gives its task,
  architecture, datasets and metrics; its released files are nested ``file`` components with
  their sha256, and the model's own SHA-256 is the bitwright tree digest over them; the stage
  that made it, its file format and its DVC artifact name and labels are properties;
* every other released file: metrics and plots as ``data`` components, anything else as a
  ``file`` component, each with its sha256 and the stage that made it;
* each data snapshot, a ``data`` component with its sha256 (and DVC md5 as a property);
* the framework and every installed Python distribution, ``library`` components with purls;
* the dependency graph model -> datasets and model -> framework.

The same inputs give the same bytes: the serial number is a uuid5 of a seed and the timestamp
is passed in (the commit time), never read from the clock. cyclonedx-python-lib has no model
card or dataset details yet, so those are added to its JSON output.

:func:`validate_aibom` checks a BOM against the CycloneDX 1.6 strict schema shipped with the
library (offline); :func:`aibom_subjects` returns the file digests a BOM claims for the model
(both live in :mod:`._aibom_check` and are re-exported here).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import (
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from rfc3986_validator import validate_rfc3986  # type: ignore[import-untyped]

from bitwright import __version__
from bitwright.digest import tree_sha256
from bitwright.errors import OperationalError
from bitwright.model import DataPin, Sha256, is_sha256
from bitwright.release._aibom_check import AIBOM_FILE, aibom_subjects, validate_aibom

__all__ = [
    "AIBOM_FILE",
    "ModelFacts",
    "ReleasedFile",
    "aibom_subjects",
    "build_aibom",
    "flatten_metrics",
    "validate_aibom",
]

_SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:bitwright:aibom:serial")
_PREFIX = "bitwright:"
_TREE_NOTE = "sha256 of the sha256sum-style listing of the file components below"
# Framework names as people write them -> the PyPI distribution that provides them.
_FRAMEWORK_DISTRIBUTIONS = {"pytorch": "torch"}
_REQUIREMENT_RE = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==(\S+)")
_SCP_LIKE_RE = re.compile(r"([\w.-]+@[\w.-]+):(?!//)(.+)")


@dataclass(frozen=True)
class ModelFacts:
    """What the AI BOM says about the released model.

    Attributes:
        name: the model's name.
        version: the model's version (a release version or the commit).
        task: what it does (``classification``, ``regression`` ...).
        architecture: the specific architecture (``MLP 64-128-10``).
        framework: the framework and its version, ``"pytorch 2.13.0"``.
        files: release-relative POSIX paths of the model's files -> their sha256.
        metrics: the evaluate stage's metrics, flattened (see :func:`flatten_metrics`).
        datasets: the data snapshots the model was trained and evaluated on.
        licence: the model's licence, an SPDX id or expression or a free-text name.
        description: one paragraph on the model.
        architecture_family: the family (``multilayer perceptron``); ``architecture`` if empty.
        dataset_licences: a dataset's path -> its licence; a dataset not named has none.
        stage: the pipeline stage that produced it ("" if unknown).
        format: its file format (``pickle``, ``joblib``, ``safetensors``, ``onnx``...).
        artifact: its name in the ``artifacts:`` of ``dvc.yaml`` ("" if not declared).
        labels: its labels there.
    """

    name: str
    version: str
    task: str
    architecture: str
    framework: str
    files: Mapping[str, Sha256]
    metrics: Mapping[str, float | int | str]
    datasets: Sequence[DataPin]
    licence: str
    description: str
    architecture_family: str = ""
    dataset_licences: Mapping[str, str] = field(default_factory=dict)
    stage: str = ""
    format: str = ""
    artifact: str = ""
    labels: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The model's ``bom-ref``."""
        return f"model:{self.name}@{self.version}"


@dataclass(frozen=True)
class ReleasedFile:
    """A released file that is not a model's.

    Attributes:
        path: its path in the release (release-relative POSIX).
        sha256: its digest.
        role: ``metrics`` or ``plots`` (described as data), or ``file``.
        stage: the pipeline stage that produced it ("" if unknown).
    """

    path: str
    sha256: Sha256
    role: str = "file"
    stage: str = ""


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, float | int | str]:
    """Flatten nested metrics (``metrics.json``) into dotted names.

    ``{"accuracy": 0.97, "per_class": {"0": {"f1": 1.0}}}`` becomes
    ``{"accuracy": 0.97, "per_class.0.f1": 1.0}``; list items are named by their index,
    booleans and nulls become the strings ``"true"``, ``"false"`` and ``"null"``.

    Args:
        metrics: the parsed JSON object.

    Returns:
        Dotted name -> number or string, in sorted order.
    """
    flat: dict[str, float | int | str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{prefix}.{index}" if prefix else str(index), item)
        elif isinstance(value, bool) or value is None:
            flat[prefix] = json.dumps(value)
        elif isinstance(value, int | float | str):
            flat[prefix] = value
        else:
            flat[prefix] = str(value)

    walk("", metrics)
    return dict(sorted(flat.items()))


def build_aibom(
    model: ModelFacts | Sequence[ModelFacts],
    *,
    packages: Sequence[str],
    python: str,
    source_uri: str,
    commit: str,
    serial_seed: str,
    timestamp: datetime,
    files: Sequence[ReleasedFile] = (),
) -> str:
    """Return the JSON text of the CycloneDX 1.6 ML-BOM of a release.

    Args:
        model: the facts of the released model, or of each of them (at least one).
        packages: the installed Python distributions as ``name==version`` lines
            (``EnvironmentPin.packages``); each becomes a ``library`` component.
        python: the interpreter (``CPython 3.11.7``).
        source_uri: the source repository's URI (``GitPin.remote_url``).
        commit: the source commit.
        serial_seed: what the serial number is derived from (the provenance's subject digest
            or the commit); the same seed gives the same serial number.
        timestamp: the BOM's time; timezone-aware (use the commit time for reproducibility).
        files: the released files that belong to no model (metrics, plots, documents).

    Returns:
        Indented JSON text ending in a newline; the same arguments give the same bytes.

    Raises:
        OperationalError: the facts cannot describe a model (no files, a digest that is not
            sha256, a naive timestamp, a package line that is not ``name==version``).
    """
    models = [model] if isinstance(model, ModelFacts) else list(model)
    if not models:
        raise OperationalError(
            f"the release has no model to describe in {AIBOM_FILE}",
            hint="declare the model in the artifacts: of dvc.yaml (type: model)",
        )
    for facts in models:
        _check_facts(facts, timestamp)
    libraries = _library_components(packages)
    frameworks = {
        f.framework: _framework_component(f.framework, libraries) for f in models if f.framework
    }
    pins = {pin.path: (pin, f) for f in models for pin in f.datasets}
    datasets = {
        path: _dataset_component(pin, f.dataset_licences.get(pin.path))
        for path, (pin, f) in sorted(pins.items())
    }
    ml_models = [_model_component(f, source_uri=source_uri, commit=commit) for f in models]
    others = [_released_component(f) for f in files]
    tool = Component(type=ComponentType.APPLICATION, name="bitwright", version=__version__)
    metadata = BomMetaData(
        timestamp=timestamp,
        properties=[
            Property(name=f"{_PREFIX}python", value=python),
            Property(name=f"{_PREFIX}source-uri", value=source_uri),
            Property(name=f"{_PREFIX}commit", value=commit),
        ],
    )
    metadata.tools.components.add(tool)
    bom = Bom(
        serial_number=uuid.uuid5(_SERIAL_NAMESPACE, serial_seed),
        metadata=metadata,
        components=[*ml_models, *others, *datasets.values(), *libraries.values()],
    )
    for framework in frameworks.values():
        if framework.bom_ref.value not in libraries:
            bom.components.add(framework)
    for facts, component in zip(models, ml_models, strict=True):
        used = [datasets[pin.path] for pin in facts.datasets]
        framework_used = [frameworks[facts.framework]] if facts.framework else []
        bom.register_dependency(component, [*used, *framework_used])
    document = json.loads(JsonV1Dot6(bom).output_as_string())
    for facts in models:
        _add_ml_details(document, facts)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _check_facts(model: ModelFacts, timestamp: datetime) -> None:
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise OperationalError(
            f"AI BOM timestamp {timestamp.isoformat()} has no timezone",
            hint="pass an aware datetime, e.g. datetime.fromtimestamp(commit_time, UTC)",
        )
    if not model.files:
        raise OperationalError(
            f"model {model.name!r} has no files to describe in {AIBOM_FILE}",
            hint="run 'bitwright build' first so that the release has artifacts",
        )
    for path, digest in model.files.items():
        if not is_sha256(digest):
            raise OperationalError(
                f"model file {path}: {digest!r} is not a sha256 digest",
                hint="pass lowercase hex sha256 digests (bitwright.digest)",
            )
    for pin in model.datasets:
        if not is_sha256(pin.sha256):
            raise OperationalError(
                f"dataset {pin.path}: {pin.sha256!r} is not a sha256 digest",
                hint="pin the data again ('bitwright build' pins it)",
            )


def _library_components(packages: Sequence[str]) -> dict[str, Component]:
    libraries: dict[str, Component] = {}
    for line in packages:
        match = _REQUIREMENT_RE.fullmatch(line.strip())
        if match is None:
            raise OperationalError(
                f"package line {line!r} is not 'name==version'",
                hint="pass EnvironmentPin.packages (sorted name==version lines)",
            )
        component = _library(match.group(1), match.group(2))
        libraries.setdefault(component.bom_ref.value or "", component)
    return libraries


def _library(name: str, version: str, *, role: str = "") -> Component:
    purl = PackageURL(type="pypi", name=name, version=version)
    properties = [Property(name=f"{_PREFIX}role", value=role)] if role else []
    return Component(
        type=ComponentType.LIBRARY,
        name=name,
        version=version,
        purl=purl,
        bom_ref=purl.to_string(),
        properties=properties,
    )


def _framework_component(framework: str, libraries: Mapping[str, Component]) -> Component:
    """The library a model's framework names; the installed one when it is installed."""
    parts = framework.split()
    if len(parts) != 2:
        raise OperationalError(
            f"framework {framework!r} is not 'NAME VERSION'",
            hint="pass e.g. 'pytorch 2.13.0' (EnvironmentPin.torch gives the version)",
        )
    name = _FRAMEWORK_DISTRIBUTIONS.get(parts[0].lower(), parts[0])
    component = _library(name, parts[1], role="framework")
    installed = libraries.get(component.bom_ref.value or "")
    if installed is not None:
        installed.properties.add(Property(name=f"{_PREFIX}role", value="framework"))
        return installed
    return component


def _dataset_component(pin: DataPin, licence: str | None) -> Component:
    kind = "tree" if pin.dvc_md5.endswith(".dir") else "file"
    remote = _iri(pin.remote_url)
    references = []
    if remote is not None:
        references.append(
            ExternalReference(
                type=ExternalReferenceType.DISTRIBUTION,
                url=XsUri(remote),
                comment="DVC remote: 'dvc pull' fetches the snapshot by its md5",
            )
        )
    return Component(
        type=ComponentType.DATA,
        name=pin.path,
        bom_ref=f"data:{pin.path}",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=pin.sha256)],
        licenses=[LicenseFactory().make_from_string(licence)] if licence else [],
        external_references=references,
        properties=[
            Property(name=f"{_PREFIX}dvc:md5", value=pin.dvc_md5),
            *(
                [Property(name=f"{_PREFIX}dvc:remote", value=pin.remote_url)]
                if pin.remote_url
                else []
            ),
            Property(name=f"{_PREFIX}sha256-of", value=kind),
            Property(name=f"{_PREFIX}size", value=str(pin.size)),
            Property(name=f"{_PREFIX}nfiles", value=str(pin.nfiles)),
        ],
    )


def _model_component(model: ModelFacts, *, source_uri: str, commit: str) -> Component:
    files = [
        Component(
            type=ComponentType.FILE,
            name=path,
            bom_ref=f"file:{path}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)],
        )
        for path, digest in sorted(model.files.items())
    ]
    scp_like = _SCP_LIKE_RE.fullmatch(source_uri)
    vcs = _iri(f"ssh://{scp_like[1]}/{scp_like[2]}" if scp_like else source_uri)
    references = []
    if vcs is not None:
        references.append(
            ExternalReference(
                type=ExternalReferenceType.VCS, url=XsUri(vcs), comment=f"commit {commit}"
            )
        )
    described = {
        "framework": model.framework,
        "stage": model.stage,
        "format": model.format,
        "artifact": model.artifact,
    }
    properties = [
        *(Property(name=f"{_PREFIX}{k}", value=v) for k, v in described.items() if v),
        *(Property(name=f"{_PREFIX}label", value=label) for label in model.labels),
        Property(name=f"{_PREFIX}sha256-of", value=_TREE_NOTE),
    ]
    return Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=model.name,
        version=model.version,
        description=model.description,
        bom_ref=model.ref,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=tree_sha256(model.files))],
        licenses=[LicenseFactory().make_from_string(model.licence)] if model.licence else [],
        external_references=references,
        properties=properties,
        components=files,
    )


def _released_component(released: ReleasedFile) -> Component:
    """A released file of no model: metrics and plots as data, anything else as a file."""
    if not is_sha256(released.sha256):
        raise OperationalError(
            f"released file {released.path}: {released.sha256!r} is not a sha256 digest",
            hint="pass lowercase hex sha256 digests (bitwright.digest)",
        )
    data = released.role in ("metrics", "plots")
    properties = [Property(name=f"{_PREFIX}role", value=released.role)]
    if released.stage:
        properties.append(Property(name=f"{_PREFIX}stage", value=released.stage))
    return Component(
        type=ComponentType.DATA if data else ComponentType.FILE,
        name=released.path,
        bom_ref=f"released:{released.path}",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=released.sha256)],
        properties=properties,
    )


def _add_ml_details(document: dict[str, Any], model: ModelFacts) -> None:
    """Add what cyclonedx-python-lib cannot express yet: the model card, dataset details."""
    by_ref = {c["bom-ref"]: c for c in document["components"]}
    dataset_refs = [f"data:{pin.path}" for pin in model.datasets]
    by_ref[model.ref]["modelCard"] = {
        "modelParameters": {
            "task": model.task,
            "architectureFamily": model.architecture_family or model.architecture,
            "modelArchitecture": model.architecture,
            "datasets": [{"ref": ref} for ref in dataset_refs],
        },
        "quantitativeAnalysis": {
            "performanceMetrics": [
                {"type": name, "value": _metric_text(value)}
                for name, value in sorted(model.metrics.items())
            ]
        },
    }
    for pin, ref in zip(model.datasets, dataset_refs, strict=True):
        data: dict[str, Any] = {
            "type": "dataset",
            "name": pin.path,
            "description": f"DVC-tracked snapshot: {pin.nfiles} file(s), {pin.size} bytes",
        }
        remote = _iri(pin.remote_url)
        if remote is not None:
            data["contents"] = {"url": remote}
        by_ref[ref]["data"] = [data]


def _metric_text(value: float | int | str) -> str:
    # repr gives the shortest text that reads back as the same float.
    return value if isinstance(value, str) else repr(value)


def _iri(text: str) -> str | None:
    """Return ``text`` as a URI reference (which every IRI-reference check accepts), or None.

    The schema's ``iri-reference`` format is checked only where a validator has an IRI parser
    installed; asking for the stricter RFC 3986 form keeps the BOM valid everywhere.
    """
    if not text:
        return None
    candidate = str(XsUri(text))  # percent-encodes spaces and the like
    return candidate if validate_rfc3986(candidate, rule="URI_reference") else None
