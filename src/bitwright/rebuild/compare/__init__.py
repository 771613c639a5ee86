"""Where a rebuilt file parts from the released one: tensor by tensor, field by field, byte by byte.

Pure functions over two files; they stream, so a checkpoint of any size compares in constant
memory. :func:`compare_files` is the entry point: it dispatches on content and returns a
:class:`FileComparison` with a :class:`Verdict` and a one-line detail for humans.
"""

from bitwright.rebuild.compare.bytes_diff import first_difference
from bitwright.rebuild.compare.files import compare_files
from bitwright.rebuild.compare.json_diff import compare_json, flatten_json
from bitwright.rebuild.compare.model import (
    FieldDiff,
    FileComparison,
    TensorDiff,
    Tolerance,
    Verdict,
)
from bitwright.rebuild.compare.safetensors_diff import compare_safetensors

__all__ = [
    "FieldDiff",
    "FileComparison",
    "TensorDiff",
    "Tolerance",
    "Verdict",
    "compare_files",
    "compare_json",
    "compare_safetensors",
    "first_difference",
    "flatten_json",
]
