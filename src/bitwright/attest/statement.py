"""Typed wire models of in-toto Statement v1 with an SLSA Provenance v1 predicate.

The models follow the specs field by field (in-toto attestation ``spec/v1``: Statement,
ResourceDescriptor, DigestSet; SLSA ``provenance/v1``) and refuse what they do not know:
unknown fields, a wrong ``_type`` or ``predicateType``, digests that are not lowercase hex of
the algorithm's length, timestamps that are not RFC 3339. On the wire every field is camelCase
(``_type`` for the type); in Python it is snake_case. Free-form parts (``annotations``) are
plain JSON values, so integers stay integers (no protobuf ``Struct``). An absent optional
field is omitted, never written as ``null``.

The parameters of bitwright's buildType (``builders/buildtypes/dvc-pipeline/v1.md``) are typed
here too (:class:`ExternalParameters`, :class:`InternalParameters`), and
:func:`check_dvc_pipeline` checks the rules that span fields (the source dependency is the
built commit, the package lock digest is that of its lines...). :func:`loads_strict` reads
JSON without guessing (duplicate keys and NaN refused).

Build a model from its JSON form with ``Model.model_validate(data)``; sign the RFC 8785 bytes
of :meth:`Statement.to_json` (:func:`statement_bytes`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from bitwright import fileio
from bitwright.attest.canonical import canonical_json
from bitwright.fileio import MAX_JSON_DEPTH
from bitwright.model import DeterminismSettings

__all__ = [
    "BUILD_IMAGE",
    "LAYOUT_BYPRODUCT",
    "PYTHON_PACKAGES",
    "SLSA_PROVENANCE_V1",
    "SOURCE",
    "STATEMENT_V1",
    "BuildDefinition",
    "BuildMetadata",
    "Builder",
    "ContainerParameter",
    "Determinism",
    "DigestSet",
    "EnforcedSeal",
    "EnvironmentParameter",
    "ExternalParameters",
    "GitCommit",
    "Gpu",
    "InternalParameters",
    "NonEmpty",
    "ParamsFile",
    "Provenance",
    "ReleaseSelection",
    "ResourceDescriptor",
    "RunDetails",
    "SandboxSummary",
    "SourceSignatureParameter",
    "StageAllowance",
    "Statement",
    "WireModel",
    "check_dvc_pipeline",
    "dvc_parameters",
    "first_problem",
    "loads_strict",
    "statement_bytes",
]

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
"""The ``_type`` of an in-toto Statement v1."""

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
"""The ``predicateType`` of SLSA Provenance v1."""

SOURCE = "source"
BUILD_IMAGE = "build-image"
PYTHON_PACKAGES = "python-packages"
"""Names of the resolved dependencies the buildType requires exactly once."""

LAYOUT_BYPRODUCT = "root.layout"
"""The byproduct name of the signed layout."""

_HEX = re.compile(r"[0-9a-f]+")
_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Hex lengths of the algorithms bitwright writes or is likely to read; others need only be hex.
_HEX_LENGTHS: dict[str, tuple[int, ...]] = {
    "sha256": (64,),
    "sha384": (96,),
    "sha512": (128,),
    "sha1": (40,),
    "md5": (32,),
    "gitCommit": (40, 64),  # SHA-1 or SHA-256 object ids
    "gitTree": (40, 64),
}


def _check_digest_set(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError("a digest set needs at least one digest")
    for algorithm, digest in value.items():
        if _ALGORITHM.fullmatch(algorithm) is None:
            raise ValueError(f"{algorithm!r} is not a digest algorithm name")
        if _HEX.fullmatch(digest) is None:
            raise ValueError(f"{algorithm} digest {digest!r} is not lowercase hex")
        lengths = _HEX_LENGTHS.get(algorithm)
        if lengths is not None and len(digest) not in lengths:
            expected = " or ".join(str(n) for n in lengths)
            raise ValueError(
                f"{algorithm} digest has {len(digest)} hex digits, expected {expected}"
            )
    return value


def _check_base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"content is not base64 ({exc})") from None
    return value


DigestSet = Annotated[dict[str, str], AfterValidator(_check_digest_set)]
"""``{"sha256": "<hex>", "gitCommit": "<hex>", ...}``: one or more lowercase hex digests."""

Uri = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")]
Timestamp = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"),
]
Base64 = Annotated[str, AfterValidator(_check_base64)]


class WireModel(BaseModel):
    """A wire model: unknown fields refused, camelCase on the wire, absent fields omitted."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        # An absent field is left out, so one statement has one byte form.
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None:
                    raise ValueError(f"{key} is null; leave an absent field out")
        return data

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Only this model's own optional fields: a None inside free-form JSON stays.
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


class ResourceDescriptor(WireModel):
    """An in-toto ResourceDescriptor: a subject, a dependency or a byproduct.

    At least one of ``uri``, ``digest`` or ``content`` is set (the spec's minimum).
    """

    name: str | None = None
    uri: Uri | None = None
    digest: DigestSet | None = None
    content: Base64 | None = None
    download_location: Uri | None = None
    media_type: str | None = None
    annotations: dict[str, JsonValue] | None = None

    @model_validator(mode="after")
    def _identifies_something(self) -> ResourceDescriptor:
        if self.uri is None and self.digest is None and self.content is None:
            raise ValueError("a resource descriptor needs a uri, a digest or content")
        return self

    def content_bytes(self) -> bytes:
        """Return the decoded ``content`` (empty when there is none)."""
        return base64.b64decode(self.content) if self.content is not None else b""


class Builder(WireModel):
    """``runDetails.builder``: who ran the build."""

    id: Uri
    version: dict[str, str] | None = None
    builder_dependencies: list[ResourceDescriptor] | None = None


class BuildMetadata(WireModel):
    """``runDetails.metadata``: this run's id and times (RFC 3339)."""

    invocation_id: str | None = None
    started_on: Timestamp | None = None
    finished_on: Timestamp | None = None


class RunDetails(WireModel):
    """``runDetails``: the builder, the run's metadata and its byproducts."""

    builder: Builder
    metadata: BuildMetadata | None = None
    byproducts: list[ResourceDescriptor] | None = None


class BuildDefinition(WireModel):
    """``buildDefinition``: what was built, with which inputs (the buildType defines the params)."""

    build_type: Uri
    external_parameters: dict[str, JsonValue]
    internal_parameters: dict[str, JsonValue] | None = None
    resolved_dependencies: list[ResourceDescriptor] | None = None


class Provenance(WireModel):
    """The SLSA Provenance v1 predicate."""

    build_definition: BuildDefinition
    run_details: RunDetails


class Statement(WireModel):
    """An in-toto Statement v1 whose predicate is SLSA Provenance v1.

    Every subject carries a ``sha256`` digest: bitwright's subjects are files.
    """

    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: list[ResourceDescriptor] = Field(min_length=1)
    predicate_type: Literal["https://slsa.dev/provenance/v1"]
    predicate: Provenance

    @model_validator(mode="after")
    def _subjects_have_sha256(self) -> Statement:
        names = [s.name for s in self.subject]
        for subject in self.subject:
            if subject.digest is None or "sha256" not in subject.digest:
                raise ValueError(f"subject {subject.name!r} has no sha256 digest")
        if len(set(names)) != len(names):
            raise ValueError("two subjects have the same name")
        return self

    def to_json(self) -> dict[str, Any]:
        """Return the Statement as the JSON object that is signed (``_type`` included)."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data

    def subject_digests(self) -> dict[str, str]:
        """Return subject name -> its sha256 (``"_"`` for a subject without a name)."""
        return {
            (s.name if s.name is not None else "_"): s.digest["sha256"]
            for s in self.subject
            if s.digest is not None
        }

    def dependency(self, name: str) -> ResourceDescriptor | None:
        """Return the resolved dependency called ``name``, or ``None``."""
        for dep in self.predicate.build_definition.resolved_dependencies or ():
            if dep.name == name:
                return dep
        return None


# Parameters of the buildType https://bitwright.dev/buildtypes/dvc-pipeline/v1
# (builders/buildtypes/dvc-pipeline/v1.md): typed so that unknown fields are refused there too.

GitCommit = Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{40}|[0-9a-f]{64})$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class ParamsFile(WireModel):
    """``externalParameters.params``: the parameter file every stage reads, and its digest."""

    path: NonEmpty
    sha256: Sha256Hex


class ReleaseSelection(WireModel):
    """``externalParameters.release``: the repository paths the project declares for release.

    The ``artifacts:`` of ``dvc.yaml``, its metrics and plots, and the project config's
    ``release.paths`` (less ``release.exclude``): the subjects are exactly the stage products
    inside these paths. Absent, the subjects are the products of the final stages.
    """

    paths: list[NonEmpty] = Field(min_length=1)
    exclude: list[NonEmpty] | None = None


class ExternalParameters(WireModel):
    """``externalParameters`` of a dvc-pipeline/v1 build: what the person building chose."""

    repository: NonEmpty
    commit: GitCommit
    targets: list[NonEmpty] = Field(min_length=1)
    params: ParamsFile
    builder: Uri
    release: ReleaseSelection | None = None


class Determinism(WireModel):
    """``internalParameters.determinism``: settings as declared and as receipts confirmed.

    ``declared`` keeps the key names of ``params.yaml`` ``determinism:`` (snake_case);
    ``confirmed`` maps a stage name to what its receipts confirmed, keys as the receipts
    name them.
    """

    declared: dict[str, JsonValue]
    confirmed: dict[str, dict[str, JsonValue]]


class EnforcedSeal(WireModel):
    """``internalParameters.sandbox.enforced``: what was enforced for every stage."""

    network_cut: bool
    repo_read_only: bool
    undeclared_hidden: bool
    env_cleared: bool


class SandboxSummary(WireModel):
    """``internalParameters.sandbox``: the weakest seal any stage ran under."""

    kind: Literal["podman", "bubblewrap", "unshare", "none"]
    enforced: EnforcedSeal


class ContainerParameter(WireModel):
    """``internalParameters.container``: the build image and whether stages ran inside it."""

    image: NonEmpty
    digest: Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
    enforced: bool
    how: str

    @model_validator(mode="after")
    def _no_placeholder(self) -> ContainerParameter:
        if self.digest == "sha256:" + "0" * 64:
            raise ValueError("an all-zero digest names no image")
        return self


class Gpu(WireModel):
    """One GPU of ``internalParameters.environment.gpus``."""

    name: str
    uuid: str
    memory_bytes: int
    compute_capability: str


class EnvironmentParameter(WireModel):
    """``internalParameters.environment``: the software and hardware of the build."""

    python: str
    os: str
    machine: str
    cpu_model: str
    cpu_flags_sha256: Sha256Hex
    torch: str
    cuda: str
    cudnn: str
    gpu_driver: str
    gpus: list[Gpu]


class StageAllowance(WireModel):
    """One stage's entry of ``internalParameters.allowances``: what loosened its seal.

    ``env`` names the caller's variables passed through (their values are digests in the
    link), ``writable`` the repository directories it could write (scratch, discarded),
    ``network`` whether it kept the network (then the build is not hermetic).
    """

    env: list[NonEmpty]
    writable: list[NonEmpty]
    network: bool


class SourceSignatureParameter(WireModel):
    """``internalParameters.sourceSignature``: the git signature the source commit carries.

    Absent when the commit is unsigned. ``commitObject`` is the raw commit object (base64),
    from which a verifier recomputes the commit id and checks the signature offline.
    """

    kind: Literal["ssh", "gpg", "x509", "unknown"]
    signer: str
    commit_object: Base64


class InternalParameters(WireModel):
    """``internalParameters`` of a dvc-pipeline/v1 build: set by the builder, not the user."""

    determinism: Determinism
    sandbox: SandboxSummary
    environment: EnvironmentParameter
    dirty: bool
    dirty_paths: list[str] | None = None
    allowances: dict[str, StageAllowance] | None = None
    hermetic: bool | None = None
    container: ContainerParameter | None = None
    source_signature: SourceSignatureParameter | None = None


def dvc_parameters(statement: Statement) -> tuple[ExternalParameters, InternalParameters]:
    """Return the typed external and internal parameters of a dvc-pipeline/v1 statement.

    Raises:
        ValueError: they do not follow the buildType (one line: where and what).
    """
    definition = statement.predicate.build_definition
    try:
        external = ExternalParameters.model_validate(definition.external_parameters)
    except ValidationError as exc:
        raise ValueError(f"externalParameters.{first_problem(exc)}") from None
    try:
        internal = InternalParameters.model_validate(definition.internal_parameters or {})
    except ValidationError as exc:
        raise ValueError(f"internalParameters.{first_problem(exc)}") from None
    return external, internal


def check_dvc_pipeline(statement: Statement) -> None:
    """Check what the dvc-pipeline/v1 buildType requires beyond the SLSA schema.

    Raises:
        ValueError: the parameters do not follow the buildType, or parts of the statement
            contradict each other (one line).
    """
    external, internal = dvc_parameters(statement)
    declared = internal.determinism.declared
    known = {f.name for f in dataclasses.fields(DeterminismSettings)}
    if set(declared) != known:
        raise ValueError(
            f"determinism.declared has keys {sorted(declared)}, expected {sorted(known)}"
        )
    DeterminismSettings.from_json(declared)
    if statement.predicate.run_details.builder.id != external.builder:
        raise ValueError("runDetails.builder.id differs from externalParameters.builder")
    deps = statement.predicate.build_definition.resolved_dependencies or []
    names = [d.name for d in deps]
    if None in names or len(set(names)) != len(names):
        raise ValueError("every resolved dependency needs a name of its own")
    for required in (SOURCE, PYTHON_PACKAGES):
        if required not in names:
            raise ValueError(f"resolved dependency {required!r} is missing")
    _check_image(statement, internal)
    source = statement.dependency(SOURCE)
    if source is None or (source.digest or {}).get("gitCommit") != external.commit:
        raise ValueError("the source dependency's gitCommit differs from the built commit")
    packages = statement.dependency(PYTHON_PACKAGES)
    lines = ((packages.annotations or {}).get("packages") if packages else None) or []
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
        raise ValueError("python-packages: annotations.packages is not a list of lines")
    joined = "\n".join(str(x) for x in lines).encode()
    if packages is None or (packages.digest or {}).get("sha256") != _sha256(joined):
        raise ValueError("python-packages: the sha256 is not that of its package lines")
    for item in statement.predicate.run_details.byproducts or []:
        if item.name is None or "sha256" not in (item.digest or {}):
            raise ValueError("every byproduct needs a name and a sha256 digest")


def _check_image(statement: Statement, internal: InternalParameters) -> None:
    """A build image is named in both places or in neither, with one digest."""
    image = statement.dependency(BUILD_IMAGE)
    if (image is None) != (internal.container is None):
        raise ValueError(
            "the build-image dependency and internalParameters.container must come together"
        )
    if image is not None and internal.container is not None:
        digest = (image.digest or {}).get("sha256")
        if f"sha256:{digest}" != internal.container.digest:
            raise ValueError("the build-image digest differs from internalParameters.container")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def loads_strict(payload: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON, refusing duplicate keys, NaN/Infinity and deep nesting (no guessing, no crash).

    Raises:
        ValueError: not UTF-8 JSON, a duplicate key, a non-JSON constant, or nested deeper
            than ``max_depth``.
    """
    return fileio.loads_strict(payload, max_depth=max_depth)


def statement_bytes(statement: Statement) -> bytes:
    """Return the RFC 8785 canonical bytes of ``statement`` (what a DSSE envelope signs)."""
    return canonical_json(statement.to_json())


def first_problem(exc: ValidationError) -> str:
    """Return the first problem of a pydantic error as one line: ``where: what (n problem(s))``."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "document"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message} ({exc.error_count()} problem(s))"
