"""Read where a verifier fetches DVC data: the default remote's URL from the repository config.

Only the repository's own levels count, ``.dvc/config`` and then ``.dvc/config.local``
(which overrides it), read with configobj as DVC reads them; the user's and the system's
DVC configs are left out, because a pin must not depend on who ran the build. A relative
local remote is resolved against the directory of the config file that defines it, as DVC
does; passwords or tokens in a URL's user part are removed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from configobj import ConfigObj, ConfigObjError  # type: ignore[import-untyped]

from bitwright.errors import OperationalError
from bitwright.pins.git import redact_url

__all__ = ["default_remote_url", "remote_url"]

_LEVELS = ("config", "config.local")


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return dict(ConfigObj(os.fspath(path), encoding="utf-8", interpolation=False))
    except (ConfigObjError, OSError, UnicodeDecodeError) as exc:
        raise OperationalError(
            f"DVC config {path} is unreadable ({exc})",
            hint="fix it, or rewrite it with `dvc remote default NAME`",
        ) from None


def _is_local(url: str) -> bool:
    scheme = urlsplit(url).scheme
    return not scheme or len(scheme) == 1  # a Windows drive letter is no scheme


def default_remote_url(repo: Path) -> str:
    """Return the URL of the DVC default remote of ``repo``, or "" when there is none.

    Raises:
        OperationalError: a config file is unreadable, or ``core.remote`` names a remote
            that has no ``url``.
    """
    return remote_url(repo, "")


def remote_url(repo: Path, remote: str) -> str:
    """Return the URL of the DVC remote called ``remote`` ("" for the default one), or "".

    Raises:
        OperationalError: a config file is unreadable, or the remote has no ``url``.
    """
    dvc_dir = repo / ".dvc"
    name = ""
    urls: dict[str, tuple[str, Path]] = {}
    for level in _LEVELS:
        config = _load(dvc_dir / level)
        core = config.get("core") or {}
        name = str(core.get("remote", name))
        for section, values in config.items():
            if section.startswith("remote ") and isinstance(values, dict) and "url" in values:
                defined = section.removeprefix("remote ").strip().strip("\"'")
                urls[defined] = (str(values["url"]), dvc_dir / level)
    name = remote or name
    if not name:
        return ""
    if name not in urls:
        raise OperationalError(
            f"DVC {'remote' if remote else 'default remote'} {name!r} has no url in "
            f"{dvc_dir}/config",
            hint=f"set it with `dvc remote add -d {name} URL` (or `dvc remote default --unset`)",
        )
    url, defined_in = urls[name]
    if _is_local(url):
        return os.path.normpath(defined_in.parent / os.path.expanduser(url))
    return redact_url(url)
