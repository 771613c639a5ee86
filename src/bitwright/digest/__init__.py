"""Fast, cached, parallel sha256 of files and trees: everything bitwright attests goes through here.

* :func:`sha256_file`, :func:`sha256_files` -- regular files, streamed in 1 MiB chunks into a
  reused buffer (constant memory), in parallel across files and cores (:mod:`.files`).
* :func:`digest_tree` -- a directory: per-file digests plus one tree digest over a
  ``sha256sum``-style listing whose format verifiers recompute (:mod:`.tree`); symlink and
  special-file rules in :mod:`.walk`.
* :class:`BackgroundTreeDigest` -- :func:`digest_tree` in a child process (or a thread) while
  the caller does other work (:mod:`.background`).
* :func:`digest_artifacts` -- repository paths into the in-toto materials/products map.
* :class:`DigestCache` / :func:`default_cache` -- a persistent SQLite cache keyed by path and
  file identity (device, inode, size, mtime, ctime: :mod:`.identity`), so an unchanged file is
  never read twice and a changed one always is; unchanged trees are answered by one snapshot
  row (:mod:`.cache`).

Trust note: whoever can write the cache file can make bitwright report any digest for an
unchanged file. The persistent cache is therefore private (0700/0600, refused otherwise) and
serves ``bitwright digest`` only; a build hashes what it attests through
:func:`memory_cache` (this process's memory), and verify and rebuild pass ``cache=None``.
"""

from bitwright.digest.background import BackgroundTreeDigest
from bitwright.digest.cache import (
    CacheStats,
    DigestCache,
    default_cache,
    default_cache_path,
    memory_cache,
    open_default_cache,
)
from bitwright.digest.files import (
    CHUNK_SIZE,
    default_workers,
    sha256_file,
    sha256_files,
    stat_regular,
)
from bitwright.digest.tree import (
    TreeDigest,
    digest_artifacts,
    digest_tree,
    tree_listing,
    tree_sha256,
)
from bitwright.digest.walk import TreeEntry, expand_paths, walk_tree

__all__ = [
    "CHUNK_SIZE",
    "BackgroundTreeDigest",
    "CacheStats",
    "DigestCache",
    "TreeDigest",
    "TreeEntry",
    "default_cache",
    "default_cache_path",
    "default_workers",
    "memory_cache",
    "open_default_cache",
    "digest_artifacts",
    "digest_tree",
    "expand_paths",
    "sha256_file",
    "sha256_files",
    "stat_regular",
    "tree_listing",
    "tree_sha256",
    "walk_tree",
]
