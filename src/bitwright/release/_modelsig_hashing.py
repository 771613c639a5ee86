"""model-signing's file serialization with the file digests coming from :mod:`bitwright.digest`.

model-signing builds the manifest it signs (or checks) by walking the model directory and
hashing every file with its own hasher. A release's files have usually just been hashed by
bitwright (a verifier hashes ``artifacts/`` once for the subjects and the AI BOM), so reading
them again only doubles the cost. :class:`DigestedHashing` keeps model-signing's walk, its
ignore and symlink rules and its manifest format, and swaps only the per-file hasher: a
digest already known for a path is used as is, any other file is hashed by
:func:`bitwright.digest.sha256_file`. The manifest is byte for byte what model-signing's own
sha256 file serialization makes, which the real ``model_signing`` CLI test holds to.

This leans on two hooks of model-signing 1.1.1 (pinned): ``hashing.Config.
_build_file_hasher_factory`` and ``verifying.Config._guess_hashing_config``. A signature
made another way (shards, another algorithm) is checked by model-signing's own hashers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from model_signing import hashing, manifest, verifying
from model_signing._hashing import hashing as engines
from model_signing._hashing import io

from bitwright.digest import sha256_file
from bitwright.model import Sha256

__all__ = ["DigestedHashing", "DigestedVerifying", "known_digests"]

_SHA256 = "sha256"


def known_digests(model_dir: Path, digests: Mapping[str, Sha256] | None) -> dict[str, Sha256]:
    """Key ``digests`` (paths relative to ``model_dir``) by the paths model-signing will use."""
    return {os.path.normpath(model_dir / name): digest for name, digest in (digests or {}).items()}


class _KnownFileHasher(io.FileHasher):
    """The sha256 of one file: a digest bitwright already has, or one it computes now."""

    def __init__(self, path: Path, known: Mapping[str, Sha256]) -> None:
        self._path = path
        self._known = known

    def compute(self) -> engines.Digest:
        digest = self._known.get(os.path.normpath(self._path))
        if digest is None:
            digest = sha256_file(self._path)
        return engines.Digest(_SHA256, bytes.fromhex(digest))

    @property
    def digest_name(self) -> str:
        return _SHA256

    @property
    def digest_size(self) -> int:
        return 32


class DigestedHashing(hashing.Config):
    """model-signing's hashing configuration whose sha256 file hasher is bitwright's."""

    def __init__(self, known: Mapping[str, Sha256]) -> None:
        self._known = dict(known)  # before the base class builds its default serializer
        super().__init__()  # type: ignore[no-untyped-call]

    def _build_file_hasher_factory(
        self,
        hashing_algorithm: Literal["sha256", "blake2", "blake3"] = "sha256",
        chunk_size: int = 1 << 20,
        max_workers: int | None = None,
    ) -> Callable[[Path], io.FileHasher]:
        if hashing_algorithm != _SHA256:
            factory: Callable[[Path], io.FileHasher] = super()._build_file_hasher_factory(
                hashing_algorithm, chunk_size, max_workers
            )
            return factory
        known = self._known
        return lambda path: _KnownFileHasher(path, known)


class DigestedVerifying(verifying.Config):
    """model-signing's verification that hashes through :class:`DigestedHashing` where it can.

    The hashing settings come from the signed manifest, as in model-signing; only a manifest
    of whole files under sha256 is checked with the known digests.
    """

    def __init__(self, known: Mapping[str, Sha256]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._known = dict(known)

    def _guess_hashing_config(self, source_manifest: manifest.Manifest) -> None:
        args: dict[str, Any] = source_manifest.serialization_type
        if args.get("method") != "files" or args.get("hash_type") != _SHA256:
            super()._guess_hashing_config(source_manifest)
            return
        ignored: Iterable[Path] = args.get("ignore_paths", frozenset())
        self._hashing_config = DigestedHashing(self._known).use_file_serialization(
            allow_symlinks=args["allow_symlinks"], ignore_paths=ignored
        )
