"""Where ``release --out`` and ``rebuild --out`` may write, and what they may replace.

Both commands are checked before any work: ``--out`` naming a file, a symlink or a
directory that holds something else is refused at once, not after a build. A directory is
replaced (``release --force``) or overwritten (``rebuild --out``) only when it is
recognisably an earlier output of the same command (its own marker file) and holds nothing
precious: never a directory with ``.git`` or a private key in it, nor the repository root,
the working directory, the home directory or any directory above one of them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from bitwright.errors import OperationalError

__all__ = ["OutputKind", "check_output_dir", "precious_reason"]

OutputKind = Callable[[Path], bool]
"""Whether a directory is an earlier output of the command (it holds its marker)."""

_KEY_MARKERS = (b"PRIVATE KEY-----", b"OPENSSH PRIVATE KEY")
_SCAN_LIMIT = 10_000
_HEAD = 4096


def check_output_dir(
    out: Path,
    *,
    what: str,
    is_own: OutputKind,
    replace: bool,
    protected: Iterable[Path] = (),
) -> Path:
    """Return ``out`` resolved if the command may write there; refuse with one line otherwise.

    Args:
        out: the ``--out`` the user gave.
        what: the command's output, for messages ("release directory").
        is_own: recognises an earlier output of the command by its marker.
        replace: whether an existing own output may be replaced (``--force``, or always
            for a rebuild report).
        protected: more directories never to write into or above (the repository root).

    Raises:
        OperationalError: ``out`` is a file or a symlink, exists and may not be replaced,
            is not an earlier output of the command, or is or holds something precious.
    """
    if out.is_symlink():
        raise OperationalError(
            f"--out {out} is a symbolic link", hint=f"name a plain directory for the {what}"
        )
    if out.exists() and not out.is_dir():
        raise OperationalError(
            f"--out {out} is a file, not a directory",
            hint=f"name a new directory for the {what}",
        )
    resolved = out.resolve()
    reason = precious_reason(resolved, protected)
    if reason is not None:
        raise OperationalError(
            f"--out {out} {reason}; bitwright never writes its {what} there",
            hint=f"name a new directory for the {what}, e.g. dist/release",
        )
    if not resolved.exists() or not any(resolved.iterdir()):
        return resolved
    if not is_own(resolved):
        raise OperationalError(
            f"--out {out} exists and is not a {what} of bitwright's",
            hint=f"name a new or empty directory; bitwright replaces only its own {what}",
        )
    if not replace:
        raise OperationalError(
            f"{what} {out} already exists", hint="pass --force to replace it, or another --out"
        )
    return resolved


def precious_reason(directory: Path, protected: Iterable[Path] = ()) -> str | None:
    """Why ``directory`` must never be written over (None when it may be).

    ``directory`` is absolute and resolved; it is precious when it is, or lies above, the
    working directory, the home directory or one of ``protected``, or when it holds a
    ``.git`` or a private key anywhere inside.
    """
    guarded = {
        "the working directory": Path.cwd(),
        "the home directory": Path.home(),
        **{f"the project directory {p}": p for p in protected},
    }
    for name, path in guarded.items():
        real = path.resolve()
        if real == directory or real.is_relative_to(directory):
            return f"is or contains {name}"
    if directory.exists():
        return _precious_content(directory)
    return None


def _precious_content(directory: Path) -> str | None:
    seen = 0
    for root, dirs, files in os.walk(directory):
        for name in (*dirs, *files):
            seen += 1
            if seen > _SCAN_LIMIT:
                return f"holds more than {_SCAN_LIMIT} entries (not an output of bitwright)"
            if name == ".git":
                return f"holds a git repository ({Path(root, name)})"
        for name in files:
            if _private_key(Path(root, name)):
                return f"holds a private key ({Path(root, name)})"
    return None


def _private_key(path: Path) -> bool:
    if path.suffix == ".key":
        return True
    try:  # never blocks on a FIFO, never follows a link
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        head = os.read(fd, _HEAD) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        head = b""
    finally:
        os.close(fd)
    return any(marker in head for marker in _KEY_MARKERS)
