"""Independent rebuild of a release and its comparison, stage by stage and tensor by tensor."""

from bitwright.rebuild.compare import (
    FieldDiff,
    FileComparison,
    TensorDiff,
    Tolerance,
    Verdict,
    compare_files,
    compare_json,
    compare_safetensors,
    first_difference,
    flatten_json,
)
from bitwright.rebuild.flow import rebuild_release
from bitwright.rebuild.report import RebuildReport, report_markdown

__all__ = [
    "FieldDiff",
    "FileComparison",
    "RebuildReport",
    "TensorDiff",
    "Tolerance",
    "Verdict",
    "compare_files",
    "compare_json",
    "compare_safetensors",
    "first_difference",
    "flatten_json",
    "rebuild_release",
    "report_markdown",
]
