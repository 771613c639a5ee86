"""A real, small release directory built from the pieces, as ``bitwright release`` lays it out.

A three-stage chain (prepare -> train -> package) "runs" in a scratch repository: its files are
real and digested, every stage leaves a link signed with a real key, the layout is derived from
the pipeline, the provenance is built by ``build_provenance`` and signed, the AI BOM by
``build_aibom`` and the model signature by ``sign_model``. The trained "model" depends on
``params.yaml``, so a build with other params yields other links and another model.

Reusable by any test that needs a release (verify, rebuild, gate)::

    keys = make_keys(tmp_path / "keys")
    release = make_release(tmp_path / "build", keys)
    verify_release(release.root, release.policy())
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import shlex
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.unit.attest.attest_factories import make_run

from bitwright.attest import (
    build_layout,
    build_link,
    canonical_json,
    generate_keypair,
    keyid8,
    load_public_key,
    load_signer,
    sign_envelope,
    write_layout,
    write_link,
)
from bitwright.attest.keys import KeyPair, Signer
from bitwright.attest.provenance import (
    SANDBOX_KEY,
    build_provenance,
    write_provenance,
)
from bitwright.attest.statement import Statement
from bitwright.attest.trust import TrustPolicy
from bitwright.builder.provenance import confirmed_settings
from bitwright.digest import digest_artifacts, sha256_file, tree_sha256
from bitwright.model import (
    BuildPins,
    DataPin,
    DeterminismSettings,
    EnvironmentPin,
    GitPin,
    Pipeline,
    Sha256,
    StageRun,
    StageSpec,
)
from bitwright.pins import builder_id
from bitwright.release import ModelFacts, build_aibom, flatten_metrics, sign_model
from bitwright.release.layout import ReleaseLayout
from bitwright.release.seal import seal_release

__all__ = [
    "COMMIT",
    "PARAMS",
    "PIPELINE",
    "Keys",
    "Release",
    "edit_payload",
    "make_keys",
    "make_release",
    "payload_of",
    "resign_provenance",
    "seal",
    "signed_vsa",
]

COMMIT = "0123456789abcdef0123456789abcdef01234567"
PARAMS = b"prepare:\n  test_fraction: 0.5\ntrain:\n  lr: 0.01\n"
PACKAGES = ("numpy==2.4.6", "torch==2.13.0")

PIPELINE = Pipeline(
    stages=(
        StageSpec(
            name="prepare",
            cmd="bitwright stage run prepare -- python pipelines/prepare.py",
            deps=("pipelines/prepare.py", "data/raw"),
            outs=("data/prepared",),
            params=(("params.yaml", "prepare"),),
        ),
        StageSpec(
            name="train",
            cmd="bitwright stage run train -- python pipelines/train.py",
            deps=("pipelines/train.py", "data/prepared"),
            outs=("models",),
            params=(("params.yaml", "train"),),
        ),
        StageSpec(
            name="package",
            cmd="bitwright stage run package -- python pipelines/package.py",
            deps=("pipelines/package.py", "models", "data/prepared/test.csv"),
            outs=("release",),
        ),
    )
)

SOURCES = {
    "pipelines/prepare.py": b"print('prepare')\n",
    "pipelines/train.py": b"print('train')\n",
    "pipelines/package.py": b"print('package')\n",
    "data/raw/a.csv": b"x,y\n1,2\n5,6\n",
    "data/raw/b.csv": b"x,y\n3,4\n7,8\n",
}

SignProvenance = Callable[[bytes, str], tuple[dict[str, Any], dict[str, Any] | None]]
"""(payload, payloadType) -> (DSSE envelope, sigstore bundle or None)."""


@dataclasses.dataclass(frozen=True)
class Keys:
    """The owner's key pair and a stranger's (an attacker, or simply someone else)."""

    owner: KeyPair
    stranger: KeyPair

    def owner_signer(self) -> Signer:
        return load_signer(self.owner.private_path)

    def stranger_signer(self) -> Signer:
        return load_signer(self.stranger.private_path)


@dataclasses.dataclass(frozen=True)
class Release:
    """A release directory and what made it."""

    root: Path
    repo: Path
    keys: Keys
    pins: BuildPins
    statement: Statement

    @property
    def layout(self) -> ReleaseLayout:
        return ReleaseLayout(self.root)

    def policy(self) -> TrustPolicy:
        """Trust exactly the owner's public key (as ``--key owner.pub`` does)."""
        return TrustPolicy(keys=(load_public_key(self.keys.owner.public_path),))

    def link(self, stage: str) -> Path:
        return self.layout.links / f"{stage}.{keyid8(self.keys.owner_signer())}.link"


def make_keys(base: Path) -> Keys:
    """Generate the owner's and a stranger's ECDSA P-256 key pairs under ``base``."""
    return Keys(
        owner=generate_keypair(base / "owner", name="owner"),
        stranger=generate_keypair(base / "stranger", name="stranger"),
    )


def make_release(
    base: Path,
    keys: Keys,
    *,
    params: bytes = PARAMS,
    sign_provenance: SignProvenance | None = None,
) -> Release:
    """Run the chain in ``base/repo`` and bundle it into ``base/release``.

    Args:
        base: an empty scratch directory.
        keys: the owner signs links, layout, provenance (unless ``sign_provenance``) and model.
        params: the bytes of ``params.yaml``; they change what ``train`` produces.
        sign_provenance: how to sign the provenance instead of the owner's key (keyless).
    """
    owner = keys.owner_signer()
    repo = base / "repo"
    for rel, data in {**SOURCES, "params.yaml": params}.items():
        _write(repo / rel, data)
    pins = _pins(repo, params)
    attestations = base / "attestations"
    links_dir = attestations / "links"
    runs: dict[str, StageRun] = {}
    for name in PIPELINE.topological():
        runs[name] = _run_stage(repo, PIPELINE.stage(name))
        write_link(build_link(runs[name], pins, declared=pins.determinism), owner, links_dir)
    layout = build_layout(
        PIPELINE, [owner.public_key], expires=datetime.now(UTC) + timedelta(days=30)
    )
    layout_path = write_layout(layout, owner, attestations / "root.layout")
    statement = _statement(pins, runs, links_dir, layout_path)
    sign = sign_provenance or (lambda p, t: (sign_envelope(p, t, owner), None))
    envelope, bundle = sign(canonical_json(statement.to_json()), "application/vnd.in-toto+json")
    release = Release(base / "release", repo, keys, pins, statement)
    _assemble(release, links_dir, layout_path, envelope, bundle)
    return release


def payload_of(envelope_path: Path) -> dict[str, Any]:
    """The decoded JSON payload of a DSSE envelope file (signature not checked)."""
    envelope = json.loads(envelope_path.read_text())
    data: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return data


def edit_payload(envelope_path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Change an envelope's payload in place WITHOUT re-signing it (a forgery)."""
    envelope = json.loads(envelope_path.read_text())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    edit(payload)
    envelope["payload"] = base64.b64encode(canonical_json(payload)).decode()
    envelope_path.write_bytes(canonical_json(envelope))


def resign_provenance(
    release: Release, signer: Signer, edit: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """Re-sign the release's provenance with ``signer``, after ``edit`` of its Statement."""
    statement = payload_of(release.layout.provenance)
    if edit is not None:
        edit(statement)
    envelope = sign_envelope(canonical_json(statement), "application/vnd.in-toto+json", signer)
    release.layout.provenance.write_bytes(canonical_json(envelope))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _sha(data: bytes) -> Sha256:
    return Sha256(hashlib.sha256(data).hexdigest())


def _pins(repo: Path, params: bytes) -> BuildPins:
    raw = digest_artifacts(repo, ["data/raw"])
    packages_sha = _sha("\n".join(PACKAGES).encode())
    return BuildPins(
        git=GitPin(commit=COMMIT, commit_time=1_700_000_000, remote_url="/srv/git/tiny.git"),
        data=(
            DataPin(
                path="data/raw",
                dvc_md5=hashlib.md5(b"data/raw listing").hexdigest() + ".dir",
                sha256=tree_sha256({k.removeprefix("data/raw/"): v for k, v in raw.items()}),
                size=sum(len(SOURCES[k]) for k in raw),
                nfiles=len(raw),
                remote_url="/srv/dvc-store",
            ),
        ),
        container=None,
        determinism=DeterminismSettings(),
        environment=EnvironmentPin(
            python="CPython 3.11.9",
            packages=PACKAGES,
            packages_sha256=packages_sha,
            os="Linux 6.1 / Debian GNU/Linux 12",
            machine="x86_64",
            cpu_model="Example CPU",
            cpu_flags_sha256=_sha(b"avx2 fma"),
            torch="2.13.0",
        ),
        params_sha256={"params.yaml": _sha(params)},
    )


def _outputs(repo: Path, stage: str) -> dict[str, bytes]:
    if stage == "prepare":
        return {
            "data/prepared/train.csv": (repo / "data/raw/a.csv").read_bytes(),
            "data/prepared/test.csv": (repo / "data/raw/b.csv").read_bytes(),
        }
    if stage == "train":
        seed = (repo / "params.yaml").read_bytes() + (repo / "data/prepared/train.csv").read_bytes()
        return {"models/model.safetensors": hashlib.sha256(seed).digest() * 64}
    weights = (repo / "models/model.safetensors").read_bytes()
    metrics = {"accuracy": 0.5 + weights[0] / 1024, "loss": 0.25}
    return {
        "release/model.safetensors": weights,
        "release/metrics.json": json.dumps(metrics, sort_keys=True).encode() + b"\n",
        "release/MODEL_CARD.md": b"# tiny model\n\nA model of the verify tests.\n",
    }


def _run_stage(repo: Path, spec: StageSpec) -> StageRun:
    """Digest the inputs, "run" the stage by writing its outputs, digest the outputs."""
    materials = digest_artifacts(repo, [*spec.deps, *spec.param_files])
    for rel, data in _outputs(repo, spec.name).items():
        _write(repo / rel, data)
    return make_run(
        spec.name,
        command=tuple(shlex.split(spec.inner_cmd)),
        materials=materials,
        products=digest_artifacts(repo, list(spec.outs)),
    )


def _statement(
    pins: BuildPins, runs: dict[str, StageRun], links_dir: Path, layout_path: Path
) -> Statement:
    links = {
        name: (path.name, sha256_file(path))
        for name in runs
        for path in links_dir.glob(f"{name}.*.link")
    }
    confirmed: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        confirmed[name] = {**confirmed_settings(run.receipts), SANDBOX_KEY: run.sandbox.to_json()}
    return build_provenance(
        subjects=runs["package"].products,
        pins=pins,
        source_uri=pins.git.remote_url,
        targets=["dvc.yaml"],
        params=dict(pins.params_sha256),
        builder_id=builder_id("sandboxed-host"),
        invocation_id=str(uuid.uuid5(uuid.NAMESPACE_URL, pins.params_sha256["params.yaml"])),
        started_on="2024-01-01T00:00:00Z",
        finished_on="2024-01-01T00:03:00Z",
        links=links,
        confirmed=confirmed,
        layout_sha256=sha256_file(layout_path),
    )


def _assemble(
    release: Release,
    links_dir: Path,
    layout_path: Path,
    envelope: dict[str, Any],
    bundle: dict[str, Any] | None,
) -> None:
    layout = release.layout
    subjects = release.statement.subject_digests()
    for subject in subjects:
        _write(layout.artifact(subject), (release.repo / subject).read_bytes())
    shutil.copytree(links_dir, layout.links)
    shutil.copyfile(layout_path, layout.layout)
    write_provenance(envelope, layout.provenance)
    if bundle is not None:
        layout.provenance_bundle.write_text(json.dumps(bundle, sort_keys=True))
    layout.keys.mkdir()
    owner = release.keys.owner
    shutil.copyfile(owner.public_path, layout.keys / f"owner.{owner.keyid[:8]}.pub")
    layout.aibom.write_text(_aibom(release, subjects), encoding="utf-8")
    sign_model(layout.artifacts, owner.private_path, layout.model_signature)
    layout.readme.write_text("# tiny release\n\nbitwright verify . --key OWNER.pub\n")
    seal(release)


def seal(release: Release) -> None:
    """Sign the release statement over every file now in the release (the owner's key)."""
    seal_release(
        release.root,
        release.keys.owner_signer(),
        repository=release.pins.git.remote_url,
        commit=release.pins.git.commit,
    )


def _aibom(release: Release, subjects: dict[str, str]) -> str:
    pins = release.pins
    metrics = json.loads((release.repo / "release/metrics.json").read_text())
    facts = ModelFacts(
        name="tiny-model",
        version=pins.git.commit[:12],
        task="classification",
        architecture="lookup table",
        framework="pytorch 2.13.0",
        files={name: Sha256(digest) for name, digest in subjects.items()},
        metrics=flatten_metrics(metrics),
        datasets=pins.data,
        licence="Apache-2.0",
        description="The model of the verify tests.",
    )
    return build_aibom(
        facts,
        packages=pins.environment.packages,
        python=pins.environment.python,
        source_uri=pins.git.remote_url,
        commit=pins.git.commit,
        serial_seed=pins.git.commit,
        timestamp=datetime.fromtimestamp(pins.git.commit_time, UTC),
    )


def signed_vsa(
    subjects: dict[str, str],
    private_key: Path,
    path: Path,
    *,
    passed: bool = True,
    age: timedelta = timedelta(days=1),
) -> Path:
    """A rebuilder's VSA over ``subjects``, signed with ``private_key``, ``age`` old.

    As ``bitwright rebuild --out`` writes one: REPRODUCED bitwise when ``passed``, FAILED
    with no level otherwise.
    """
    from bitwright.attest.signers import KeySigner
    from bitwright.attest.vsa import LEVEL_REPRODUCED_BITWISE, build_vsa, write_vsa

    statement = build_vsa(
        subjects=subjects,
        resource_uri="git+file:///srv/git/tiny.git@" + COMMIT,
        policy_uri="https://bitwright.dev/policies/rebuild-compare/v1",
        policy_sha256="ab" * 32,
        input_attestations=[],
        passed=passed,
        verified_levels=[LEVEL_REPRODUCED_BITWISE] if passed else [],
        time_verified=(datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return write_vsa(statement, KeySigner.from_file(private_key), path)
