"""Telling a file's format by its first bytes, never by its name.

A payload can hide behind any name, so every file and archive member is judged by content:
archive and compression magic, the numpy and safetensors headers, pickle's ``PROTO``
opcode, native code headers. What none of these claims is ``text`` or ``binary``; the
scanner still runs the pickle machine over it, since a protocol 0 pickle has no header.
Names only add to that: a ``.py`` file is code whatever its bytes.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePosixPath

from bitwright.scan.safetensors import looks_like_safetensors

__all__ = ["CODE_SUFFIXES", "HEAD_BYTES", "Sniffed", "is_code_name", "sniff"]

HEAD_BYTES = 512
"""How many leading bytes :func:`sniff` needs (a tar header's magic sits at 257)."""

CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".pyd", ".so", ".dylib", ".dll", ".ipynb"})
"""File names that are code whatever they hold."""


class Sniffed(StrEnum):
    """What the first bytes of a file say it is."""

    EMPTY = "empty"
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZ2 = "bz2"
    XZ = "xz"
    LZMA = "lzma"
    ZLIB = "zlib"
    LZ4 = "lz4"
    NPY = "npy"
    SAFETENSORS = "safetensors"
    GGUF = "gguf"
    PICKLE = "pickle"
    NATIVE = "native"
    TEXT = "text"
    BINARY = "binary"

    @property
    def compressed(self) -> bool:
        """Whether this is a compressed stream the standard library can open."""
        return self in (Sniffed.GZIP, Sniffed.BZ2, Sniffed.XZ, Sniffed.LZMA, Sniffed.ZLIB)


_NATIVE_MAGIC = (
    b"\x7fELF",  # Linux shared objects
    b"\xcf\xfa\xed\xfe",  # Mach-O 64
    b"\xce\xfa\xed\xfe",  # Mach-O 32
    b"\xca\xfe\xba\xbe",  # Mach-O universal
    b"MZ",  # Windows PE
)


def sniff(head: bytes, size: int) -> Sniffed:
    """Return the format the leading bytes ``head`` of a ``size``-byte file announce."""
    if size == 0:
        return Sniffed.EMPTY
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return Sniffed.TAR
    if len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        return Sniffed.ZLIB
    if _lzma_alone(head):
        return Sniffed.LZMA
    if looks_like_safetensors(head, size):
        return Sniffed.SAFETENSORS
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return Sniffed.PICKLE
    if head.startswith(_NATIVE_MAGIC[:-1]) or _windows_pe(head):
        return Sniffed.NATIVE
    return Sniffed.TEXT if _text(head) else Sniffed.BINARY


_MAGIC = (
    (b"PK\x03\x04", Sniffed.ZIP),
    (b"PK\x05\x06", Sniffed.ZIP),  # an empty archive
    (b"\x1f\x8b", Sniffed.GZIP),
    (b"BZh", Sniffed.BZ2),
    (b"\xfd7zXZ\x00", Sniffed.XZ),
    (b"\x04\x22\x4d\x18", Sniffed.LZ4),
    (b"\x93NUMPY", Sniffed.NPY),
    (b"GGUF", Sniffed.GGUF),
)


def _windows_pe(head: bytes) -> bool:
    # "MZ" alone starts too much text; a PE file names its "PE\0\0" header at byte 60.
    if len(head) < 64 or not head.startswith(b"MZ"):
        return False
    offset = int.from_bytes(head[60:64], "little")
    return head[offset : offset + 4] == b"PE\x00\x00"


def _lzma_alone(head: bytes) -> bool:
    # .lzma: properties byte 0x5D (lc=3, lp=0, pb=2, joblib's and xz's default), a power of
    # two dictionary size, then the uncompressed size (all ones when unknown).
    if len(head) < 13 or head[0] != 0x5D:
        return False
    dictionary = int.from_bytes(head[1:5], "little")
    return dictionary >= 4096 and dictionary & (dictionary - 1) == 0


def _text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the end of the head
    return True


def is_code_name(name: str) -> bool:
    """Whether the file name alone says the file is code (``.py``, ``.so``...)."""
    return PurePosixPath(name).suffix.lower() in CODE_SUFFIXES
