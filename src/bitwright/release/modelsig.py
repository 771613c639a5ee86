"""The OpenSSF model signature of a release: ``model.sig`` over ``artifacts/``.

A thin wrapper over model-signing 1.1.1's public API (``model_signing.signing`` and
``model_signing.verifying``, key-based): a sigstore bundle (v0.3) whose DSSE payload is an
in-toto statement listing every file of the model directory with its sha256, signed with an
elliptic-curve key. The result is what ``model_signing verify key`` checks::

    model_signing verify key RELEASE/artifacts --signature RELEASE/model.sig --public_key KEY.pub

(model_signing spells the flag ``--public_key``.) What this module adds: bitwright's errors
with advice, an atomic write of the signature, a key-type check (model-signing takes
ECDSA keys on P-256, P-384 and P-521 only; ed25519 is refused), and file digests from
:mod:`bitwright.digest`, so files the caller already hashed are not read again
(:mod:`._modelsig_hashing`).

The signature may live outside the model directory (the release puts ``model.sig`` beside
``artifacts/``); one inside it is left out of what is signed and verified, as the CLI does.
ECDSA signatures are randomized, so two signatures of the same files differ in bytes.
"""

from __future__ import annotations

import ast
import contextlib
import io
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from cryptography.exceptions import InvalidSignature
from model_signing import signing

from bitwright.attest import load_public_key, load_signer
from bitwright.attest.keys import Key
from bitwright.errors import KeyProblem, OperationalError, UsageError, VerificationFailed
from bitwright.fileio import write_atomic
from bitwright.model import Sha256
from bitwright.release._modelsig_hashing import DigestedHashing, DigestedVerifying, known_digests

__all__ = ["MODEL_SIGNATURE_FILE", "sign_model", "verify_model"]

MODEL_SIGNATURE_FILE = "model.sig"
"""The file name of the model signature in a release (beside ``artifacts/``)."""

_SCHEMES = ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
_KEY_HINT = (
    "model-signing signs with ECDSA keys only (P-256, P-384, P-521); create one with "
    "'bitwright keygen' (ECDSA P-256 is the default)"
)


def sign_model(
    artifacts_dir: Path,
    private_key: Path,
    out: Path,
    *,
    ignore: Sequence[str] = (),
    digests: Mapping[str, Sha256] | None = None,
) -> Path:
    """Sign every file of ``artifacts_dir`` and write the signature to ``out``.

    Args:
        artifacts_dir: the model directory (a release's ``artifacts/``).
        private_key: an unencrypted PEM ECDSA private key (``bitwright keygen``).
        out: the signature file (``model.sig``), written atomically; outside the model
            directory, or left out of the signature when inside it.
        ignore: paths relative to ``artifacts_dir`` to leave unsigned (recorded in the
            signature, so a verifier skips them too).
        digests: sha256 of files of ``artifacts_dir`` already known (relative path ->
            digest), used instead of reading those files again; only pass digests of the
            very files being signed.

    Returns:
        ``out``.

    Raises:
        OperationalError: ``artifacts_dir`` is not a directory, or a file in it cannot be
            hashed (a symlink, an unreadable file).
        KeyProblem: the key is missing, unreadable, encrypted or not an ECDSA key.
        UsageError: an ``ignore`` path is absolute or leaves ``artifacts_dir``.
    """
    _require_dir(artifacts_dir)
    _check_private_key(private_key)
    ignored = _ignored_paths(artifacts_dir, out, ignore)
    config = (
        signing.Config()  # type: ignore[no-untyped-call]
        .use_elliptic_key_signer(private_key=private_key)
        .set_hashing_config(
            DigestedHashing(known_digests(artifacts_dir, digests)).set_ignored_paths(paths=ignored)
        )
    )
    with tempfile.TemporaryDirectory(prefix="bitwright-modelsig-") as scratch:
        draft = Path(scratch) / MODEL_SIGNATURE_FILE
        try:
            config.sign(artifacts_dir, draft)
        except (ValueError, OSError) as exc:
            raise OperationalError(
                f"cannot sign {artifacts_dir}: {_first_line(exc)}",
                hint="the model directory must hold regular, readable files (no symlinks)",
            ) from exc
        write_atomic(out, draft.read_bytes())
    return out


def verify_model(
    artifacts_dir: Path,
    signature: Path,
    public_key: Path,
    *,
    ignore: Sequence[str] = (),
    digests: Mapping[str, Sha256] | None = None,
) -> None:
    """Check that ``signature`` was made with ``public_key``'s key over ``artifacts_dir`` as is.

    Every file must match its signed digest, and no file may be missing or added (files
    the signature itself lists as ignored excepted).

    Args:
        artifacts_dir: the model directory (a release's ``artifacts/``).
        signature: the signature file (``model.sig``).
        public_key: the signer's PEM public key; trust only a key you were given.
        ignore: more paths relative to ``artifacts_dir`` to skip.
        digests: sha256 of files of ``artifacts_dir`` the caller hashed already (relative
            path -> digest); those files are not read again, the rest are.

    Raises:
        VerificationFailed: a file differs, is missing or was added; the signature was made
            with another key or altered; or it is not a model-signing bundle.
        OperationalError: ``artifacts_dir`` or ``signature`` is missing.
        KeyProblem: the public key is missing, unreadable or not an ECDSA key.
        UsageError: an ``ignore`` path is absolute or leaves ``artifacts_dir``.
    """
    _require_dir(artifacts_dir)
    if not signature.is_file():
        raise OperationalError(
            f"model signature {signature} not found",
            hint=f"a release carries {MODEL_SIGNATURE_FILE} beside artifacts/; "
            "sign with 'bitwright release'",
        )
    _check_public_key(public_key)
    known = known_digests(artifacts_dir, digests)
    config = DigestedVerifying(known).use_elliptic_key_verifier(public_key=public_key)
    ignored = _ignored_paths(artifacts_dir, signature, ignore)
    if ignored:
        # Without extra ignores model_signing reads the hashing settings from the signature;
        # with them it needs settings given, and these are the ones sign_model uses.
        config.set_hashing_config(DigestedHashing(known).set_ignored_paths(paths=ignored))
    try:
        # model_signing prints a warning to stdout for old-format bundles; the library
        # never prints, so it is swallowed (the verification itself still runs).
        with contextlib.redirect_stdout(io.StringIO()):
            config.verify(artifacts_dir, signature)
    except InvalidSignature as exc:
        raise VerificationFailed(
            f"model signature {signature} does not verify with {public_key}: "
            "the signed content was altered",
            hint="take model.sig from a trusted release again",
        ) from exc
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise _verification_failure(artifacts_dir, signature, public_key, exc) from exc


def _verification_failure(
    artifacts_dir: Path, signature: Path, public_key: Path, exc: Exception
) -> VerificationFailed:
    text = str(exc)
    if text.startswith("Key mismatch"):
        return VerificationFailed(
            f"model signature {signature} was made with another key than {public_key}",
            hint="pass the public key of the release's owner (--key)",
        )
    if text.startswith("Signature mismatch: "):
        return VerificationFailed(
            f"{artifacts_dir} does not match {signature.name}: "
            f"{_first_difference(artifacts_dir, text.removeprefix('Signature mismatch: '))}",
            hint="the artifacts changed after signing; do not trust this release",
        )
    return VerificationFailed(
        f"{signature} is not a valid model-signing bundle: {_first_line(exc)}",
        hint="the signature was truncated or altered; take it from the release again",
    )


def _first_difference(artifacts_dir: Path, listing: str) -> str:
    """Turn model_signing's list of differences into one readable clause naming a file."""
    try:
        differences = ast.literal_eval(listing)
    except (ValueError, SyntaxError):
        return _first_line(listing)
    if not isinstance(differences, list) or not differences:
        return _first_line(listing)
    first = str(differences[0])
    more = f" (and {len(differences) - 1} more difference(s))" if len(differences) > 1 else ""
    if first.startswith("Hash mismatch for '"):
        name = first.removeprefix("Hash mismatch for '").split("'", 1)[0]
        first = f"{artifacts_dir / name} differs from its signed digest"
    elif first.startswith("Extra files found in model "):
        first = "unsigned file(s) added: " + first.split(": ", 1)[-1]
    elif first.startswith("Missing files in model "):
        first = "signed file(s) missing: " + first.split(": ", 1)[-1]
    return first + more


def _require_dir(artifacts_dir: Path) -> None:
    if not artifacts_dir.is_dir():
        raise OperationalError(
            f"model directory {artifacts_dir} not found",
            hint="pass a release's artifacts/ directory",
        )


def _check_private_key(private_key: Path) -> None:
    # load_signer reports a missing, unreadable, encrypted or foreign key with advice.
    _check_key_type(load_signer(private_key).public_key, private_key)


def _check_public_key(public_key: Path) -> None:
    _check_key_type(load_public_key(public_key), public_key)


def _check_key_type(key: Key, path: Path) -> None:
    if key.keytype != "ecdsa" or key.scheme not in _SCHEMES:
        raise KeyProblem(
            f"key {path} is a {key.keytype} key ({key.scheme}); model-signing cannot use it",
            hint=_KEY_HINT,
        )


def _ignored_paths(artifacts_dir: Path, signature: Path, ignore: Sequence[str]) -> list[str]:
    """Validate ``ignore`` and add the signature file when it lies inside the model dir."""
    paths: list[str] = []
    for entry in ignore:
        pure = PurePosixPath(entry)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise UsageError(
                f"ignore path {entry!r} is not inside {artifacts_dir}",
                hint="give paths relative to the model directory, e.g. 'README.md'",
            )
        paths.append(pure.as_posix())
    with contextlib.suppress(ValueError):
        paths.append(signature.resolve().relative_to(artifacts_dir.resolve()).as_posix())
    return sorted(set(paths))


def _first_line(exc: BaseException | str) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."
