"""``bitwright release``: bundle the last build into a release directory and a tarball.

The release is assembled in a scratch directory beside the target, sealed with the release
statement (every file signed), and checked with the same checks ``bitwright verify`` runs
(trusting the owner's key; the check is handed in, since verify sits above this layer): an
attestation set verify would reject is refused with the fix, and nothing is written. Only
then does it replace the target, so an interrupted release never leaves a half-written
directory that looks finished. ``--out`` is checked before any
work (:mod:`.target`): a file, a directory that is not an earlier release, or anything
precious is refused. The artifacts must still be the files the provenance names: a
workspace changed since the build is refused.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bitwright.attest import keyid8, load_signer, read_link
from bitwright.attest.dsse import read_envelope, unverified_payload
from bitwright.attest.keys import Key, Signer, SSlibKey
from bitwright.attest.provenance import parse_statement, read_provenance
from bitwright.attest.statement import Statement
from bitwright.builder import ProjectPaths
from bitwright.builder.recovery import process_alive
from bitwright.digest import digest_tree, memory_cache, sha256_file
from bitwright.errors import KeyProblem, OperationalError
from bitwright.model import BuildPins, Sha256
from bitwright.release.aibom_facts import release_aibom
from bitwright.release.layout import ReleaseLayout
from bitwright.release.modelsig import sign_model
from bitwright.release.readme import release_readme
from bitwright.release.seal import seal_release
from bitwright.release.tarball import write_tarball
from bitwright.release.target import check_output_dir

__all__ = ["CandidateCheck", "ReleaseResult", "bundle_release", "is_release_dir"]

_BUNDLE = "provenance.sigstore.json"

CandidateCheck = Callable[[Path, SSlibKey, Statement | None], None]
"""Checks an assembled release (directory, the owner's public key, the build's own keyless
provenance or None) as ``bitwright verify`` would; raises OperationalError with the fix."""


@dataclass(frozen=True)
class ReleaseResult:
    """A written release: its directory, tarball, commit and subjects."""

    directory: Path
    tarball: Path
    commit: str
    subjects: dict[str, str]


@dataclass(frozen=True)
class _Build:
    """The last finished build, as release reads it."""

    paths: ProjectPaths
    statement: Statement
    keyless: bool
    links: tuple[Path, ...]
    pins: BuildPins


def is_release_dir(directory: Path) -> bool:
    """Whether ``directory`` is a release of bitwright's (it holds a release statement)."""
    marker = ReleaseLayout(directory).statement
    return marker.is_file() and not marker.is_symlink()


def bundle_release(
    repo: Path,
    out: Path,
    *,
    check: CandidateCheck,
    key_path: Path | None = None,
    force: bool = False,
) -> ReleaseResult:
    """Bundle the last build of ``repo`` into the release directory ``out`` and ``out.tar.gz``.

    Args:
        repo: the project.
        out: the release directory to write (and ``out.tar.gz`` beside it).
        check: what the assembled release must pass before it is written: the checks of
            ``bitwright verify`` (:func:`bitwright.verify.check_candidate`), which sit above
            this layer and are handed in.
        key_path: the owner's private key (default ``.bitwright/keys/owner.key``).
        force: replace an earlier release at ``out``.

    Raises:
        OperationalError: ``out`` may not be written (a file, a directory that is not an
            earlier release, ``--force`` missing, something precious); no finished build;
            artifacts changed since it; or the assembled release does not verify.
        KeyProblem: the key is missing or cannot sign the model (not ECDSA).
    """
    paths = ProjectPaths(repo.resolve())
    out = _checked_target(out, paths, force=force)
    key = key_path or paths.owner_key
    signer = load_signer(key)
    owner = _require_model_key(key, signer)
    build = _last_build(paths, signer.public_key)
    subjects = build.statement.subject_digests()
    _require_unchanged(paths.repo, subjects)
    _remove_abandoned(out)
    scratch = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        _assemble(ReleaseLayout(scratch), build, signer, key)
        check(scratch, owner, build.statement if build.keyless else None)
        _move_into_place(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    tarball = write_tarball(out, _tarball_of(out), mtime=build.pins.git.commit_time)
    return ReleaseResult(out, tarball, build.pins.git.commit, dict(subjects))


def _checked_target(out: Path, paths: ProjectPaths, *, force: bool) -> Path:
    target = check_output_dir(
        out,
        what="release directory",
        is_own=is_release_dir,
        replace=force,
        protected=(paths.repo,),
    )
    tarball = _tarball_of(target)
    if tarball.is_symlink() or (tarball.exists() and not tarball.is_file()):
        raise OperationalError(
            f"{tarball} is not a file bitwright may write", hint="name another --out"
        )
    if tarball.exists() and not force:
        raise OperationalError(f"{tarball} already exists", hint="pass --force to replace it")
    return target


def _tarball_of(out: Path) -> Path:
    return out.with_name(out.name + ".tar.gz")


def _require_model_key(key: Path, signer: Signer) -> SSlibKey:
    public = signer.public_key
    if not isinstance(public, SSlibKey) or public.keytype != "ecdsa":
        raise KeyProblem(
            f"key {key} is a {public.keytype} key ({public.scheme}): a release carries an "
            "OpenSSF model signature, which model-signing 1.1 makes with ECDSA keys only",
            hint="create an ECDSA P-256 key with 'bitwright keygen', build and release with it",
        )
    return public


def _last_build(paths: ProjectPaths, owner: Key) -> _Build:
    for needed in (paths.layout, paths.provenance):
        if not needed.is_file():
            raise OperationalError(
                f"no finished build: {needed} is missing", hint="run `bitwright build` first"
            )
    links = tuple(sorted(paths.links.glob("*.link")))
    if not links:
        raise OperationalError(
            f"no finished build: no links in {paths.links}", hint="run `bitwright build` first"
        )
    keyless = (paths.attestations / _BUNDLE).is_file()
    if keyless:
        # A keyless envelope carries no keyid; its signature is the sigstore bundle's, which
        # verifiers check against the identities they trust.
        envelope = read_envelope(paths.provenance)
        statement = parse_statement(unverified_payload(envelope), source=str(paths.provenance))
    else:
        statement = read_provenance(paths.provenance, keys=[owner])
    return _Build(paths, statement, keyless, links, _pins_of(links[0]))


def _require_unchanged(repo: Path, subjects: Mapping[str, str]) -> None:
    cache = memory_cache()  # a release vouches only for digests this process computed
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


def _assemble(layout: ReleaseLayout, build: _Build, signer: Signer, key: Path) -> None:
    """Write every file of the release into ``layout.root``, sealed last."""
    paths, subjects = build.paths, build.statement.subject_digests()
    shutil.rmtree(layout.root, ignore_errors=True)
    for subject in subjects:
        target = layout.artifact(subject)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paths.repo / subject, target)
    layout.links.mkdir(parents=True)
    for link in build.links:
        shutil.copyfile(link, layout.links / link.name)
    shutil.copyfile(paths.layout, layout.layout)
    shutil.copyfile(paths.provenance, layout.provenance)
    if build.keyless:
        shutil.copyfile(paths.attestations / _BUNDLE, layout.provenance_bundle)
    layout.keys.mkdir()
    owner_pub = layout.keys / f"owner.{keyid8(signer.public_key)}.pub"
    owner_pub.write_text(str(signer.public_key.keyval["public"]), encoding="ascii")
    layout.aibom.write_text(
        release_aibom(paths.repo, build.statement, subjects, build.pins), encoding="utf-8"
    )
    copied = _copied_digests(layout, subjects)
    sign_model(layout.artifacts, key, layout.model_signature, digests=copied)
    layout.readme.write_text(
        release_readme(build.pins, subjects, owner_pub.name, [p.name for p in build.links]),
        encoding="utf-8",
    )
    known = {f"artifacts/{name}": digest for name, digest in copied.items()}
    seal_release(
        layout.root,
        signer,
        repository=build.pins.git.remote_url,
        commit=build.pins.git.commit,
        known=known,
    )


def _move_into_place(scratch: Path, out: Path) -> None:
    """Replace ``out`` by ``scratch``; an earlier release is moved aside, then removed."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(scratch, out)
    shutil.rmtree(old, ignore_errors=True)


def _remove_abandoned(out: Path) -> None:
    """Remove scratch and set-aside directories of releases whose process is gone."""
    if not out.parent.is_dir():
        return
    for candidate in out.parent.glob(f".{out.name}.*-*"):
        kind, _, pid = candidate.name.removeprefix(f".{out.name}.").partition("-")
        if kind in ("partial", "old") and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)


def _copied_digests(layout: ReleaseLayout, subjects: Mapping[str, str]) -> dict[str, Sha256]:
    """Hash the copied artifacts once and check that they are the provenance's subjects.

    The model signature and the release statement are made from these digests.
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
