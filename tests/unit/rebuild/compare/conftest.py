"""Fixtures of the comparer tests: real safetensors files written by the safetensors library."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from compare_kit import WriteST
from safetensors.numpy import save_file


@pytest.fixture
def write_st(tmp_path: Path) -> WriteST:
    """Write numpy arrays as a safetensors file under tmp_path and return its path."""

    def write(
        name: str,
        arrays: dict[str, npt.NDArray[np.generic]],
        metadata: dict[str, str] | None = None,
    ) -> Path:
        path = tmp_path / name
        save_file(arrays, str(path), metadata=metadata)
        return path

    return write
