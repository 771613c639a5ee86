"""``params.yaml``: composed by Hydra from ``configs/``, checked for staleness, read back.

``params.yaml`` is what DVC tracks per stage, so its bytes must depend only on ``configs/``
and the overrides: it is composed with Hydra's compose API (``@hydra.main`` would write
``outputs/`` directories and change the working directory) and dumped by OmegaConf with
interpolations resolved, keys in the order of the defaults list. The header records the
config name and the overrides, so :func:`check_params_file` can recompose exactly what
:func:`write_params_file` wrote.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bitwright.digest import DigestCache, digest_tree
from bitwright.errors import OperationalError, UsageError
from bitwright.fileio import write_atomic, write_text_atomic

__all__ = [
    "CONFIG_DIR",
    "PARAMS_FILE",
    "check_params_file",
    "compose_params",
    "load_params",
    "param_value",
    "recorded_composition",
    "write_params_file",
]

PARAMS_FILE = "params.yaml"
"""The parameter file DVC stages read, relative to the repository root."""

CONFIG_DIR = "configs"
"""The Hydra config directory, relative to the repository root."""

_WRITE_HINT = "run `bitwright params --write` and commit params.yaml"
_CONFIG_RE = re.compile(r"^# config: (?P<name>\S+)$", re.MULTILINE)
_OVERRIDES_RE = re.compile(r"^# overrides: (?P<json>\[.*\])$", re.MULTILINE)
# Hydra keeps its state in a process-wide singleton: one composition at a time.
_HYDRA_LOCK = threading.Lock()
# Bump when the composition or the memo key changes meaning: old memos then never match.
_MEMO_VERSION = "bitwright-params-memo-v1"
# The distributions whose versions can change what a composition writes.
_COMPOSERS = ("hydra-core", "omegaconf", "PyYAML")
# A resolver call (``${oc.env:HOME}``, ``${now:...}``) or a search path reaches beyond the
# config files, so a composition using one is not memoized.
_MEMO_UNSAFE_RE = re.compile(r"\$\{\s*[\w.]+\s*:|searchpath")


def compose_params(
    config_dir: Path, *, config_name: str = "config", overrides: Sequence[str] = ()
) -> str:
    """Compose the Hydra configs and return the exact text of ``params.yaml``.

    Uses the compose API (no ``outputs/`` directories, the working directory untouched), so
    the same configs and overrides give the same bytes on every run.

    Args:
        config_dir: the Hydra config directory (made absolute here, as Hydra requires).
        config_name: the primary config, without ``.yaml``.
        overrides: Hydra override strings such as ``train.epochs=5``; recorded in the header.

    Returns:
        The text to write as ``params.yaml``: a generated-file header, then the YAML.

    Raises:
        OperationalError: ``config_dir`` is not a directory.
        UsageError: Hydra cannot compose (a missing config or group option, a bad override,
            an interpolation that does not resolve).
    """
    config_dir = Path(config_dir).absolute()
    if not config_dir.is_dir():
        raise OperationalError(
            f"{config_dir}: the Hydra config directory does not exist",
            hint=f"create {CONFIG_DIR}/{config_name}.yaml or pass the right directory",
        )
    body = _compose_yaml(config_dir, config_name, list(overrides))
    return _header(config_name, list(overrides)) + body


def recorded_composition(text: str) -> tuple[str, tuple[str, ...]] | None:
    """Return the config name and overrides a ``params.yaml`` header records, if it has them."""
    name = _CONFIG_RE.search(text)
    found = _OVERRIDES_RE.search(text)
    if name is None or found is None:
        return None
    try:
        overrides = json.loads(found["json"])
    except json.JSONDecodeError:
        return None
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        return None
    return name["name"], tuple(overrides)


def check_params_file(
    repo: Path, *, memo: Path | None = None, cache: DigestCache | None = None
) -> None:
    """Check that ``params.yaml`` is exactly the composition of ``configs/``.

    The config name and overrides are taken from the file's header, so a file written with
    overrides stays valid as long as the configs have not changed.

    With a ``memo`` file, a check that passes records a key over everything the composition
    depends on: the exact bytes of ``params.yaml``, the tree digest of ``configs/`` and the
    versions of Hydra, OmegaConf and PyYAML. A later check with the same key passes without
    composing (and without importing Hydra); any other key, or a memo that cannot be read,
    composes as usual. Configs whose composition could depend on more than their files
    (resolvers such as ``${oc.env:...}``, a Hydra search path) are never memoized. Like the
    digest cache, the memo trusts whoever can write it.

    Args:
        repo: the repository root.
        memo: the memo file, e.g. under ``.bitwright/cache/``; ``None`` always composes.
        cache: digest cache for the tree digest of ``configs/`` (``None`` reads the files).

    Raises:
        OperationalError: ``params.yaml`` is missing, was not generated, or is stale (a
            file out of date is an operational error, exit 3), or ``configs/`` is missing.
    """
    path = Path(repo) / PARAMS_FILE
    try:
        data = path.read_bytes()
        # One read for the key and the check; newlines translated as read_text() would.
        current = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except FileNotFoundError:
        raise OperationalError(f"{PARAMS_FILE}: missing", hint=_WRITE_HINT) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OperationalError(f"{PARAMS_FILE}: unreadable ({exc})", hint=_WRITE_HINT) from exc
    if memo is None:
        _check_composition(repo, current)
        return
    config_dir = Path(repo) / CONFIG_DIR
    key = _memo_key(data, config_dir, cache)
    if key is not None and _read_memo(memo) == key:
        return
    _check_composition(repo, current)
    # Recorded only if configs/ still holds what the key covers: an edit during the
    # composition must not leave a memo that vouches for configs that were never composed.
    if key is not None and _memoizable(config_dir) and _memo_key(data, config_dir, cache) == key:
        _write_memo(memo, key)


def _check_composition(repo: Path, current: str) -> None:
    recorded = recorded_composition(current)
    if recorded is None:
        raise OperationalError(
            f"{PARAMS_FILE}: not generated from {CONFIG_DIR}/ (no '# config:' and "
            "'# overrides:' header)",
            hint=_WRITE_HINT,
        )
    config_name, overrides = recorded
    expected = compose_params(Path(repo) / CONFIG_DIR, config_name=config_name, overrides=overrides)
    if current != expected:
        raise OperationalError(
            f"{PARAMS_FILE}: stale, it differs from the composition of {CONFIG_DIR}/"
            f"{_first_difference(current, expected)}",
            hint=_WRITE_HINT,
        )


def _memo_key(params: bytes, config_dir: Path, cache: DigestCache | None) -> str | None:
    """The sha256 over everything a composition depends on; ``None`` when unknowable."""
    try:
        tree = digest_tree(config_dir, cache).sha256
    except OperationalError:
        return None  # no configs/, or a file digest_tree refuses: compose and report as usual
    parts = [_MEMO_VERSION, hashlib.sha256(params).hexdigest(), tree]
    parts += [f"{dist}=={_installed_version(dist)}" for dist in _COMPOSERS]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _installed_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _memoizable(config_dir: Path) -> bool:
    """Whether the composition of ``config_dir`` depends on its files alone."""
    for file in sorted(config_dir.rglob("*")):
        try:
            text = file.read_text(encoding="utf-8") if file.is_file() else ""
        except (OSError, UnicodeDecodeError):
            return False
        if _MEMO_UNSAFE_RE.search(text):
            return False
    return True


def _read_memo(memo: Path) -> str | None:
    try:
        return memo.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _write_memo(memo: Path, key: str) -> None:
    # The memo only saves time: failing to write it must never fail the check.
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(memo, f"{key}\n".encode("ascii"))
    except (OSError, OperationalError):
        return


def write_params_file(
    repo: Path, overrides: Sequence[str] = (), *, config_name: str = "config"
) -> Path:
    """Compose ``configs/`` and write ``params.yaml`` atomically.

    Args:
        repo: the repository root.
        overrides: Hydra override strings, recorded in the file's header.
        config_name: the primary config, without ``.yaml``.

    Returns:
        The path of the written ``params.yaml``.

    Raises:
        UsageError: Hydra cannot compose the configs.
        OperationalError: ``configs/`` is missing or the file cannot be written.
    """
    text = compose_params(Path(repo) / CONFIG_DIR, config_name=config_name, overrides=overrides)
    path = Path(repo) / PARAMS_FILE
    write_text_atomic(path, text)
    return path


def load_params(repo: Path, file: str = PARAMS_FILE) -> dict[str, Any]:
    """Read a parameter file of the repository as a mapping.

    Args:
        repo: the repository root.
        file: the parameter file, relative to ``repo``.

    Returns:
        The parsed YAML mapping.

    Raises:
        OperationalError: the file is missing, unreadable, not YAML or not a mapping.
    """
    path = Path(repo) / file
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OperationalError(f"{file}: missing", hint=_WRITE_HINT) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OperationalError(f"{file}: unreadable ({exc})", hint=_WRITE_HINT) from exc
    except yaml.YAMLError as exc:
        raise OperationalError(
            f"{file}: not valid YAML ({_one_line(exc)})", hint=_WRITE_HINT
        ) from exc
    if not isinstance(data, dict):
        raise OperationalError(
            f"{file}: expected a mapping of parameters, got {type(data).__name__}",
            hint=_WRITE_HINT,
        )
    return data


def param_value(params: dict[str, Any], key: str, *, file: str = PARAMS_FILE) -> Any:
    """Return the value of a dotted DVC parameter key (``train.epochs``) in ``params``.

    Raises:
        UsageError: the key is not in the parameters.
    """
    value: Any = params
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise UsageError(
                f"{file}: no parameter {key!r}",
                hint=f"add it to {CONFIG_DIR}/ and regenerate {file}, or fix dvc.yaml",
            )
        value = value[part]
    return value


def _compose_yaml(config_dir: Path, config_name: str, overrides: list[str]) -> str:
    # Imported here: Hydra is slow to import and only composition needs it.
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.initialize import get_gh_backup, restore_gh_from_backup
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    with _HYDRA_LOCK:
        # Hydra refuses to initialize twice: set any existing state aside, put it back after.
        backup = get_gh_backup()
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(
                config_dir=str(config_dir), job_name="bitwright", version_base="1.3"
            ):
                cfg = compose(config_name=config_name, overrides=overrides)
                text: str = OmegaConf.to_yaml(cfg, resolve=True)
        except (HydraException, OmegaConfBaseException, OSError) as exc:
            raise UsageError(
                f"{config_dir.name}/{config_name}.yaml: Hydra cannot compose it "
                f"with overrides {overrides}: {_one_line(exc)}",
                hint="fix the config or the override (e.g. `train.epochs=5`)",
            ) from exc
        finally:
            restore_gh_from_backup(backup)
    return text


def _header(config_name: str, overrides: list[str]) -> str:
    return (
        "# Generated by `bitwright params --write`: the Hydra composition of configs/.\n"
        "# Do not edit: change configs/ and regenerate; bitwright refuses a stale file.\n"
        f"# config: {config_name}\n"
        f"# overrides: {json.dumps(overrides)}\n"
    )


def _first_difference(current: str, expected: str) -> str:
    for number, (have, want) in enumerate(
        zip(current.splitlines(), expected.splitlines(), strict=False), start=1
    ):
        if have != want:
            return f" (line {number}: {have.strip()!r}, expected {want.strip()!r})"
    return ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
