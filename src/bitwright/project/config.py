"""The project config, ``.bitwright/config.toml``: sandbox allowances and what a release holds.

The one place a project tells bitwright how to treat its pipeline. It is committed with the
project (unlike the rest of ``.bitwright/``, which holds keys and caches), so a rebuild of a
commit applies the same allowances; a build refuses a config that git does not track. A
project without the file gets the defaults: every stage sealed, the release chosen as below.

::

    schema = 1

    [sandbox]                      # every stage
    env = ["HF_HUB_OFFLINE"]       # the caller's variables passed through (values recorded
                                   # in links as digests)
    writable = []                  # repository directories a stage may write besides its outs
                                   # (fresh and empty; what it writes there is discarded)
    network = false                # true: keep the network (the build is then not hermetic)

    [stages.train.sandbox]         # one stage; adds to [sandbox]
    writable = [".dvc/tmp"]        # dvclive writes signal files there

    [release]
    paths = []                     # more repository paths to release (stage outputs)
    exclude = []                   # paths not to release
    metrics = true                 # release every metrics file of dvc.yaml
    plots = true                   # release every plots output of dvc.yaml
    framework = ""                 # the model's framework for the AI BOM ("scikit-learn");
                                   # default: read from the model files

What a release holds: the ``artifacts:`` of ``dvc.yaml`` (every type; models are described as
models in the AI BOM), every metrics and plots output, and ``release.paths``, less
``release.exclude``; a project that declares neither artifacts nor paths releases the outputs of
its final stages. Every released path must be an output of a stage.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitwright.errors import UsageError
from bitwright.fileio import read_regular
from bitwright.model import SandboxAllowances
from bitwright.pins import is_ignored_untracked
from bitwright.runner.allowances import check_allowances

__all__ = [
    "CONFIG_PATH",
    "MAX_CONFIG_BYTES",
    "ProjectConfig",
    "ReleaseConfig",
    "load_project_config",
    "parse_project_config",
    "require_committed_config",
]

CONFIG_PATH = ".bitwright/config.toml"
"""The project config, relative to the repository root."""

MAX_CONFIG_BYTES = 256 << 10
"""The largest config accepted (a hand-written file of a few lines)."""

SCHEMA = 1

_TOP = frozenset({"schema", "sandbox", "stages", "release"})
_SANDBOX = frozenset({"env", "writable", "network"})
_STAGE = frozenset({"sandbox"})
_RELEASE = frozenset({"paths", "exclude", "metrics", "plots", "framework"})
_HINT = "see README.md, 'Use bitwright in your DVC project', for the format"


@dataclass(frozen=True)
class ReleaseConfig:
    """``[release]``: what ``bitwright release`` ships besides the ``artifacts:`` of dvc.yaml."""

    paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    metrics: bool = True
    plots: bool = True
    framework: str = ""


@dataclass(frozen=True)
class ProjectConfig:
    """The parsed config; the defaults when the project has none.

    Attributes:
        sandbox: allowances of every stage.
        stages: stage name -> its own allowances (added to ``sandbox``).
        release: the release selection.
        present: whether the project has a config file.
    """

    sandbox: SandboxAllowances = field(default_factory=SandboxAllowances)
    stages: Mapping[str, SandboxAllowances] = field(default_factory=dict)
    release: ReleaseConfig = field(default_factory=ReleaseConfig)
    present: bool = False

    def allowances(self, stage: str) -> SandboxAllowances:
        """The allowances of ``stage``: the project's and its own, together."""
        own = self.stages.get(stage, SandboxAllowances())
        return SandboxAllowances(
            env=tuple(dict.fromkeys((*self.sandbox.env, *own.env))),
            writable=tuple(dict.fromkeys((*self.sandbox.writable, *own.writable))),
            network=self.sandbox.network or own.network,
        )

    def check_stages(self, names: Iterable[str]) -> None:
        """Refuse allowances for a stage that ``dvc.yaml`` does not have (a typo loosens nothing).

        Raises:
            UsageError: the config names an unknown stage.
        """
        known = set(names)
        unknown = sorted(set(self.stages) - known)
        if unknown:
            raise UsageError(
                f"{CONFIG_PATH}: [stages.{unknown[0]}] names no stage of dvc.yaml",
                hint=f"stages are: {', '.join(sorted(known))}",
            )


def load_project_config(repo: Path) -> ProjectConfig:
    """Read ``.bitwright/config.toml`` of ``repo``; the defaults when there is none.

    The file must be a regular file inside the repository (never a symlink, FIFO or device)
    of at most :data:`MAX_CONFIG_BYTES`.

    Raises:
        UsageError: the config is not valid TOML or breaks the format.
        OperationalError: it is not a regular file, leads outside, is too large or unreadable.
    """
    path = repo / CONFIG_PATH
    if not path.exists() and not path.is_symlink():
        return ProjectConfig()
    data = read_regular(path, limit=MAX_CONFIG_BYTES, inside=repo)
    return parse_project_config(data, source=CONFIG_PATH)


def require_committed_config(repo: Path) -> None:
    """Refuse a config that git ignores: it would shape a build that no commit records.

    (A config that is untracked but not ignored, or edited, makes the tree dirty, which the
    build's git pin already refuses.)

    Raises:
        UsageError: ``.bitwright/config.toml`` exists and is ignored by git.
    """
    if (repo / CONFIG_PATH).exists() and is_ignored_untracked(repo, CONFIG_PATH):
        raise UsageError(
            f"{CONFIG_PATH} is ignored by git, so no commit records it",
            hint="ignore .bitwright/* instead of .bitwright/ in .gitignore, add "
            f"!{CONFIG_PATH}, and commit it (`bitwright init` does both)",
        )


def parse_project_config(data: bytes, *, source: str = CONFIG_PATH) -> ProjectConfig:
    """Parse the bytes of a project config (see the module docstring for the format).

    Raises:
        UsageError: not UTF-8 TOML, an unknown key, a value of the wrong type, an allowance
            that may not be given (see :func:`bitwright.runner.allowances.check_allowances`).
    """
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not UTF-8 text", hint=_HINT) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source} is not valid TOML: {exc}", hint=_HINT) from None
    except RecursionError:
        raise UsageError(f"{source} is nested too deeply", hint=_HINT) from None
    _known(source, "", document, _TOP)
    schema = document.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise UsageError(
            f"{source}: schema {schema!r} is not understood (this bitwright reads {SCHEMA})",
            hint="upgrade bitwright, or rewrite the config",
        )
    sandbox = _allowances(source, "sandbox", document.get("sandbox", {}))
    stages_table = _table(source, "stages", document.get("stages", {}))
    stages: dict[str, SandboxAllowances] = {}
    for name, body in stages_table.items():
        where = f"stages.{name}"
        _known(source, where, _table(source, where, body), _STAGE)
        stages[name] = _allowances(source, f"{where}.sandbox", body.get("sandbox", {}))
    release = _release(source, document.get("release", {}))
    return ProjectConfig(sandbox=sandbox, stages=stages, release=release, present=True)


def _allowances(source: str, where: str, value: Any) -> SandboxAllowances:
    table = _table(source, where, value)
    _known(source, where, table, _SANDBOX)
    given = SandboxAllowances(
        env=_strings(source, f"{where}.env", table.get("env", [])),
        writable=_strings(source, f"{where}.writable", table.get("writable", [])),
        network=_flag(source, f"{where}.network", table.get("network", False)),
    )
    return check_allowances(f"{source}: [{where}]", given)


def _release(source: str, value: Any) -> ReleaseConfig:
    table = _table(source, "release", value)
    _known(source, "release", table, _RELEASE)
    framework = table.get("framework", "")
    if not isinstance(framework, str):
        raise UsageError(f"{source}: release.framework must be a string", hint=_HINT)
    return ReleaseConfig(
        paths=_strings(source, "release.paths", table.get("paths", [])),
        exclude=_strings(source, "release.exclude", table.get("exclude", [])),
        metrics=_flag(source, "release.metrics", table.get("metrics", True)),
        plots=_flag(source, "release.plots", table.get("plots", True)),
        framework=framework.strip(),
    )


def _table(source: str, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{source}: [{where}] must be a table", hint=_HINT)
    return value


def _known(source: str, where: str, table: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise UsageError(
            f"{source}: unknown key {key}", hint=f"known here: {', '.join(sorted(allowed))}"
        )


def _strings(source: str, where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"{source}: {where} must be a list of non-empty strings", hint=_HINT)
    return tuple(value)


def _flag(source: str, where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{source}: {where} must be true or false", hint=_HINT)
    return value
