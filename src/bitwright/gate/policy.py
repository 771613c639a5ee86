"""The gate's policy: versioned YAML with a published JSON schema, unknown keys refused.

A policy holds named profiles (``training``, ``production``...), each a complete set of
requirements; ``default_profile`` names the one used unless ``--profile`` picks another::

    apiVersion: bitwright.dev/gate-policy/v1
    default_profile: production
    profiles:
      production:
        signers: {keys: [{name: owner, pem: "-----BEGIN PUBLIC KEY-----..."}]}
        builders: [https://bitwright.dev/builders/ci/v1]
        sources: ["https://github.com/org/*"]
        require: {provenance: true, ..., clean_build: true}
        reproducibility: {verdicts: 2, verifiers: [...], max_age_days: 30}
        deployment: {formats: [safetensors, json, text], custom_code: false, ...}
        deny: {packages: ["torch==2.1.0"], containers: []}
        signals: [external-scanners]

Keys are embedded as PEM, so the policy's digest pins exactly whom it trusts and a policy
file means the same wherever it is read. The YAML is read strictly: safe types only,
duplicate keys, anchors and aliases refused, size and nesting bounded. :func:`policy_schema`
is the JSON schema (``bitwright/gate/policy.schema.json`` is its published copy).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bitwright.attest.canonical import canonical_json
from bitwright.attest.keys import SSlibKey
from bitwright.attest.statement import first_problem
from bitwright.attest.trust import SigstoreIdentity, TrustPolicy
from bitwright.errors import UsageError
from bitwright.fileio import read_regular
from bitwright.pipeline._yaml import strict_load

__all__ = [
    "API_VERSION",
    "SCHEMA_FILE",
    "Deny",
    "Deployment",
    "KeyEntry",
    "LoadedPolicy",
    "Policy",
    "Profile",
    "Reproducibility",
    "Require",
    "load_policy",
    "parse_policy",
    "policy_schema",
]

API_VERSION = "bitwright.dev/gate-policy/v1"
"""The ``apiVersion`` this bitwright reads."""

SCHEMA_FILE = Path(__file__).with_name("policy.schema.json")
"""The published JSON schema of a policy (kept equal to :func:`policy_schema` by a test)."""

_MAX_POLICY_BYTES = 1 << 20
_MAX_DEPTH = 16
_HINT = "fix the policy (see docs/gate.md; `bitwright policy init` prints a complete one)"

_Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
_Text = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
_Pem = Annotated[
    str,
    StringConstraints(
        pattern=r"^\s*-----BEGIN PUBLIC KEY-----[\s\S]+-----END PUBLIC KEY-----\s*$",
        max_length=4096,
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class KeyEntry(_Strict):
    """A trusted public key, embedded as PEM (SubjectPublicKeyInfo)."""

    name: _Name | None = None
    pem: _Pem

    def load(self) -> SSlibKey:
        """The key, as securesystemslib computes its id.

        Raises:
            UsageError: the PEM is not a usable ECDSA P-256 or ed25519 public key.
        """
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            return SSlibKey.from_crypto(load_pem_public_key(self.pem.strip().encode()))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise UsageError(
                f"policy key {self.name or self.pem[27:60]!r} is not a usable public key ({exc})",
                hint=_HINT,
            ) from None


class Identity(_Strict):
    """A trusted keyless (sigstore) signer: certificate identity and its OIDC issuer."""

    identity: _Text
    issuer: _Text


class Signers(_Strict):
    """Who may sign the provenance, layout, links and model signature."""

    keys: list[KeyEntry] = Field(default_factory=list, max_length=64)
    identities: list[Identity] = Field(default_factory=list, max_length=64)
    trust_config: _Text | None = Field(
        default=None, description="A sigstore trust config, relative to the policy file."
    )


class Require(_Strict):
    """The claims a release must make, checked; each true by default."""

    provenance: bool = Field(
        default=True, description="Signed by a trusted signer; subjects check."
    )
    layout_and_links: bool = Field(default=True, description="Signed layout; every link verifies.")
    determinism_confirmed: bool = Field(default=True, description="Receipts confirmed every stage.")
    data_pinned: bool = Field(default=True, description="Data snapshots have digests and a source.")
    aibom: bool = Field(default=True, description="A valid AI BOM that matches the artifacts.")
    model_signature: bool = Field(
        default=True, description="model.sig verifies with a trusted key."
    )
    third_party_pinned: bool = Field(default=True, description="Third-party inputs match the pins.")
    scan_clean: bool = Field(
        default=True, description="Every file is safe to load (bitwright scan)."
    )
    clean_build: bool = Field(
        default=True, description="Built from a clean tree (no --allow-dirty)."
    )


class Reproducibility(_Strict):
    """How many independent rebuilders must have reproduced the release, and how recently."""

    verdicts: int = Field(
        default=0, ge=0, le=64, description="REPRODUCED VSAs from distinct verifiers."
    )
    verifiers: list[KeyEntry] = Field(default_factory=list, max_length=64)
    max_age_days: int = Field(default=90, ge=1, le=3650)
    allow_tolerance: bool = Field(
        default=False, description="Count REPRODUCED_WITHIN_TOLERANCE verdicts too."
    )


class Deployment(_Strict):
    """What may be loaded where the model goes."""

    formats: list[_Name] | None = Field(
        default=None, description="Allowed file formats as `bitwright scan` names them; null: any."
    )
    custom_code: bool = Field(default=False, description="Allow code shipped with the model.")
    trust_remote_code: bool = Field(
        default=False, description="Allow configs with trust_remote_code."
    )
    allowlist: list[Literal["torch", "numpy", "sklearn", "joblib", "scipy", "builtins"]] | None = (
        Field(default=None, description="Pickle allowlist families; null: all.")
    )
    max_file_bytes: int | None = Field(default=None, ge=0)
    max_total_bytes: int | None = Field(default=None, ge=0)


class Deny(_Strict):
    """Known-bad dependencies: packages (``name`` or ``name==version``) and image digests."""

    packages: list[_Text] = Field(default_factory=list, max_length=10_000)
    containers: list[Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]] = Field(
        default_factory=list, max_length=10_000
    )


class Profile(_Strict):
    """One complete set of requirements."""

    description: _Text | None = None
    signers: Signers
    builders: list[_Text] = Field(default_factory=list, description="Allowed builder ids.")
    sources: list[_Text] = Field(
        default_factory=list, description="Allowed source repositories (fnmatch patterns)."
    )
    third_party_pins: _Text | None = Field(
        default=None, description="The trusted pins file, relative to the policy file."
    )
    require: Require = Require()
    reproducibility: Reproducibility = Reproducibility()
    deployment: Deployment = Deployment()
    deny: Deny = Deny()
    signals: list[_Name] = Field(
        default_factory=list, description="Plugin signals that must pass (entry points)."
    )


class Policy(_Strict):
    """A gate policy document."""

    apiVersion: Literal["bitwright.dev/gate-policy/v1"]  # noqa: N815  (the wire name)
    default_profile: _Name
    profiles: dict[_Name, Profile] = Field(min_length=1, max_length=32)


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy read from a file, with what its digest pins.

    Attributes:
        policy: the document.
        sha256: sha256 of the policy's canonical JSON (what the decision names).
        path: where it was read.
        profile_name: the profile in force.
    """

    policy: Policy
    sha256: str
    path: Path
    profile_name: str

    @property
    def profile(self) -> Profile:
        """The profile in force."""
        return self.policy.profiles[self.profile_name]

    def trust(self) -> TrustPolicy:
        """The signers of the profile as the verifier's trust policy."""
        signers = self.profile.signers
        return TrustPolicy(
            keys=tuple(k.load() for k in signers.keys),
            identities=tuple(SigstoreIdentity(i.identity, i.issuer) for i in signers.identities),
            trust_config=self.relative(signers.trust_config),
        )

    def relative(self, path: str | None) -> Path | None:
        """A path of the policy, relative to the policy file's directory."""
        return None if path is None else self.path.parent / path


def load_policy(path: Path, *, profile: str | None = None) -> LoadedPolicy:
    """Read and validate a policy file, and pick its profile.

    Raises:
        UsageError: the policy is malformed, has unknown keys, names no such profile, or
            trusts no signer in it.
        OperationalError: the file is missing, not a regular file, or larger than 1 MiB.
    """
    data = read_regular(path, limit=_MAX_POLICY_BYTES)
    policy = parse_policy(data, source=str(path))
    name = profile or policy.default_profile
    if name not in policy.profiles:
        raise UsageError(
            f"{path}: no profile {name!r}", hint=f"profiles: {', '.join(policy.profiles)}"
        )
    chosen = policy.profiles[name]
    if not chosen.signers.keys and not chosen.signers.identities:
        raise UsageError(f"{path}: profile {name!r} trusts no signer", hint=_HINT)
    digest = hashlib.sha256(canonical_json(policy.model_dump(mode="json"))).hexdigest()
    return LoadedPolicy(policy, digest, path, name)


def parse_policy(data: bytes, *, source: str = "policy") -> Policy:
    """Parse policy YAML (or JSON) strictly.

    Raises:
        UsageError: not UTF-8 YAML, anchors/aliases, too deep, or not a valid policy.
    """
    try:
        text = data.decode("utf-8")
        _refuse_aliases_and_depth(text, source)
        document = strict_load(text)
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not UTF-8 text", hint=_HINT) from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}: malformed YAML: {_first_line(exc)}", hint=_HINT) from None
    if isinstance(document, dict) and document.get("apiVersion") not in (None, API_VERSION):
        raise UsageError(
            f"{source}: apiVersion {document.get('apiVersion')!r} is not {API_VERSION}",
            hint="this bitwright reads policy v1; upgrade it for newer policies",
        )
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        raise UsageError(f"{source}: {first_problem(exc)}", hint=_HINT) from None


def _refuse_aliases_and_depth(text: str, source: str) -> None:
    depth = 0
    for event in yaml.parse(text):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise UsageError(f"{source}: YAML anchors and aliases are not allowed", hint=_HINT)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > _MAX_DEPTH:
                raise UsageError(f"{source}: nested more than {_MAX_DEPTH} deep", hint=_HINT)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def policy_schema() -> dict[str, Any]:
    """The JSON schema of a policy document."""
    schema: dict[str, Any] = Policy.model_json_schema()
    schema["$id"] = "https://bitwright.dev/schemas/gate-policy/v1.json"
    schema["title"] = "bitwright gate policy v1"
    return schema


def schema_text() -> str:
    """The schema as written to :data:`SCHEMA_FILE`."""
    return json.dumps(policy_schema(), indent=2, sort_keys=True) + "\n"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[:2]) if text else type(exc).__name__


def verifier_keys(profile: Profile) -> list[SSlibKey]:
    """The trusted verifier keys of ``profile``'s reproducibility requirement.

    Raises:
        UsageError: a key is not usable.
    """
    return [entry.load() for entry in profile.reproducibility.verifiers]
