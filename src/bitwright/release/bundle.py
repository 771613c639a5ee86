"""``bitwright release``: bundle the last build into a release directory and a tarball.

The release is assembled in a scratch directory beside the target and moved into place only
when complete, so an interrupted release never leaves a half-written directory that looks
finished. The artifacts must still be the files the provenance names: a workspace changed
since the build is refused.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from bitwright.attest import keyid8, load_signer, read_envelope, read_link, unverified_payload
from bitwright.attest.keys import Key
from bitwright.attest.provenance import parse_statement, read_provenance
from bitwright.attest.statement import Statement
from bitwright.builder import ProjectPaths
from bitwright.digest import default_cache, digest_tree, sha256_file
from bitwright.errors import KeyProblem, OperationalError
from bitwright.model import BuildPins, Sha256
from bitwright.release.aibom_facts import release_aibom
from bitwright.release.layout import ReleaseLayout
from bitwright.release.modelsig import sign_model
from bitwright.release.readme import release_readme
from bitwright.release.tarball import write_tarball

__all__ = ["ReleaseResult", "bundle_release"]


@dataclass(frozen=True)
class ReleaseResult:
    """A written release: its directory, tarball, commit and subjects."""

    directory: Path
    tarball: Path
    commit: str
    subjects: dict[str, str]


def bundle_release(
    repo: Path, out: Path, *, key_path: Path | None = None, force: bool = False
) -> ReleaseResult:
    """Bundle the last build of ``repo`` into the release directory ``out`` and ``out.tar.gz``.

    Raises:
        OperationalError: no finished build, artifacts changed since it, ``out`` exists
            without ``force``.
        KeyProblem: the key is missing or cannot sign the model.
    """
    paths = ProjectPaths(repo.resolve())
    key = key_path or paths.owner_key
    signer = load_signer(key)
    _require_build(paths)
    statement = _own_provenance(paths, signer.public_key)
    subjects = statement.subject_digests()
    _require_unchanged(paths.repo, subjects)
    links = sorted(paths.links.glob("*.link"))
    pins = _pins_of(links[0])
    out = out.resolve()
    if out.exists() and not force:
        raise OperationalError(f"release directory {out} already exists", hint="pass --force")

    scratch = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        layout = ReleaseLayout(scratch)
        for subject in subjects:
            target = layout.artifact(subject)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(paths.repo / subject, target)
        layout.links.mkdir(parents=True)
        for link in links:
            shutil.copyfile(link, layout.links / link.name)
        shutil.copyfile(paths.layout, layout.layout)
        shutil.copyfile(paths.provenance, layout.provenance)
        bundle = paths.attestations / "provenance.sigstore.json"
        if bundle.is_file():
            shutil.copyfile(bundle, layout.provenance_bundle)
        layout.keys.mkdir()
        owner_pub = layout.keys / f"owner.{keyid8(signer.public_key)}.pub"
        owner_pub.write_bytes(_public_pem(key))
        layout.aibom.write_text(
            release_aibom(paths.repo, statement, subjects, pins), encoding="utf-8"
        )
        copied = _copied_digests(layout, subjects)
        sign_model(layout.artifacts, key, layout.model_signature, digests=copied)
        layout.readme.write_text(
            release_readme(pins, subjects, owner_pub.name, sorted(p.name for p in links)),
            encoding="utf-8",
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    tarball = write_tarball(out, out.with_name(out.name + ".tar.gz"), mtime=pins.git.commit_time)
    return ReleaseResult(out, tarball, pins.git.commit, dict(subjects))


def _require_build(paths: ProjectPaths) -> None:
    for needed in (paths.layout, paths.provenance):
        if not needed.is_file():
            raise OperationalError(
                f"no finished build: {needed} is missing", hint="run `bitwright build` first"
            )
    if not any(paths.links.glob("*.link")):
        raise OperationalError(
            f"no finished build: no links in {paths.links}", hint="run `bitwright build` first"
        )


def _own_provenance(paths: ProjectPaths, owner: Key) -> Statement:
    """The last build's provenance: key-signed by the owner, or keyless beside its bundle.

    A keyless envelope carries no keyid; its signature is the sigstore bundle's, which
    ``bitwright verify`` checks against the identities a verifier trusts.
    """
    if (paths.attestations / "provenance.sigstore.json").is_file():
        envelope = read_envelope(paths.provenance)
        return parse_statement(unverified_payload(envelope), source=str(paths.provenance))
    return read_provenance(paths.provenance, keys=[owner])


def _require_unchanged(repo: Path, subjects: Mapping[str, str]) -> None:
    cache = default_cache()
    for subject, digest in sorted(subjects.items()):
        path = repo / subject
        if not path.is_file():
            raise OperationalError(
                f"artifact {subject} of the last build is missing",
                hint="run `bitwright build` again",
            )
        if sha256_file(path, cache) != digest:
            raise OperationalError(
                f"artifact {subject} changed since the last build",
                hint="run `bitwright build` again",
            )


def _copied_digests(layout: ReleaseLayout, subjects: Mapping[str, str]) -> dict[str, Sha256]:
    """Hash the copied artifacts once and check that they are the provenance's subjects.

    The model signature is made from these digests; model-signing does not read the files.
    """
    copied = digest_tree(layout.artifacts).files
    for subject, digest in sorted(subjects.items()):
        name = layout.artifact(subject).relative_to(layout.artifacts).as_posix()
        if copied.get(name) != digest:
            raise OperationalError(
                f"artifact {subject} changed while the release was written",
                hint="let the build finish, then run `bitwright release` again",
            )
    return copied


def _pins_of(link: Path) -> BuildPins:
    payload, _ = read_link(link)
    try:
        return BuildPins.from_json(payload["environment"]["pins"])
    except (KeyError, TypeError, ValueError) as exc:
        raise OperationalError(
            f"link {link} records no readable pins: {exc}", hint="run `bitwright build` again"
        ) from None


def _public_pem(key: Path) -> bytes:
    try:
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyProblem(f"cannot read private key {key}: {exc}") from None
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
