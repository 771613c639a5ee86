"""The child process of :class:`~bitwright.digest.background.BackgroundTreeDigest`.

``python -m bitwright.digest._worker ROOT`` hashes the tree at ``ROOT`` with
:func:`~bitwright.digest.digest_tree` (no cache) and writes ``p BYTES`` progress lines (at most
one per 16 MiB) and then ``r JSON`` or ``e JSON`` to stdout.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from bitwright.digest.tree import digest_tree
from bitwright.errors import BitwrightError

_PROGRESS_STEP = 16 << 20


def main(argv: list[str]) -> int:
    """Hash ``argv[0]`` and report on stdout; the exit status is 0 or the error's."""
    out = sys.stdout.buffer
    lock = threading.Lock()
    pending = 0

    def progress(n: int) -> None:
        nonlocal pending
        with lock:
            pending += n
            if pending >= _PROGRESS_STEP:
                out.write(b"p %d\n" % pending)
                out.flush()
                pending = 0

    try:
        tree = digest_tree(Path(argv[0]), on_bytes=progress)
    except BitwrightError as exc:
        body = {"kind": type(exc).__name__, "message": exc.message, "hint": exc.hint}
        out.write(b"e " + json.dumps(body).encode() + b"\n")
        return int(exc.exit_code)
    if pending:
        out.write(b"p %d\n" % pending)
    out.write(b"r " + json.dumps(tree.files).encode() + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
