"""Hash a tree in the background while this process does other work.

:class:`BackgroundTreeDigest` runs :func:`~bitwright.digest.digest_tree` (no cache: a
verifier trusts only digests made from the bytes now) either in a child Python process
(:mod:`._worker`) or in a thread:

* a **child** overlaps truly on two cores, but starts ~70 ms late (an interpreter and
  ``bitwright.digest``): right for a command that still has its imports ahead of it;
* a **thread** starts at once, but hashing takes Python's lock between chunks, so busy
  Python code beside it slows it: measured here, 200 ms of pure Python in the main thread
  added ~200 ms to a 0.35 s hash (50 ms of checks: ~50 ms). Right when little Python work
  is left to overlap (a warm process calling the verifier).

The child reports progress and the result as lines on its stdout: ``p BYTES`` now and then,
then ``r JSON`` (relative path -> sha256) or ``e JSON`` (an error's kind, message and hint).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from bitwright.digest.tree import digest_tree
from bitwright.errors import BitwrightError, OperationalError, UsageError
from bitwright.model import Sha256, is_sha256

__all__ = ["BackgroundTreeDigest"]


class BackgroundTreeDigest:
    """The per-file sha256 of a directory tree, computed by a child process.

    Use as a context manager (or call :meth:`close`) so that the child never outlives a
    caller that gave up early.
    """

    def __init__(
        self, root: Path, on_bytes: Callable[[int], None] | None = None, *, child: bool = True
    ) -> None:
        self.root = Path(root)
        self._on_bytes = on_bytes
        self._files: dict[str, Sha256] | None = None
        self._error: BaseException | None = None
        self._child: subprocess.Popen[bytes] | None = None
        if child:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "bitwright.digest._worker", str(self.root)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_child_environment(),
            )
        target = self._read if child else self._hash
        self._reader = threading.Thread(target=target, name="bitwright-hash", daemon=True)
        self._reader.start()

    def _hash(self) -> None:
        try:
            self._files = dict(digest_tree(self.root, on_bytes=self._on_bytes).files)
        except BaseException as exc:  # raised again in the thread that asks for the result
            self._error = exc

    def _read(self) -> None:
        assert self._child is not None and self._child.stdout is not None
        for line in self._child.stdout:
            kind, _, rest = line.rstrip(b"\n").partition(b" ")
            if kind == b"p" and self._on_bytes is not None:
                self._on_bytes(int(rest))
            elif kind in (b"r", b"e"):
                try:
                    if kind == b"r":
                        self._files = _files(rest)
                    else:
                        self._error = _error(rest)
                except ValueError as exc:  # the child is bitwright's own: a bug, said plainly
                    self._error = OperationalError(
                        f"hashing {self.root}: unreadable answer from the hashing process ({exc})"
                    )

    def result(self) -> dict[str, Sha256]:
        """Wait for the digests: POSIX path relative to the root -> sha256, sorted by path.

        Raises:
            OperationalError: a file could not be hashed (as :func:`digest_tree` says), or
                the child process failed.
        """
        self._reader.join()
        code = self._child.wait() if self._child is not None else 0
        if self._error is not None:
            raise self._error
        if self._files is None:
            assert self._child is not None  # a thread sets the digests or an error
            assert self._child.stderr is not None
            last = (
                self._child.stderr.read().decode(errors="replace").strip().splitlines() or [""]
            )[-1]
            raise OperationalError(
                f"hashing {self.root} failed (exit status {code}): {last or 'no output'}",
                hint="run `bitwright digest` on it to see which file is the problem",
            )
        return self._files

    def close(self) -> None:
        """Stop the child if it is still hashing (a thread is left to finish)."""
        if self._child is None:
            return
        if self._child.poll() is None:
            self._child.kill()
            self._child.wait()
        for stream in (self._child.stdout, self._child.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> BackgroundTreeDigest:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _child_environment() -> dict[str, str]:
    """This environment, with this bitwright first on the path (however it was imported)."""
    package_parent = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


def _files(text: bytes) -> dict[str, Sha256]:
    data = json.loads(text)
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and is_sha256(v) for k, v in data.items()
    ):
        raise ValueError("the hashing process sent a malformed result")
    return {k: Sha256(v) for k, v in data.items()}


def _error(text: bytes) -> BitwrightError:
    data = json.loads(text)
    kind = UsageError if data.get("kind") == "UsageError" else OperationalError
    return kind(str(data.get("message", "hashing failed")), hint=str(data.get("hint") or ""))
