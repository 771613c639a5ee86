"""The pipeline as files: ``dvc.yaml`` and ``dvc.lock`` read, ``params.yaml`` composed by Hydra.

- :mod:`~bitwright.pipeline.dvcfile`: ``dvc.yaml`` -> :class:`~bitwright.model.Pipeline`.
- :mod:`~bitwright.pipeline.lockfile`: ``dvc.lock`` -> :class:`LockedStage` per stage.
- :mod:`~bitwright.pipeline.params`: ``params.yaml`` composed from ``configs/`` byte-stably,
  checked for staleness, read back.
"""

from bitwright.pipeline.dvcfile import DVC_FILE, load_pipeline, parse_pipeline
from bitwright.pipeline.lockfile import LOCK_FILE, LockedFile, LockedStage, load_lock, parse_lock
from bitwright.pipeline.params import (
    CONFIG_DIR,
    PARAMS_FILE,
    check_params_file,
    compose_params,
    load_params,
    param_value,
    recorded_composition,
    write_params_file,
)

__all__ = [
    "CONFIG_DIR",
    "DVC_FILE",
    "LOCK_FILE",
    "PARAMS_FILE",
    "LockedFile",
    "LockedStage",
    "check_params_file",
    "compose_params",
    "load_lock",
    "load_params",
    "load_pipeline",
    "param_value",
    "parse_lock",
    "parse_pipeline",
    "recorded_composition",
    "write_params_file",
]
