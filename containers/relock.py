#!/usr/bin/env python3
"""Write or check containers/images.lock: the digest of a built image and its Containerfile.

Standard library only, so it runs before the project is installed::

    python containers/relock.py --image localhost/bitwright-build:py3.11-bookworm
    python containers/relock.py --image NAME --digest sha256:...   # e.g. podman push --digestfile
    python containers/relock.py --unbuilt                           # no engine: digest of zeros
    python containers/relock.py --check                             # exit 1 if the lock is stale

Without ``--digest`` the digest is read with ``podman image inspect``. The lock's format is
described in ``src/bitwright/pins/container.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "containers" / "images.lock"
UNBUILT = "sha256:" + "0" * 64
FIELDS = ("name", "digest", "containerfile", "containerfile_sha256", "base", "created")
DEFAULT_NAME = "localhost/bitwright-build:py3.11-bookworm"
HEADER = """\
# Build images pinned by manifest digest; written by containers/relock.py, never by hand.
# A digest of all zeros means the image was not built yet: a build records it as
# `enforced: false, how: host`, and refuses to claim it ran stages inside it.
"""


def _base_of(text: str) -> str:
    match = re.search(r"^FROM\s+(\S+@sha256:[0-9a-f]{64})\s*$", text, re.MULTILINE)
    if match is None:
        sys.exit("the Containerfile has no `FROM name@sha256:<digest>` line: pin the base")
    return match.group(1)


def _epoch_arg(text: str) -> int:
    match = re.search(r"^ARG\s+SOURCE_DATE_EPOCH=(\d+)\s*$", text, re.MULTILINE)
    return int(os.environ.get("SOURCE_DATE_EPOCH") or (match.group(1) if match else 0))


def _inspect_digest(image: str) -> str:
    done = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Digest}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"podman image inspect {image} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _entry(args: argparse.Namespace) -> dict[str, str]:
    containerfile = (ROOT / args.containerfile).resolve()
    text = containerfile.read_text(encoding="utf-8")
    digest = UNBUILT if args.unbuilt else args.digest or _inspect_digest(args.image)
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        sys.exit(f"not a manifest digest: {digest!r}")
    created = dt.datetime.fromtimestamp(_epoch_arg(text), dt.UTC)
    return {
        "name": args.image,
        "digest": digest,
        "containerfile": containerfile.relative_to(ROOT).as_posix(),
        "containerfile_sha256": hashlib.sha256(containerfile.read_bytes()).hexdigest(),
        "base": _base_of(text),
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _render(images: dict[str, dict[str, str]]) -> str:
    lines = [HEADER, "schema = 1\n"]
    for role in sorted(images):
        lines.append(f"\n[images.{role}]\n")
        # A JSON string is a valid TOML basic string.
        lines.extend(f"{key} = {json.dumps(images[role][key])}\n" for key in FIELDS)
    return "".join(lines)


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _check(role: str) -> int:
    images = tomllib.loads(LOCK.read_text(encoding="utf-8"))["images"]
    entry = images[role]
    actual = hashlib.sha256((ROOT / entry["containerfile"]).read_bytes()).hexdigest()
    if actual != entry["containerfile_sha256"]:
        print(f"{LOCK}: {entry['containerfile']} changed since the lock; rebuild and relock")
        return 1
    state = "never built" if entry["digest"] == UNBUILT else entry["digest"]
    print(f"{LOCK}: images.{role} matches {entry['containerfile']} ({state})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and write (or check) the lock."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=DEFAULT_NAME, help="image name to lock")
    parser.add_argument("--digest", help="manifest digest (default: podman image inspect)")
    parser.add_argument("--unbuilt", action="store_true", help="lock without a built image")
    parser.add_argument("--role", default="build", help="lock entry [images.ROLE]")
    parser.add_argument("--containerfile", default="containers/Containerfile")
    parser.add_argument("--check", action="store_true", help="only check the lock")
    args = parser.parse_args(argv)
    if args.check:
        return _check(args.role)
    images = tomllib.loads(LOCK.read_text(encoding="utf-8"))["images"] if LOCK.exists() else {}
    images[args.role] = _entry(args)
    _write_atomically(LOCK, _render(images))
    print(f"{LOCK}: images.{args.role} = {images[args.role]['digest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
