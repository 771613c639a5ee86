r"""Tree digests and artifact maps: many files, one verifiable sha256.

The tree digest format (verifiers recompute it; it must never change):

    listing = b"".join(f"{sha256_hex}  {relpath}\n".encode("utf-8") for each file)
    tree sha256 = sha256(listing).hexdigest()

* one line per regular file: 64 lowercase hex digits, two spaces, the POSIX path relative to the
  tree root (no leading ``./``), a newline (``\n``);
* lines sorted by the UTF-8 bytes of ``relpath`` (equal to code point order);
* file names are UTF-8 without line breaks (others are refused), so no escaping exists;
* symlinks inside the tree count as the file they point to, under their own path; empty
  directories do not appear (see :mod:`bitwright.digest.walk`);
* an empty tree has the digest of the empty listing (``e3b0c442...``).

For trees without symlinks and without ``\`` in names (which ``sha256sum`` escapes), the
listing is byte for byte what coreutils prints, so a shell recomputes the tree digest with::

    cd ROOT && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bitwright.digest.cache import DigestCache, TreeSnapshot
from bitwright.digest.files import ByteCallback, digest_stat_files
from bitwright.digest.identity import tree_fingerprint
from bitwright.digest.walk import TreeEntry, expand_paths, walk_tree
from bitwright.model.digests import ArtifactMap, Sha256

__all__ = ["TreeDigest", "digest_artifacts", "digest_tree", "tree_listing", "tree_sha256"]

_DIGEST_BYTES = 32


@dataclass(frozen=True)
class TreeDigest:
    """The digest of a directory tree.

    Attributes:
        files: POSIX path relative to the root -> sha256, sorted by path.
        sha256: sha256 of the listing of ``files`` (format in the module docstring).
        size: Total bytes of the files.
    """

    files: dict[str, Sha256]
    sha256: Sha256
    size: int


def tree_listing(files: Mapping[str, Sha256]) -> bytes:
    """Return the ``sha256sum``-style listing of ``files`` that a tree digest hashes."""
    return "".join([f"{files[rel]}  {rel}\n" for rel in sorted(files)]).encode()


def tree_sha256(files: Mapping[str, Sha256]) -> Sha256:
    """Return the tree digest of ``{relpath: sha256}`` (recomputing a published one)."""
    return Sha256(hashlib.sha256(tree_listing(files)).hexdigest())


def _digest_entries(
    entries: Sequence[TreeEntry],
    cache: DigestCache | None,
    workers: int | None,
    on_bytes: ByteCallback | None,
) -> tuple[dict[str, Sha256], bool]:
    result = digest_stat_files(
        [(entry.abspath, entry.stat) for entry in entries],
        cache,
        workers=workers,
        on_bytes=on_bytes,
    )
    digests = result.digests
    return {entry.relpath: digests[entry.abspath] for entry in entries}, result.settled


def digest_tree(
    root: Path,
    cache: DigestCache | None = None,
    *,
    workers: int | None = None,
    on_bytes: ByteCallback | None = None,
    exclude: Sequence[str] = (),
) -> TreeDigest:
    """Digest every regular file under ``root`` and the tree as a whole.

    With a cache, an unchanged tree is answered from its snapshot (one ``stat`` per file and
    one cache row); otherwise unchanged files come from the cache and the rest is read.

    Args:
        root: The directory.
        cache: Digest cache to consult and fill; ``None`` reads every file.
        workers: Threads to hash with; default: the CPUs this process may use.
        on_bytes: Thread-safe progress callback with bytes done.
        exclude: ``fnmatch`` patterns of files or directories to leave out (e.g. ``.git``).

    Returns:
        The per-file digests, the tree digest and the total size.

    Raises:
        OperationalError: ``root`` is not a directory, or a file in it is refused or
            unreadable (symlink out of the tree, fifo, socket, device, ...); the message
            names the file.
    """
    entries = walk_tree(Path(root), exclude=exclude)
    size = sum([entry.stat.st_size for entry in entries])
    if cache is None:
        files, _ = _digest_entries(entries, None, workers, on_bytes)
        return TreeDigest(files=files, sha256=tree_sha256(files), size=size)

    absroot = os.path.abspath(root)
    fingerprint = tree_fingerprint([e.relpath for e in entries], [e.stat for e in entries])
    snapshot = cache.lookup_tree(absroot, fingerprint)
    if snapshot is not None and len(snapshot.digests) == _DIGEST_BYTES * len(entries):
        hexes = snapshot.digests.hex()
        files = {
            entry.relpath: Sha256(hexes[64 * i : 64 * i + 64]) for i, entry in enumerate(entries)
        }
        if on_bytes is not None:
            on_bytes(size)
        return TreeDigest(files=files, sha256=snapshot.sha256, size=size)

    files, settled = _digest_entries(entries, cache, workers, on_bytes)
    tree = TreeDigest(files=files, sha256=tree_sha256(files), size=size)
    if settled:
        digests = bytes.fromhex("".join(files.values()))
        cache.store_tree(absroot, TreeSnapshot(fingerprint, tree.sha256, digests))
    return tree


def digest_artifacts(
    root: Path,
    paths: Sequence[str],
    cache: DigestCache | None = None,
    *,
    exclude: Sequence[str] = (),
) -> ArtifactMap:
    """Digest repository paths (files or directories) into an in-toto materials/products map.

    Args:
        root: The repository root.
        paths: Paths relative to ``root``; directories expand to the files under them.
        cache: Digest cache to consult and fill; ``None`` reads every file.
        exclude: ``fnmatch`` patterns of files or directories to leave out.

    Returns:
        POSIX path relative to ``root`` -> sha256, sorted by path.

    Raises:
        OperationalError: A path is missing (the message names it), leaves ``root``, or holds
            a file that is refused or unreadable.
    """
    entries = expand_paths(Path(root), paths, exclude=exclude)
    return _digest_entries(entries, cache, None, None)[0]
