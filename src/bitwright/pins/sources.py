"""Where third-party models and datasets come from, and fetching them into a directory.

Three kinds of source (:func:`parse_source`):

* a local path (or ``file://`` URI): its file or tree is copied; links inside the tree are
  followed, links out of it are refused;
* an ``http(s)://`` URL: one file, downloaded; its ``ETag`` (else ``Last-Modified``) is
  the revision;
* ``hf://[datasets/]ORG/NAME[@REVISION]``: a Hugging Face Hub repository at a branch, tag or
  commit (default ``main``), through ``huggingface_hub`` (the ``hub`` extra); the commit it
  resolves to is the revision. Offline (``--offline`` or ``HF_HUB_OFFLINE=1``) it is read
  from huggingface_hub's local cache only.

:func:`fetch` writes what it fetched to a path that does not exist yet, as a file or a
directory, and returns the revision; the caller moves it into place.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bitwright.digest import walk_tree
from bitwright.errors import OperationalError, UsageError

__all__ = ["Fetched", "Source", "fetch", "parse_source"]

_HF = re.compile(
    r"hf://(?:(?P<type>datasets|models|spaces)/)?(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<rev>[\w./-]+))?"
)
_TIMEOUT = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Fetched:
    """What a fetch resolved the source to: a commit, an ETag, or ``""`` for a local copy."""

    revision: str


@dataclass(frozen=True)
class Source:
    """A parsed source.

    Attributes:
        text: as the user wrote it (what the pins file keeps).
        scheme: ``local``, ``http`` or ``hf``.
        uri: a URI for provenance (``file://`` for a local path).
        kind: ``model`` or ``dataset``, as far as the source says.
        local: the local path, for a local source.
        repo_id: ``ORG/NAME`` of a Hub source; ``repo_type`` and ``revision`` with it.
    """

    text: str
    scheme: str
    uri: str
    kind: str = "model"
    local: Path | None = None
    repo_id: str = ""
    repo_type: str = "model"
    revision: str = ""

    def default_path(self, repo: Path) -> str:
        """Where the files go in ``repo`` when no path is given."""
        if self.local is not None:
            resolved = self.local.resolve()
            if resolved.is_relative_to(repo.resolve()):
                return resolved.relative_to(repo.resolve()).as_posix()
            return f"third_party/{resolved.name}"
        if self.scheme == "hf":
            return f"third_party/{self.repo_id}"
        name = PurePosixPath(urllib.parse.urlparse(self.uri).path).name
        if not name or name in (".", ".."):
            raise UsageError(
                f"{self.text} names no file to call it", hint="pass --to PATH for where it goes"
            )
        return f"third_party/{name}"


def parse_source(text: str, *, base: Path | None = None) -> Source:
    """Parse a source as ``pin add`` takes it.

    Args:
        text: a local path, a ``file://`` URI, an ``http(s)`` URL or an ``hf://`` source.
        base: what a relative local path is relative to (default: the working directory).

    Raises:
        UsageError: an ``hf://`` source that is not ``hf://[datasets/]ORG/NAME[@REV]``, or
            another URL scheme.
    """
    if text.startswith("hf://"):
        match = _HF.fullmatch(text)
        if match is None:
            raise UsageError(
                f"{text!r} is not a Hub source",
                hint="write hf://ORG/NAME@REVISION (hf://datasets/ORG/NAME@REV for a dataset)",
            )
        repo_type = {"datasets": "dataset", "spaces": "space"}.get(match["type"] or "", "model")
        return Source(
            text=text,
            scheme="hf",
            uri=text,
            kind="dataset" if repo_type == "dataset" else "model",
            repo_id=match["repo"],
            repo_type=repo_type,
            revision=match["rev"] or "main",
        )
    if text.startswith(("http://", "https://")):
        return Source(text=text, scheme="http", uri=text)
    if re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://", text) and not text.startswith("file://"):
        raise UsageError(
            f"{text!r}: bitwright pins local paths, http(s) URLs and hf:// sources",
            hint="download it yourself and pin the local copy",
        )
    local = Path(urllib.parse.unquote(text.removeprefix("file://")))
    if not local.is_absolute():
        local = (base or Path.cwd()) / local
    return Source(text=text, scheme="local", uri=local.resolve().as_uri(), local=local)


def fetch(source: Source, target: Path, *, offline: bool = False) -> Fetched:
    """Fetch ``source`` to ``target`` (which must not exist): a file or a directory.

    Raises:
        OperationalError: the source is missing or unreachable, or a file cannot be written.
        UsageError: a Hub source without huggingface_hub installed.
    """
    if source.scheme == "local":
        assert source.local is not None
        _copy(source.local, target, shown=source.text)
        return Fetched(revision="")
    if source.scheme == "http":
        return _download(source.uri, target)
    return _hub(source, target, offline=offline)


def _copy(origin: Path, target: Path, *, shown: str) -> None:
    if origin.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, target)
        return
    if not origin.is_dir():
        raise OperationalError(f"{shown} not found", hint="check the path of the source")
    entries = list(walk_tree(origin))  # refuses links out of the tree and special files
    target.mkdir(parents=True)
    for entry in entries:
        destination = target / entry.relpath
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry.path, destination)


def _download(url: str, target: Path) -> Fetched:
    request = urllib.request.Request(url, headers={"User-Agent": "bitwright"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
            revision = response.headers.get("ETag") or response.headers.get("Last-Modified") or ""
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise OperationalError(
            f"cannot fetch {url}: HTTP {exc.code} {exc.reason}", hint="check the URL"
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OperationalError(
            f"cannot fetch {url}: {reason}", hint="check the URL and the network"
        ) from None
    return Fetched(revision=revision.strip('"'))


def _hub(source: Source, target: Path, *, offline: bool) -> Fetched:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError
    except ImportError:
        raise UsageError(
            f"{source.text}: hf:// sources need huggingface_hub",
            hint="pip install 'bitwright[hub]'",
        ) from None
    local_only = offline or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        snapshot = Path(
            str(
                snapshot_download(
                    source.repo_id,
                    repo_type=source.repo_type,
                    revision=source.revision,
                    local_files_only=local_only,
                    # read now: huggingface_hub reads its environment once, at import
                    cache_dir=os.environ.get("HF_HUB_CACHE") or None,
                )
            )
        )
    except (HfHubHTTPError, OSError, ValueError) as exc:
        where = "the local Hugging Face cache" if local_only else "the Hub"
        raise OperationalError(
            f"cannot fetch {source.text} from {where}: {_first_line(exc)}",
            hint="check the name and revision, the network, or HF_HUB_CACHE",
        ) from None
    _copy_snapshot(snapshot, target)
    return Fetched(revision=snapshot.name)


def _copy_snapshot(snapshot: Path, target: Path) -> None:
    # A snapshot's files are links into the cache's blobs: copy what they point to.
    target.mkdir(parents=True)
    for directory, _, names in os.walk(snapshot):
        for name in sorted(names):
            origin = Path(directory) / name
            destination = target / origin.relative_to(snapshot)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, destination)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
