"""Streams inside model files: decompression within a byte budget, and openers of members.

Every member the scanner judges is reached through an *opener*: a callable that gives a
fresh readable stream of it (a file, a zip member, a tar member, a spooled decompressed
stream). Decompression stops one byte past its budget, so a bomb never expands further.
"""

from __future__ import annotations

import bz2
import contextlib
import lzma
import tarfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from bitwright.scan.formats import Sniffed

__all__ = ["Opener", "TooLarge", "decompress", "spool_opener", "tar_opener"]

Opener = Callable[[], contextlib.AbstractContextManager[IO[bytes]]]
"""Gives a fresh readable stream of a file or member at offset 0."""


class TooLarge(Exception):  # noqa: N818  (a signal, turned into a finding)
    """The stream decompresses past its budget."""


def decompress(kind: Sniffed, source: IO[bytes], target: IO[bytes], budget: int) -> int:
    """Decompress ``source`` (of format ``kind``) into ``target``; return the bytes written.

    Raises:
        TooLarge: more than ``budget`` bytes would come out.
        EOFError: the compressed stream ends early.
        zlib.error, lzma.LZMAError, OSError, ValueError: the stream is corrupt.
    """
    decompressor: Any
    if kind is Sniffed.GZIP:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif kind is Sniffed.ZLIB:
        decompressor = zlib.decompressobj()
    elif kind is Sniffed.BZ2:
        decompressor = bz2.BZ2Decompressor()
    else:
        fmt = lzma.FORMAT_ALONE if kind is Sniffed.LZMA else lzma.FORMAT_XZ
        decompressor = lzma.LZMADecompressor(format=fmt)
    total = 0
    while chunk := source.read(1 << 20):
        # At most budget + 1 bytes per call, so a bomb cannot blow up one chunk.
        out = decompressor.decompress(chunk, budget - total + 1)
        while True:
            total += len(out)
            if total > budget:
                raise TooLarge
            target.write(out)
            if decompressor.eof or _needs_input(decompressor):
                break
            out = _more(decompressor, budget - total + 1)
        if decompressor.eof:
            break  # anything after the end of the stream is not read by a loader either
    if not decompressor.eof:
        raise EOFError("the compressed stream ends early")
    return total


def _more(decompressor: Any, limit: int) -> bytes:
    if hasattr(decompressor, "needs_input"):  # bz2, lzma keep their input themselves
        return bytes(decompressor.decompress(b"", limit))
    return bytes(decompressor.decompress(decompressor.unconsumed_tail, limit))


def _needs_input(decompressor: Any) -> bool:
    if hasattr(decompressor, "needs_input"):  # bz2, lzma
        return bool(decompressor.needs_input)
    return not decompressor.unconsumed_tail  # zlib


def spool_opener(spool: IO[bytes]) -> Opener:
    """An opener of a spooled stream (rewound each time; the spool stays open)."""

    @contextlib.contextmanager
    def opened() -> Iterator[IO[bytes]]:
        spool.seek(0)
        yield spool

    return opened


def tar_opener(archive: tarfile.TarFile, info: tarfile.TarInfo) -> Opener:
    """An opener of a regular member of an open tar archive."""

    @contextlib.contextmanager
    def opened() -> Iterator[IO[bytes]]:
        handle = archive.extractfile(info)
        if handle is None:
            raise OSError(f"{info.name} has no data")
        with handle:
            yield handle

    return opened
