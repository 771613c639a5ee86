"""What a ref of a remote repository points at now (``git ls-remote``), for a verifier's binding."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from bitwright.errors import OperationalError, ToolError
from bitwright.pins._gitcmd import git_text

__all__ = ["resolve_remote_ref"]

_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def resolve_remote_ref(repository: str, ref: str) -> str:
    """Return the commit ``ref`` (a branch, a tag, ``HEAD``) names in ``repository`` now.

    An annotated tag is followed to its commit.

    Raises:
        OperationalError: the repository cannot be reached, or has no such ref.
    """
    location = repository.removeprefix("git+")
    try:
        listing = git_text(Path(tempfile.gettempdir()), "ls-remote", "--", location, ref)
    except ToolError:
        raise OperationalError(
            f"cannot read the refs of {location} (git ls-remote failed) to resolve {ref!r}",
            hint="check that the repository is reachable (--source-uri), or pass the full "
            "--commit instead of --ref",
        ) from None
    found: dict[str, str] = {}
    for line in listing.splitlines():
        object_id, _, name = line.partition("\t")
        if _OBJECT_ID.fullmatch(object_id):
            found[name] = object_id
    for name in (f"{ref}^{{}}", f"refs/tags/{ref}^{{}}"):
        if name in found:
            return found[name]
    for name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if name in found:
            return found[name]
    if len(found) == 1:
        return next(iter(found.values()))
    raise OperationalError(
        f"{location} has no ref {ref!r}" + (" (it is ambiguous)" if found else ""),
        hint="pass a branch or tag of the source repository, or the full --commit",
    )
