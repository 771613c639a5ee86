"""Helpers of the comparer tests: writing real safetensors files, valid or not."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

WriteST = Callable[..., Path]
"""The ``write_st`` fixture: ``write_st(name, arrays, metadata=None) -> Path``."""


def raw_safetensors(path: Path, header: object, data: bytes = b"") -> Path:
    """Write a safetensors file with a header of our choosing (valid or not)."""
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path
