"""The release's own files: the AI BOM agrees with the artifacts, the model signature holds.

Neither file is needed to trust the artifacts (the signed provenance covers them), so a
release without one skips its check. What a release carries is checked, though: a BOM that
claims other digests, or a model signature that does not verify with a trusted key, fails.
OpenSSF model-signing verifies ECDSA keys only and reads a PEM file, so each trusted ECDSA
key is written to a private temporary file in turn; keys in the release's ``keys/`` are
never used. model-signing (and the sigstore it imports) is loaded only when there is a
signature to check with such a key.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from bitwright.attest import keyid8
from bitwright.attest.keys import SSlibKey
from bitwright.errors import VerificationFailed
from bitwright.model import Sha256
from bitwright.release import aibom_subjects, validate_aibom
from bitwright.release.layout import ReleaseLayout
from bitwright.verify._run import SkipCheck
from bitwright.verify.checks_provenance import describe_problems

__all__ = ["check_aibom", "check_model_signature", "prepare_release_checks"]

_ARTIFACTS_PREFIX = "artifacts/"


def prepare_release_checks(release: ReleaseLayout) -> None:
    """Import what the model signature check needs (model-signing takes ~0.5 s to import).

    The verifier calls this while the artifacts are still being hashed; the check imports
    the same itself when it was not called.
    """
    if release.model_signature.is_file():
        import bitwright.release.modelsig  # noqa: F401


def check_aibom(
    release: ReleaseLayout, artifacts: Callable[[], Mapping[str, Sha256]]
) -> tuple[None, str]:
    """Check the AI BOM against the CycloneDX 1.6 schema and its file digests against artifacts.

    The BOM names model files by their path under ``artifacts/`` (a leading ``artifacts/``
    is accepted too). ``artifacts`` gives the digests of ``artifacts/``; it is called only
    after the schema check, so that check overlaps hashing still under way.

    Raises:
        SkipCheck: the release has no AI BOM.
        VerificationFailed: the BOM is not valid CycloneDX, or a file it lists is missing
            from ``artifacts/`` or has another sha256.
    """
    path = release.aibom
    if not path.is_file():
        raise SkipCheck(f"the release has no {path.name}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationFailed(f"{path} is not UTF-8 text", hint="take it again") from exc
    validate_aibom(text)
    problems: list[str] = []
    claimed = aibom_subjects(text)
    digests = artifacts()
    for name, digest in sorted(claimed.items()):
        relative = name if name in digests else name.removeprefix(_ARTIFACTS_PREFIX)
        actual = digests.get(relative)
        if actual is None:
            problems.append(f"{path.name} lists {name}, which is not in artifacts/")
        elif actual != digest:
            problems.append(f"{path.name} gives {name} another sha256 than artifacts/{relative}")
    if problems:
        raise VerificationFailed(
            describe_problems(problems), hint="the BOM does not describe these artifacts"
        )
    return None, f"valid CycloneDX 1.6; its {len(claimed)} model file(s) match the artifacts"


def check_model_signature(
    release: ReleaseLayout, keys: tuple[SSlibKey, ...], artifacts: Mapping[str, Sha256]
) -> tuple[None, str]:
    """Check ``model.sig`` over ``artifacts/`` with each trusted ECDSA key until one verifies.

    ``artifacts`` holds the digests of ``artifacts/`` the verifier just computed; files are
    not read a second time (a file not among them is hashed).

    Raises:
        SkipCheck: the release has no model signature, or no trusted key is ECDSA.
        VerificationFailed: no trusted key verifies it (the most telling reason is given).
    """
    signature = release.model_signature
    if not signature.is_file():
        raise SkipCheck(f"the release has no {signature.name}")
    usable = [k for k in keys if k.keytype == "ecdsa" and "public" in k.keyval]
    if not usable:
        raise SkipCheck("no trusted ECDSA key: OpenSSF model-signing verifies ECDSA keys only")
    from bitwright.release import verify_model

    failures: list[VerificationFailed] = []
    with tempfile.TemporaryDirectory(prefix="bitwright-verify-") as scratch:
        for key in usable:
            pem = Path(scratch) / f"{keyid8(key)}.pub"
            pem.write_text(key.keyval["public"], encoding="ascii")
            try:
                verify_model(release.artifacts, signature, pem, digests=artifacts)
            except VerificationFailed as exc:
                message = exc.message.replace(str(pem), f"trusted key {keyid8(key)}")
                failures.append(VerificationFailed(message, hint=exc.hint))
                continue
            return None, f"{signature.name} verifies with trusted key {keyid8(key)}"
    # "made with another key" says least: prefer what a key that did sign found wrong.
    telling = [f for f in failures if "made with another key" not in f.message] or failures
    raise telling[0]
