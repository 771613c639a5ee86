"""Adopting bitwright in an existing git + DVC project: its config and ``bitwright init``.

* :mod:`.config` -- ``.bitwright/config.toml``: the sandbox allowances of every stage and what
  a release holds; committed with the project.
* :mod:`.init` -- ``bitwright init``: wraps each stage's ``cmd`` in ``dvc.yaml`` with the stage
  runner (and ``--undo`` unwraps it byte for byte), writes the config and ``.gitignore``
  entries, makes an owner key if there is none.

The init names are imported on first use (they need the key machinery); the config's are light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bitwright._lazy import lazy_names
from bitwright.project.config import (
    CONFIG_PATH,
    ProjectConfig,
    ReleaseConfig,
    load_project_config,
    parse_project_config,
    require_committed_config,
)

if TYPE_CHECKING:
    from bitwright.project.init import InitResult, init_project, undo_init

__all__ = [
    "CONFIG_PATH",
    "InitResult",
    "ProjectConfig",
    "ReleaseConfig",
    "init_project",
    "load_project_config",
    "parse_project_config",
    "require_committed_config",
    "undo_init",
]

__getattr__, __dir__ = lazy_names(
    __name__, {"InitResult": "init", "init_project": "init", "undo_init": "init"}
)
