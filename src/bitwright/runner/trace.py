"""Warn-only read tracing: which repository files a stage opened that it does not declare.

The stage side is ``_trace/sitecustomize.py`` (shipped as package data): put first on the
stage's ``PYTHONPATH``, it installs an audit hook in every Python process of the stage and
appends each repository path opened for reading to a trace file (the same hook writes each
process's Python receipt, see :mod:`.receipt`). This module installs the hook for a run and
turns its trace into repo-relative undeclared reads.

Reads of the interpreter and installed packages lie outside the repository and are not
recorded; a virtual environment or an editable install inside the repository is passed as
``allowed_extra``. The stage's own script is read by the interpreter and is recorded: it must
be a declared dependency. Bytecode caches count as their source file
(``pkg/__pycache__/mod.cpython-311.pyc`` is ``pkg/mod.py``).
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from bitwright.model.pipeline import StageSpec
from bitwright.runner.view import is_under

__all__ = [
    "CONFIRM_ENV",
    "PARAMS_ENV",
    "TRACE_ENV",
    "TRACE_ROOT_ENV",
    "TRACE_SKIP_ENV",
    "install_trace_hook",
    "traced_paths",
    "undeclared_reads",
]

TRACE_ENV = "BITWRIGHT_TRACE"
"""The trace file the hook appends to (as the stage sees it)."""

TRACE_ROOT_ENV = "BITWRIGHT_TRACE_ROOT"
"""The directory whose files are traced: the repository."""

TRACE_SKIP_ENV = "BITWRIGHT_TRACE_SKIP"
"""Directories inside it that are not traced (``:``-separated): the toolchain."""

CONFIRM_ENV = "BITWRIGHT_CONFIRM"
"""The variables (``:``-separated) each Python process reports as it saw them at start-up."""

PARAMS_ENV = "BITWRIGHT_PARAMS"
"""The stage's parameter files (absolute, ``:``-separated): the hook digests them as opened."""


def install_trace_hook(directory: Path) -> Path:
    """Copy the tracing ``sitecustomize.py`` into ``directory`` and return that directory.

    Put the directory first on the stage's ``PYTHONPATH`` and set :data:`TRACE_ENV` and
    :data:`TRACE_ROOT_ENV` for the hook to record.
    """
    directory.mkdir(parents=True, exist_ok=True)
    source = resources.files("bitwright.runner") / "_trace" / "sitecustomize.py"
    with resources.as_file(source) as path:
        shutil.copyfile(path, directory / "sitecustomize.py")
    return directory


def traced_paths(trace_file: Path) -> tuple[str, ...]:
    """Return the absolute paths in ``trace_file``, each once, in order (none if absent)."""
    try:
        raw = trace_file.read_bytes()
    except FileNotFoundError:
        return ()
    return tuple(dict.fromkeys(os.fsdecode(p) for p in raw.split(b"\0") if p))


def undeclared_reads(
    trace_file: Path, *, repo: Path, stage: StageSpec, allowed_extra: Sequence[str]
) -> tuple[str, ...]:
    """Return the repo-relative files the stage read that it does not declare, sorted.

    Args:
        trace_file: the trace the hook wrote (missing: nothing was traced).
        repo: the repository root, as the stage saw it.
        stage: the stage; its deps, param files and outs are declared.
        allowed_extra: further repo-relative paths a stage may read: the toolchain (a
            virtual environment or an editable install inside the repository).
    """
    declared = (*stage.deps, *stage.param_files, *stage.outs, *allowed_extra)
    declared = tuple(posixpath.normpath(d) for d in declared)
    root = repo.resolve()
    found: set[str] = set()
    for text in traced_paths(trace_file):
        try:
            rel = Path(text).relative_to(root).as_posix()
        except ValueError:
            continue
        if rel == ".":
            continue
        rel = _source_of_bytecode(rel)
        if not any(is_under(rel, d) for d in declared):
            found.add(rel)
    return tuple(sorted(found))


def _source_of_bytecode(rel: str) -> str:
    parent, name = posixpath.split(rel)
    if posixpath.basename(parent) != "__pycache__" or not name.endswith(".pyc"):
        return rel
    module = name.split(".", 1)[0]
    return posixpath.join(posixpath.dirname(parent), module + ".py")
