"""The release's own files: the AI BOM agrees with the artifacts, the model signature holds.

A release carries both by default and the verifier requires them (``--allow-missing``
accepts a release without one, with a warning). A BOM that claims other digests, or a
model signature that does not verify with a trusted key, fails. The model signature is
checked with :func:`bitwright.release.check_model_bundle` against each trusted ECDSA key
(OpenSSF model-signing signs with ECDSA keys only), from the digests of ``artifacts/``
verify has already computed; keys in the release's ``keys/`` are never used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bitwright.attest.keys import SSlibKey, keyid8
from bitwright.errors import KeyProblem, VerificationFailed
from bitwright.model import Sha256
from bitwright.release import check_model_bundle
from bitwright.verify._aibom_worker import AibomCheckProcess, parse_aibom
from bitwright.verify._run import SkipCheck
from bitwright.verify.checks_provenance import describe_problems
from bitwright.verify.material import ReleaseReader

__all__ = [
    "AIBOM_FILE",
    "MODEL_SIGNATURE_FILE",
    "check_aibom",
    "check_model_signature",
    "parse_aibom",
    "require_file",
]

AIBOM_FILE = "aibom.cdx.json"
MODEL_SIGNATURE_FILE = "model.sig"
_ARTIFACTS_PREFIX = "artifacts/"
_ALLOW = "--allow-missing accepts a release without it"
_RETAKE = "take the whole release again; 'bitwright release' writes it"


def require_file(reader: ReleaseReader, name: str, *, allow_missing: bool) -> None:
    """Fail (or, when ``allow_missing``, skip) a check whose file the release lacks.

    Raises:
        SkipCheck: the file is missing and ``allow_missing``.
        VerificationFailed: the file is missing.
    """
    if reader.exists(name):
        return
    if allow_missing:
        raise SkipCheck(f"the release has no {name} ({_ALLOW})")
    raise VerificationFailed(
        f"the release has no {name}, which it must carry ({_ALLOW})", hint=_RETAKE
    )


def check_aibom(
    reader: ReleaseReader,
    artifacts: Callable[[], Mapping[str, Sha256]],
    *,
    allow_missing: bool = False,
    child: AibomCheckProcess | None = None,
) -> tuple[None, str]:
    """Check the AI BOM against the CycloneDX 1.6 schema and its file digests against artifacts.

    The BOM names model files by their path under ``artifacts/`` (a leading ``artifacts/``
    is accepted too). ``artifacts`` gives the digests of ``artifacts/``; it is called only
    after the schema check, so that check overlaps hashing still under way. ``child`` is
    the same check already started in a child process on the same bytes (a command's
    other core), whose answer is used instead.

    Raises:
        SkipCheck: the release has no AI BOM and ``allow_missing``.
        VerificationFailed: no AI BOM, the BOM is not valid CycloneDX, or a file it lists is
            missing from ``artifacts/`` or has another sha256.
        OperationalError: the BOM cannot be read or is larger than the limit.
    """
    require_file(reader, AIBOM_FILE, allow_missing=allow_missing)
    data = reader.read(AIBOM_FILE, limit=reader.limits.aibom_bytes)
    if child is not None:
        claimed = child.result()
    else:
        claimed = parse_aibom(data, max_depth=reader.limits.json_depth)
    problems: list[str] = []
    digests = artifacts()
    for name, digest in sorted(claimed.items()):
        relative = name if name in digests else name.removeprefix(_ARTIFACTS_PREFIX)
        actual = digests.get(relative)
        if actual is None:
            problems.append(f"{AIBOM_FILE} lists {name}, which is not in artifacts/")
        elif actual != digest:
            problems.append(f"{AIBOM_FILE} gives {name} another sha256 than artifacts/{relative}")
    if problems:
        raise VerificationFailed(
            describe_problems(problems), hint="the BOM does not describe these artifacts"
        )
    return None, f"valid CycloneDX 1.6; its {len(claimed)} model file(s) match the artifacts"


def check_model_signature(
    reader: ReleaseReader,
    keys: tuple[SSlibKey, ...],
    artifacts: Mapping[str, Sha256],
    *,
    allow_missing: bool = False,
) -> tuple[None, str]:
    """Check ``model.sig`` over ``artifacts/`` with each trusted ECDSA key until one verifies.

    ``artifacts`` holds the digests of ``artifacts/`` the verifier just computed; files are
    not read a second time.

    Raises:
        SkipCheck: the release has no model signature and ``allow_missing``.
        VerificationFailed: no model signature, no trusted ECDSA key, or no trusted key
            verifies it (the most telling reason is given).
        OperationalError: the signature cannot be read or is larger than the limit.
    """
    require_file(reader, MODEL_SIGNATURE_FILE, allow_missing=allow_missing)
    data = reader.read(MODEL_SIGNATURE_FILE)
    usable = [k for k in keys if k.keytype == "ecdsa" and "public" in k.keyval]
    if not usable:
        raise VerificationFailed(
            f"no trusted key can check {MODEL_SIGNATURE_FILE}: OpenSSF model-signing "
            "verifies ECDSA keys only",
            hint="pass the owner's ECDSA public key (--key)",
        )
    failures: list[VerificationFailed] = []
    for key in usable:
        try:
            check_model_bundle(
                data,
                str(key.keyval["public"]).encode(),
                artifacts,
                source=MODEL_SIGNATURE_FILE,
                key_name=f"trusted key {keyid8(key)}",
                max_depth=reader.limits.json_depth,
            )
        except (VerificationFailed, KeyProblem) as exc:
            failures.append(VerificationFailed(exc.message, hint=exc.hint))
            continue
        return None, f"{MODEL_SIGNATURE_FILE} verifies with trusted key {keyid8(key)}"
    # "made with another key" says least: prefer what a key that did sign found wrong.
    telling = [f for f in failures if "made with another key" not in f.message] or failures
    raise telling[0]
