"""Reading untrusted files safely, and writing files so that no reader sees half of one.

Reading: every input read from a release, a stage or a downloaded file is hostile until
checked. :func:`read_regular` opens only a regular file (never a FIFO, device or a symlink
at the last component, and never blocks on open), optionally only one that stays inside a
given directory, and refuses one larger than a cap; :func:`load_json` parses JSON bytes
after checking their nesting depth (the parser would otherwise recurse until it crashes);
:func:`read_json_object` is both, for the one JSON object a file must hold;
:func:`loads_strict` refuses duplicate keys and NaN, for documents that must mean one thing;
:func:`open_regular` is the same opening as a stream, for files too large to read whole.

Writing: one helper for every file bitwright writes whole (attestations, keys, contexts,
caches, reports, configs): a temporary file in the same directory, fsynced, renamed over the
target (:func:`open_atomic`, :func:`write_atomic`, :func:`write_text_atomic`).

Standard library and :mod:`bitwright.errors` only, so any layer may use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from bitwright.errors import OperationalError, VerificationFailed

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_JSON_DEPTH",
    "NotRegularFile",
    "file_kind",
    "json_depth",
    "load_json",
    "loads_strict",
    "open_atomic",
    "open_regular",
    "read_json_object",
    "read_regular",
    "write_atomic",
    "write_text_atomic",
]

MAX_DOCUMENT_BYTES = 64 << 20
"""The largest JSON or YAML document read whole by default (64 MiB); callers may raise it."""

MAX_JSON_DEPTH = 64
"""The deepest nesting of arrays and objects accepted in a JSON document by default."""


class NotRegularFile(OperationalError):
    """A path that must be a regular file is not one, or lies outside its directory.

    It is a FIFO, a device, a socket, a directory or a symlink, or its real path leaves
    the directory it must stay in.
    """


def read_regular(
    path: Path, *, limit: int = MAX_DOCUMENT_BYTES, inside: Path | None = None
) -> bytes:
    """Return the bytes of the regular file ``path``, at most ``limit`` of them.

    The file is opened as :func:`open_regular` opens it, so a FIFO cannot hang the reader
    and the file cannot be swapped between the check and the read.

    Args:
        path: the file.
        limit: the largest size accepted, in bytes.
        inside: when given, ``path`` (with every symlink of its directories resolved) must
            lie inside this directory.

    Raises:
        NotRegularFile: ``path`` is not a regular file, or it leaves ``inside``.
        OperationalError: it is missing, unreadable, or larger than ``limit``.
    """
    if inside is not None:
        real = Path(os.path.realpath(path.parent)) / path.name
        base = Path(os.path.realpath(inside))
        if not real.is_relative_to(base):
            raise NotRegularFile(
                f"{path} leads outside {inside}",
                hint="a release or workspace may only hold files inside it; take it again",
            )
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise OperationalError(
                f"{path} is {size} bytes, more than the {limit} accepted",
                hint="raise the limit if the file is genuine (see --max-document-bytes)",
            )
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise OperationalError(
                f"cannot read {path}: {exc.strerror or exc}",
                hint="check the path and permissions",
            ) from None
    if len(data) > limit:
        raise OperationalError(
            f"{path} grew past the {limit} bytes accepted while it was read",
            hint="let whatever writes it finish, then try again",
        )
    return data


def open_regular(path: Path, *, follow_symlinks: bool = False) -> BinaryIO:
    """Open the regular file ``path`` for binary reading, as a stream the caller closes.

    The file is opened without blocking (a FIFO cannot hang the caller) and, unless
    ``follow_symlinks``, without following a symlink at its last component; it is then
    checked to be a regular file by its open descriptor, so it cannot be swapped between
    the check and the reads.

    Raises:
        NotRegularFile: ``path`` is not a regular file (or is a symlink, when not followed).
        OperationalError: it is missing or unreadable.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise OperationalError(f"{path} not found", hint="check the path") from None
    except OSError as exc:
        if os.path.islink(path) and not follow_symlinks:
            raise NotRegularFile(
                f"{path} is a symbolic link, not a regular file",
                hint="replace it with the file itself; links are never followed",
            ) from None
        raise OperationalError(
            f"cannot read {path}: {exc.strerror or exc}", hint="check the path and permissions"
        ) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotRegularFile(
            f"{path} is not a regular file ({file_kind(info.st_mode)})",
            hint="only regular files are read; remove it or take the file again",
        )
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def file_kind(mode: int) -> str:
    """Name what a file of ``mode`` is when it is not a regular file ("a FIFO", "a socket")."""
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(data: bytes) -> int:
    """Return the deepest nesting of arrays and objects in JSON ``data`` (strings skipped)."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def load_json(
    data: bytes,
    *,
    source: str,
    hint: str,
    what: str = "a JSON document",
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse JSON ``data`` whose nesting is at most ``max_depth`` deep.

    Args:
        data: the bytes.
        source: what to call them in messages (usually the file).
        hint: the advice when they are not ``what``.
        what: what the bytes should be ("a DSSE envelope").
        max_depth: the deepest nesting accepted.

    Raises:
        VerificationFailed: not UTF-8, not JSON, or nested deeper than ``max_depth``.
    """
    depth = json_depth(data)
    if depth > max_depth:
        raise VerificationFailed(
            f"{source} is not {what}: nested {depth} levels deep, more than the "
            f"{max_depth} accepted",
            hint=hint,
        )
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise VerificationFailed(f"{source} is not {what}: not UTF-8", hint=hint) from exc
    except json.JSONDecodeError as exc:
        raise VerificationFailed(
            f"{source} is not {what}: invalid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno}; {len(data)} bytes)",
            hint=hint,
        ) from exc
    except RecursionError as exc:  # deeper than the interpreter allows despite the check
        raise VerificationFailed(f"{source} is not {what}: nested too deeply", hint=hint) from exc


def loads_strict(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON, refusing duplicate keys, NaN/Infinity and deep nesting: no guessing, no crash.

    Of two equal keys, one reader would take the first and another the last; a signed
    document must mean one thing to every reader.

    Raises:
        ValueError: not UTF-8 JSON, a duplicate key, a non-JSON constant, or nested deeper
            than ``max_depth``.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    depth = json_depth(raw)
    if depth > max_depth:
        raise ValueError(f"nested {depth} levels deep, more than the {max_depth} accepted")
    try:
        return json.loads(raw, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"duplicate key {key[:80]!r}")
        found[key] = value
    return found


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def read_json_object(
    path: Path,
    what: str,
    *,
    hint: str,
    limit: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    inside: Path | None = None,
) -> dict[str, Any]:
    """Read the JSON object ``path`` must hold: a regular file, bounded in size and depth.

    Args:
        path: the file.
        what: what the file should be, for messages ("a DSSE envelope").
        hint: the advice when the file is not that (corrupted, truncated, altered).
        limit: the largest size accepted, in bytes.
        max_depth: the deepest nesting accepted.
        inside: a directory the file must stay inside (see :func:`read_regular`).

    Raises:
        NotRegularFile: not a regular file, or outside ``inside``.
        OperationalError: missing, unreadable or too large.
        VerificationFailed: not UTF-8, not JSON, too deep, or not a JSON object.
    """
    data = load_json(
        read_regular(path, limit=limit, inside=inside),
        source=str(path),
        hint=hint,
        what=what,
        max_depth=max_depth,
    )
    if not isinstance(data, dict):
        raise VerificationFailed(
            f"{path} is not {what}: JSON {type(data).__name__}, not an object", hint=hint
        )
    return data


@contextlib.contextmanager
def open_atomic(path: Path, *, mode: int = 0o644, durable: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``path`` only when the ``with`` block ends normally.

    The file is written in the same directory under a hidden temporary name, created with
    mode 0600 and only then given ``mode`` (a private key is never readable by others, not
    even for a moment). It and its directory are fsynced before and after the rename. An
    exception in the block removes it and leaves ``path`` as it was.

    Args:
        path: the file to create or replace; its parent directories are created.
        mode: the permission bits of the finished file.
        durable: fsync the file and its directory; ``False`` only for files whose
            durability a later durable write vouches for (a training run's state files,
            which its trajectory file, written last, commits by digest).

    Raises:
        OperationalError: the directory or the file cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OperationalError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check that the directory exists and is writable",
        ) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp_name, path)
        if durable:
            _fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise OperationalError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check free disk space and permissions of the directory",
        ) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`open_atomic`).

    Raises:
        OperationalError: the directory or the file cannot be written.
    """
    with open_atomic(path, mode=mode, durable=durable) as fh:
        fh.write(data)


def write_text_atomic(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically (see :func:`write_atomic`)."""
    write_atomic(path, text.encode("utf-8"), mode=mode)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some file systems refuse fsync on a directory.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
