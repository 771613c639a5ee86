"""The signed SLSA v1 provenance of a build: build it from the pins, sign it, read it back.

The provenance is an in-toto Statement v1 (:mod:`bitwright.attest.statement`) whose subjects
are the released artifacts and whose predicate follows the buildType
``https://bitwright.dev/buildtypes/dvc-pipeline/v1`` (``builders/buildtypes/dvc-pipeline/v1.md``):
the commit, targets and params file the build was asked for; the determinism settings as
declared and as receipts confirmed; the weakest seal any stage ran under; every pinned input
(source, DVC data, build image, Python package lock, third-party models and data); one
byproduct per stage link. It is signed as RFC 8785 canonical JSON in a DSSE envelope with
payloadType ``application/vnd.in-toto+json``, by any signer that turns (payload, payloadType)
into an envelope, and parsed back fail-closed (:func:`parse_statement`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from bitwright import __version__
from bitwright.attest.dsse import (
    INTOTO_PAYLOAD_TYPE,
    read_envelope,
    unverified_payload,
    verify_envelope,
    write_envelope,
)
from bitwright.attest.keys import Key
from bitwright.attest.statement import (
    BUILD_IMAGE,
    LAYOUT_BYPRODUCT,
    PYTHON_PACKAGES,
    SLSA_PROVENANCE_V1,
    SOURCE,
    STATEMENT_V1,
    ExternalParameters,
    InternalParameters,
    Statement,
    check_dvc_pipeline,
    dvc_parameters,
    first_problem,
    loads_strict,
    statement_bytes,
)
from bitwright.errors import OperationalError, UsageError, VerificationFailed
from bitwright.model import (
    BuildPins,
    ContainerPin,
    JsonModel,
    SandboxAllowances,
    SandboxKind,
    SandboxReport,
    Sha256,
    is_sha256,
)
from bitwright.pins import BUILD_TYPE
from bitwright.pins.git import redact_url

__all__ = [
    "PROVENANCE_FILE",
    "SANDBOX_KEY",
    "SignFn",
    "ThirdParty",
    "build_provenance",
    "external_parameters",
    "internal_parameters",
    "parse_statement",
    "provenance_envelope",
    "read_provenance",
    "write_provenance",
]

PROVENANCE_FILE = "provenance.intoto.json"
"""The file name of the signed provenance in the attestations and release directories."""

SANDBOX_KEY = "sandbox"
"""The key of a stage's ``confirmed`` mapping that holds its sandbox report, not a setting."""

SignFn = Callable[[bytes, str], dict[str, Any]]
"""A signer: (payload, payloadType) -> DSSE envelope JSON object."""

_THIRD_PARTY_KINDS = ("model", "dataset")
_DAMAGED = "the provenance is damaged or was not written by bitwright; fetch the release again"
_BUG = "this is a bug in what recorded the build; report it"
_SEALS = ("network_cut", "repo_read_only", "undeclared_hidden", "env_cleared")
_CONTAINER_FIELDS = ("image", "digest", "enforced", "how")
_LOCK_FIELDS = ("packages", "packages_sha256")  # recorded as the python-packages dependency


@dataclass(frozen=True)
class ThirdParty:
    """A model or dataset fetched from outside the repository, pinned on first use (TOFU).

    Attributes:
        uri: where it came from (``https://...``, ``hf://...``).
        sha256: the digest recorded when it was first fetched; later builds must match it.
        kind: ``"model"`` or ``"dataset"``.
        path: its repository-relative local path (the dependency's ``name``).
    """

    uri: str
    sha256: Sha256
    kind: str
    path: str

    def __post_init__(self) -> None:
        problems = [
            (self.kind not in _THIRD_PARTY_KINDS, "kind must be 'model' or 'dataset'"),
            (not is_sha256(self.sha256), f"{self.sha256!r} is not a sha256"),
            (re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", self.uri) is None, "uri is not a URI"),
            (not self.path or self.path.startswith("/"), "path is not repository-relative"),
        ]
        for failed, problem in problems:
            if failed:
                raise UsageError(
                    f"third-party {self.kind} {self.uri!r}: {problem}", hint="fix its TOFU pin"
                )


def build_provenance(
    *,
    subjects: Mapping[str, Sha256],
    pins: BuildPins,
    source_uri: str,
    targets: Sequence[str],
    params: Mapping[str, Sha256],
    builder_id: str,
    invocation_id: str,
    started_on: str,
    finished_on: str,
    links: Mapping[str, tuple[str, Sha256]],
    confirmed: Mapping[str, Mapping[str, Any]],
    third_party: Sequence[ThirdParty] = (),
    layout_sha256: Sha256 | None = None,
    builder_version: Mapping[str, str] | None = None,
    release: Mapping[str, Sequence[str]] | None = None,
    allowances: Mapping[str, SandboxAllowances] | None = None,
    extra_byproducts: Sequence[Mapping[str, Any]] = (),
) -> Statement:
    """Build the provenance Statement of a finished build.

    Args:
        subjects: released file name -> its sha256 (at least one).
        pins: what the build pinned before any stage ran.
        source_uri: where the source is fetched (the ``origin`` URL; credentials are removed).
        targets: the ``dvc repro`` targets (``["dvc.yaml"]`` for the whole pipeline).
        params: the params file every stage reads -> its sha256 (exactly one entry).
        builder_id: the builder that ran the build (``bitwright.pins.builder_id``).
        invocation_id: this build's id (a UUID).
        started_on: RFC 3339 UTC start time.
        finished_on: RFC 3339 UTC finish time.
        links: stage -> (its link file name ``STAGE.KEYID8.link``, sha256 of the file bytes).
        confirmed: stage -> the determinism settings its receipts confirmed; the key
            :data:`SANDBOX_KEY` holds the stage's :class:`SandboxReport` (or its JSON form).
            A linked stage without a report counts as unsealed.
        third_party: TOFU-pinned models and datasets.
        layout_sha256: sha256 of the signed layout file, recorded as a byproduct.
        builder_version: ``runDetails.builder.version``; default ``{"bitwright": VERSION}``.
        release: the paths the project declares for release (``{"paths": [...], "exclude":
            [...]}``), recorded as ``externalParameters.release``; None when the subjects are
            the final stages' products.
        allowances: stage -> what the project config let it do beyond the seal; stages
            without any are left out (``internalParameters.allowances``).
        extra_byproducts: further byproducts (ResourceDescriptors as JSON), such as the
            trajectory summaries of stages that recorded their training.

    Returns:
        The Statement, checked against the buildType and serializable canonically.

    Raises:
        UsageError: no subject, not exactly one params file, a confirmed stage without a
            link, a badly named link, a dependency name used twice, or an integer beyond
            I-JSON.
        OperationalError: a pin, digest or report is malformed (a bug of the caller).
    """
    if not subjects:
        raise UsageError("the provenance needs at least one subject", hint="release an artifact")
    if len(params) != 1:
        raise UsageError(
            f"the dvc-pipeline/v1 buildType records exactly one params file, got {len(params)}",
            hint="let every stage read params.yaml (composed from configs/)",
        )
    stray = sorted(set(confirmed) - set(links))
    if stray:
        raise UsageError(f"stage {stray[0]!r} has confirmed settings but no link", hint=_BUG)
    repository = redact_url(source_uri)
    ((params_path, params_sha256),) = params.items()
    data: dict[str, Any] = {
        "_type": STATEMENT_V1,
        "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(subjects.items())],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "repository": repository,
                    "commit": pins.git.commit,
                    "targets": list(targets),
                    "params": {"path": params_path, "sha256": params_sha256},
                    "builder": builder_id,
                    **_release_parameter(release),
                },
                "internalParameters": {
                    **_internal_parameters(pins, links, confirmed),
                    **_allowances_parameter(allowances or {}),
                },
                "resolvedDependencies": _dependencies(pins, repository, third_party),
            },
            "runDetails": {
                "builder": {
                    "id": builder_id,
                    "version": dict(builder_version or {"bitwright": __version__}),
                },
                "metadata": {
                    "invocationId": invocation_id,
                    "startedOn": started_on,
                    "finishedOn": finished_on,
                },
                "byproducts": [*_byproducts(links, layout_sha256), *map(dict, extra_byproducts)],
            },
        },
    }
    try:
        statement = Statement.model_validate(data)
    except ValidationError as exc:
        problem = first_problem(exc)
        raise OperationalError(f"cannot build the provenance: {problem}", hint=_BUG) from None
    try:
        check_dvc_pipeline(statement)
    except ValueError as exc:
        raise OperationalError(f"cannot build the provenance: {exc}", hint=_BUG) from None
    statement_bytes(statement)  # fail here, not at signing, on values JSON cannot hold
    return statement


def provenance_envelope(statement: Statement, sign: SignFn) -> dict[str, Any]:
    """Sign the canonical bytes of ``statement`` and return the DSSE envelope.

    Args:
        statement: the provenance (see :func:`build_provenance`).
        sign: any signer: ``lambda p, t: sign_envelope(p, t, signer)`` for a local key.

    Raises:
        OperationalError: the signer returned an envelope that does not carry these bytes.
    """
    payload = statement_bytes(statement)
    envelope = sign(payload, INTOTO_PAYLOAD_TYPE)
    try:
        signed = unverified_payload(envelope, source="the signed provenance")
    except VerificationFailed as exc:
        raise OperationalError(exc.message, hint="the signer is broken; report it") from None
    if signed != payload or envelope.get("payloadType") != INTOTO_PAYLOAD_TYPE:
        raise OperationalError(
            "the signer returned an envelope of other bytes or another payloadType than "
            "the provenance",
            hint="the signer is broken; report it",
        )
    return envelope


def write_provenance(envelope: dict[str, Any], path: Path) -> Path:
    """Write the signed provenance to ``path`` as canonical JSON, atomically; return ``path``.

    Raises:
        OperationalError: the file cannot be written.
    """
    return write_envelope(envelope, path)


def read_provenance(path: Path, *, keys: Sequence[Key]) -> Statement:
    """Read ``path``, check that one of ``keys`` signed it, and parse its Statement.

    Raises:
        OperationalError: the file is missing or unreadable.
        UsageError: ``keys`` is empty.
        VerificationFailed: not a DSSE envelope, not signed by ``keys``, or not a
            dvc-pipeline/v1 SLSA provenance (see :func:`parse_statement`).
    """
    envelope = read_envelope(path)
    payload = verify_envelope(envelope, keys, payload_type=INTOTO_PAYLOAD_TYPE, source=str(path))
    return parse_statement(payload, source=str(path))


def parse_statement(payload: bytes, *, source: str = "provenance") -> Statement:
    """Parse a provenance payload, refusing anything this version does not understand.

    Args:
        payload: the (authenticated) payload of the provenance envelope.
        source: what to call it in messages (usually its file).

    Raises:
        VerificationFailed: ``unknown predicate type X``, ``unknown build type X``, or
            ``malformed statement: ...`` for invalid JSON, duplicate keys, a wrong ``_type``,
            unknown fields, bad digests or timestamps, or parts that contradict each other.
    """
    try:
        data = loads_strict(payload)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, our hooks
        _malformed(source, f"not JSON ({exc})")
    if not isinstance(data, dict):
        _malformed(source, f"a JSON {type(data).__name__}, not an object")
    if data.get("_type") != STATEMENT_V1:
        _malformed(source, f"_type is {data.get('_type')!r}, expected {STATEMENT_V1!r}")
    if data.get("predicateType") != SLSA_PROVENANCE_V1:
        raise VerificationFailed(
            f"{source}: unknown predicate type {data.get('predicateType')!r}",
            hint=f"bitwright reads SLSA provenance v1 ({SLSA_PROVENANCE_V1})",
        )
    try:
        statement = Statement.model_validate(data)
    except ValidationError as exc:
        _malformed(source, first_problem(exc))
    build_type = statement.predicate.build_definition.build_type
    if build_type != BUILD_TYPE:
        raise VerificationFailed(
            f"{source}: unknown build type {build_type!r}",
            hint=f"this bitwright understands {BUILD_TYPE}; upgrade it for newer builds",
        )
    try:
        check_dvc_pipeline(statement)
    except ValueError as exc:
        _malformed(source, str(exc))
    return statement


def external_parameters(statement: Statement) -> ExternalParameters:
    """Return the typed ``externalParameters``; VerificationFailed if they break the buildType."""
    return _parameters(statement)[0]


def internal_parameters(statement: Statement) -> InternalParameters:
    """Return the typed ``internalParameters``; VerificationFailed if they break the buildType."""
    return _parameters(statement)[1]


def _parameters(statement: Statement) -> tuple[ExternalParameters, InternalParameters]:
    try:
        return dvc_parameters(statement)
    except ValueError as exc:
        _malformed("provenance", str(exc))


def _internal_parameters(
    pins: BuildPins,
    links: Mapping[str, tuple[str, Sha256]],
    confirmed: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    reports: dict[str, SandboxReport] = {}
    for stage, values in sorted(confirmed.items()):
        try:
            plain = {k: v.to_json() if isinstance(v, JsonModel) else v for k, v in values.items()}
            report = plain.pop(SANDBOX_KEY, None)
            if report is not None:
                reports[stage] = SandboxReport.from_json(report)
        except (TypeError, ValueError) as exc:
            raise OperationalError(
                f"stage {stage!r}: confirmed settings: {exc}", hint=_BUG
            ) from None
        if plain:
            settings[stage] = plain
    unsealed = SandboxReport(SandboxKind.NONE, False, False, False, False)
    seals = [reports.get(stage, unsealed) for stage in sorted(links)] or [unsealed]
    internal: dict[str, Any] = {
        "determinism": {"declared": pins.determinism.to_json(), "confirmed": settings},
        "sandbox": {
            "kind": max((s.kind for s in seals), key=list(SandboxKind).index).value,
            "enforced": {to_camel(f): all(getattr(s, f) for s in seals) for f in _SEALS},
        },
        "environment": _camel_keys(
            {k: v for k, v in pins.environment.to_json().items() if k not in _LOCK_FIELDS}
        ),
        "dirty": pins.git.dirty,
    }
    if pins.container is not None:  # a sandboxed-host build names no image
        container = pins.container.to_json()
        internal["container"] = {k: container[k] for k in _CONTAINER_FIELDS}
    if pins.git.dirty:
        internal["dirtyPaths"] = list(pins.git.dirty_paths)
    if pins.git.signature is not None:
        internal["sourceSignature"] = _camel_keys(pins.git.signature.to_json())
    return internal


def _release_parameter(release: Mapping[str, Sequence[str]] | None) -> dict[str, Any]:
    if release is None:
        return {}
    selection: dict[str, Any] = {"paths": list(release["paths"])}
    if release.get("exclude"):
        selection["exclude"] = list(release["exclude"])
    return {"release": selection}


def _allowances_parameter(allowances: Mapping[str, SandboxAllowances]) -> dict[str, Any]:
    granted = {stage: a for stage, a in sorted(allowances.items()) if a.granted}
    if not granted:
        return {}
    return {
        "allowances": {stage: a.to_json() for stage, a in granted.items()},
        "hermetic": not any(a.network for a in granted.values()),
    }


def _dependencies(
    pins: BuildPins, repository: str, third_party: Sequence[ThirdParty]
) -> list[dict[str, Any]]:
    deps: list[dict[str, Any]] = [
        {
            "name": SOURCE,
            "uri": _git_uri(repository, pins.git.commit),
            "digest": {"gitCommit": pins.git.commit},
        }
    ]
    for data in sorted(pins.data, key=lambda d: d.path):
        dep: dict[str, Any] = {"name": data.path, "digest": {"sha256": data.sha256}}
        if data.remote_url:
            dep["uri"] = _as_uri(redact_url(data.remote_url))
        dep["annotations"] = {"dvcMd5": data.dvc_md5, "size": data.size, "nfiles": data.nfiles}
        deps.append(dep)
    if pins.container is not None:
        deps.append(_image_dependency(pins.container))
    env = pins.environment
    deps.append(
        {
            "name": PYTHON_PACKAGES,
            "digest": {"sha256": env.packages_sha256},
            "annotations": {"packages": list(env.packages)},
        }
    )
    for item in sorted(third_party, key=lambda t: t.path):
        deps.append(
            {
                "name": item.path,
                "uri": item.uri,
                "digest": {"sha256": item.sha256},
                "annotations": {"pinning": "tofu", "kind": item.kind},
            }
        )
    names = [d["name"] for d in deps]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(
                f"two resolved dependencies are called {name!r}",
                hint="rename the data snapshot or third-party path that clashes",
            )
    return deps


def _image_dependency(container: ContainerPin) -> dict[str, Any]:
    """The build image: its manifest digest, and where and as what bytes its archive is kept."""
    dep: dict[str, Any] = {
        "name": BUILD_IMAGE,
        "uri": f"oci://{container.image}",
        "digest": {"sha256": container.digest.removeprefix("sha256:")},
        "annotations": {
            "archiveSha256": container.archive_sha256,
            "archiveMd5": container.archive_md5,
            "archiveSize": container.archive_size,
            "enforced": container.enforced,
            "how": container.how,
        },
    }
    if container.remote_url:
        dep["downloadLocation"] = _as_uri(redact_url(container.remote_url))
    return dep


def _byproducts(
    links: Mapping[str, tuple[str, Sha256]], layout_sha256: Sha256 | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for stage, (file_name, digest) in sorted(links.items()):
        if re.fullmatch(re.escape(stage) + r"\.[0-9a-f]{8}\.link", file_name) is None:
            raise UsageError(
                f"stage {stage!r}: link file name {file_name!r} is not STAGE.KEYID8.link",
                hint=_BUG,
            )
        out.append({"name": f"links/{file_name}", "digest": {"sha256": digest}})
    if layout_sha256 is not None:
        out.append({"name": LAYOUT_BYPRODUCT, "digest": {"sha256": layout_sha256}})
    return out


def _git_uri(repository: str, commit: str) -> str:
    """``git+<repository>@<commit>``; paths become ``file://`` and scp-like URLs ``ssh://``."""
    url = _as_uri(repository)
    return f"{url if url.startswith('git+') else 'git+' + url}@{commit}"


def _as_uri(location: str) -> str:
    if re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://", location):
        return location
    scp = re.fullmatch(r"([^@/:]+@)?([^/:]+):(.+)", location)
    if scp is not None and not location.startswith("/"):
        return f"ssh://{scp.group(1) or ''}{scp.group(2)}/{scp.group(3).lstrip('/')}"
    path = Path(location)
    return path.as_uri() if path.is_absolute() else location


def _camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {to_camel(k): _camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def _malformed(source: str, problem: str) -> NoReturn:
    one_line = " ".join(problem.split())
    raise VerificationFailed(f"{source}: malformed statement: {one_line}", hint=_DAMAGED)
