"""The first byte at which two files part, read in chunks with constant memory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bitwright.rebuild.compare._io import buffers_equal, open_regular, read_exactly

__all__ = ["first_difference"]


def first_difference(original: Path, rebuilt: Path, *, chunk_bytes: int = 1 << 20) -> int | None:
    """Return the offset of the first byte where ``rebuilt`` differs from ``original``.

    The files are read side by side in chunks of ``chunk_bytes`` into two reused buffers, so
    memory stays flat whatever their size. When one file is a prefix of the other, the
    offset is the shorter file's size.

    Args:
        original: the released file.
        rebuilt: the file the rebuild produced.
        chunk_bytes: bytes read from each file per step.

    Returns:
        The byte offset, or None when the files are identical.

    Raises:
        ValueError: ``chunk_bytes`` is not positive.
        OperationalError: a file is missing, unreadable or not a regular file.
    """
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    with open_regular(original) as fa, open_regular(rebuilt) as fb:
        size_a = os.fstat(fa.fileno()).st_size
        size_b = os.fstat(fb.fileno()).st_size
        common = min(size_a, size_b)
        buf_a = memoryview(bytearray(min(chunk_bytes, max(common, 1))))
        buf_b = memoryview(bytearray(len(buf_a)))
        offset = 0
        while offset < common:
            n = min(len(buf_a), common - offset)
            read_exactly(fa, buf_a[:n], path=original)
            read_exactly(fb, buf_b[:n], path=rebuilt)
            if not buffers_equal(buf_a, buf_b, n):
                a = np.frombuffer(buf_a, dtype=np.uint8, count=n)
                b = np.frombuffer(buf_b, dtype=np.uint8, count=n)
                return offset + int(np.flatnonzero(a != b)[0])
            offset += n
    return None if size_a == size_b else common
