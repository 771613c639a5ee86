"""Read ``dvc.yaml`` into a :class:`~bitwright.model.Pipeline` (``dvc.lock``: :mod:`.lockfile`).

bitwright reads both files itself (strict YAML, no DVC import): the stages' commands,
deps, outs and params are what it seals and attests, so it accepts only what it can
account for. Templating (``vars``, ``${...}``), ``foreach`` and ``matrix`` stages and
list commands are refused with a :class:`~bitwright.errors.UsageError` rather than
half-understood. Paths are made repository-relative (joined with the stage's ``wdir``).
"""

from __future__ import annotations

import posixpath
import re
import string
from pathlib import Path
from typing import Any

from bitwright.errors import UsageError
from bitwright.model.pipeline import ArtifactSpec, Pipeline, StageSpec
from bitwright.pipeline._yaml import parse_yaml, read_text
from bitwright.pipeline.lockfile import LOCK_FILE, LockedFile, LockedStage, load_lock, parse_lock

__all__ = [
    "DVC_FILE",
    "LOCK_FILE",
    "LockedFile",
    "LockedStage",
    "load_lock",
    "load_pipeline",
    "output_remote",
    "parse_lock",
    "parse_pipeline",
]

DVC_FILE = "dvc.yaml"

_TOP_KEYS = frozenset({"stages", "plots", "params", "metrics", "artifacts", "datasets"})
_STAGE_KEYS = frozenset(
    ["cmd", "wdir", "deps", "params", "outs", "metrics", "plots"]
    + ["frozen", "meta", "desc", "always_changed"]
)
_NOT_YET = {
    "foreach": "foreach stages are not yet supported",
    "matrix": "matrix stages are not yet supported",
    "do": "foreach stages are not yet supported",
    "vars": "templating (vars) is not yet supported",
}
# DVC's own rule (dvc.stage.INVALID_STAGENAME_CHARS); names also become link file names.
_BAD_NAME_CHARS = frozenset(string.punctuation) - {"_", "-"}
_FIX_HINT = "see https://dvc.org/doc/user-guide/project-structure/dvcyaml-files"


def load_pipeline(repo: Path) -> Pipeline:
    """Read the repository's ``dvc.yaml``.

    Args:
        repo: the repository root.

    Returns:
        The stages in file order, with repository-relative deps and outs.

    Raises:
        OperationalError: ``dvc.yaml`` is missing or unreadable.
        UsageError: ``dvc.yaml`` is malformed or uses a feature bitwright does not support.
    """
    return parse_pipeline(
        read_text(Path(repo) / DVC_FILE, DVC_FILE, "create it with `dvc stage add`")
    )


def output_remote(repo: Path, stage: str, out: str) -> str:
    """Return the DVC remote named by the ``remote:`` option of a stage's out, or "".

    ``out`` is the repository path of the out (as :class:`~bitwright.model.StageSpec` has it).

    Raises:
        OperationalError, UsageError: as :func:`load_pipeline`.
    """
    text = read_text(Path(repo) / DVC_FILE, DVC_FILE, "create it with `dvc stage add`")
    spec = parse_pipeline(text).stage(stage)
    body = parse_yaml(text, DVC_FILE, UsageError)["stages"][stage]
    for entry in body.get("outs") or []:
        if isinstance(entry, dict):
            ((path, options),) = entry.items()
            if _join(spec.wdir, str(path)) == out and isinstance(options, dict):
                return str(options.get("remote") or "")
    return ""


def parse_pipeline(text: str, *, file: str = DVC_FILE) -> Pipeline:
    """Parse the text of a ``dvc.yaml`` (see :func:`load_pipeline`)."""
    data = parse_yaml(text, file, UsageError)
    if data is None:
        return Pipeline(stages=())
    if not isinstance(data, dict):
        raise UsageError(f"{file}: expected a mapping at the top", hint=_FIX_HINT)
    for key in data:
        if key in _NOT_YET:
            raise UsageError(f"{file}: {_NOT_YET[key]}", hint="write the stages out in full")
        if key not in _TOP_KEYS:
            raise UsageError(f"{file}: unknown top-level key {key!r}", hint=_FIX_HINT)
    stages = data.get("stages") or {}
    if not isinstance(stages, dict):
        raise UsageError(f"{file}: 'stages' must be a mapping of stage names", hint=_FIX_HINT)
    specs = tuple(_stage(file, name, body) for name, body in stages.items())
    pipeline = Pipeline(
        stages=specs,
        artifacts=_artifacts(file, data.get("artifacts")),
        metrics=_top_metrics(file, data.get("metrics")),
    )
    _check_outs_disjoint(file, pipeline)
    try:
        pipeline.topological()
    except ValueError as exc:
        raise UsageError(
            f"{file}: {exc}", hint="a stage may not depend on its own outputs"
        ) from exc
    return pipeline


def _stage(file: str, name: Any, body: Any) -> StageSpec:
    where = f"{file}: stage {name!r}"
    if not isinstance(name, str) or not name or _BAD_NAME_CHARS & set(name):
        raise UsageError(
            f"{where}: invalid stage name", hint="use letters, digits, '_' and '-' only"
        )
    if not isinstance(body, dict):
        raise UsageError(f"{where}: expected a mapping with at least 'cmd'", hint=_FIX_HINT)
    for key in body:
        if key in _NOT_YET:
            raise UsageError(f"{where}: {_NOT_YET[key]}", hint="write the stage out in full")
        if key not in _STAGE_KEYS:
            raise UsageError(f"{where}: unknown key {key!r}", hint=_FIX_HINT)
    cmd = body.get("cmd")
    if isinstance(cmd, list):
        raise UsageError(
            f"{where}: a list 'cmd' is not supported",
            hint="write one command: `bitwright stage run NAME -- CMD...`",
        )
    if not isinstance(cmd, str) or not cmd.strip():
        raise UsageError(f"{where}: 'cmd' must be a non-empty string", hint=_FIX_HINT)
    _refuse_template(where, "cmd", cmd)
    wdir = body.get("wdir") or "."
    if not isinstance(wdir, str):
        raise UsageError(f"{where}: 'wdir' must be a string", hint=_FIX_HINT)
    wdir = _repo_path(where, "wdir", wdir, ".")
    deps = tuple(_repo_path(where, "deps", p, wdir) for p in _entries(where, "deps", body, str))
    outs: list[str] = []
    kinds: dict[str, list[str]] = {}
    for key in ("outs", "metrics", "plots"):
        kinds[key] = [
            _repo_path(where, key, _out_path(where, key, e), wdir)
            for e in _entries(where, key, body, (str, dict))
        ]
        outs.extend(kinds[key])
    for dep in deps:
        for out in outs:
            if _overlap(dep, out):
                raise UsageError(
                    f"{where}: dep {dep!r} overlaps its own output {out!r}",
                    hint="a stage may not read what it writes",
                )
    return StageSpec(
        name=name,
        cmd=cmd,
        deps=_unique(where, "deps", deps),
        outs=_unique(where, "outs", tuple(outs)),
        params=_params(where, body, wdir),
        wdir=wdir,
        metrics=tuple(kinds["metrics"]),
        plots=tuple(kinds["plots"]),
    )


# DVC's rule for artifact names (dvc.annotations.ARTIFACT_NAME_REGEX): lowercase words.
_ARTIFACT_NAME = re.compile(r"[a-z0-9]([a-z0-9-/]*[a-z0-9])?")
_ARTIFACT_KEYS = frozenset({"path", "type", "desc", "labels", "meta"})


def _artifacts(file: str, section: Any) -> tuple[ArtifactSpec, ...]:
    """The ``artifacts:`` section: name -> {path, type, desc, labels, meta}."""
    if section is None:
        return ()
    if not isinstance(section, dict):
        raise UsageError(f"{file}: 'artifacts' must be a mapping of names", hint=_FIX_HINT)
    found: list[ArtifactSpec] = []
    for name, body in section.items():
        where = f"{file}: artifact {name!r}"
        if not isinstance(name, str) or not _ARTIFACT_NAME.fullmatch(name):
            raise UsageError(
                f"{where}: invalid artifact name", hint="use lowercase letters, digits and '-'"
            )
        if not isinstance(body, dict) or "path" not in body:
            raise UsageError(f"{where}: expected a mapping with a 'path'", hint=_FIX_HINT)
        unknown = sorted(set(map(str, body)) - _ARTIFACT_KEYS)
        if unknown:
            raise UsageError(f"{where}: unknown key {unknown[0]!r}", hint=_FIX_HINT)
        texts = {k: body.get(k) or "" for k in ("type", "desc")}
        labels = body.get("labels") or []
        if not all(isinstance(v, str) for v in texts.values()) or not (
            isinstance(labels, list) and all(isinstance(v, str) for v in labels)
        ):
            raise UsageError(
                f"{where}: type and desc are strings, labels a list of strings", hint=_FIX_HINT
            )
        path = _repo_path(where, "path", body["path"], ".")
        found.append(ArtifactSpec(name, path, texts["type"], texts["desc"], tuple(labels)))
    return tuple(found)


def _top_metrics(file: str, section: Any) -> tuple[str, ...]:
    """The top-level ``metrics:`` list of paths."""
    if section is None:
        return ()
    if not isinstance(section, list) or not all(isinstance(p, str) for p in section):
        raise UsageError(f"{file}: top-level 'metrics' must be a list of paths", hint=_FIX_HINT)
    return tuple(_repo_path(f"{file}: metrics", "metrics", p, ".") for p in section)


def _entries(where: str, key: str, body: dict[str, Any], kinds: Any) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, kinds) for v in value):
        what = "paths" if kinds is str else "paths or {path: options} mappings"
        raise UsageError(f"{where}: {key!r} must be a list of {what}", hint=_FIX_HINT)
    return value


def _out_path(where: str, key: str, entry: str | dict[str, Any]) -> Any:
    if isinstance(entry, str):
        return entry
    if len(entry) != 1:
        raise UsageError(
            f"{where}: each {key!r} mapping names exactly one path, got {sorted(map(str, entry))}",
            hint="write `- PATH: {cache: false}`",
        )
    ((path, options),) = entry.items()
    if options is not None and not isinstance(options, dict | list):
        raise UsageError(f"{where}: options of {key} {path!r} must be a mapping", hint=_FIX_HINT)
    return path


def _params(where: str, body: dict[str, Any], wdir: str) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    default_file = _join(wdir, "params.yaml")
    for entry in _entries(where, "params", body, (str, dict)):
        if isinstance(entry, str):
            found.append((default_file, _param_key(where, entry)))
            continue
        for file, keys in entry.items():
            path = _repo_path(where, "params", file, wdir)
            if not isinstance(keys, list) or not keys:
                raise UsageError(
                    f"{where}: params of {file!r} must list the keys the stage reads",
                    hint=f"write `- {file}: [key, ...]`; bitwright tracks declared keys only",
                )
            found.extend((path, _param_key(where, k)) for k in keys)
    return _unique(where, "params", tuple(found))


def _param_key(where: str, key: Any) -> str:
    if not isinstance(key, str) or not key or key.startswith(".") or key.endswith("."):
        raise UsageError(f"{where}: invalid params key {key!r}", hint="use `group.key` names")
    _refuse_template(where, "params", key)
    return key


def _repo_path(where: str, key: str, path: Any, wdir: str) -> str:
    if not isinstance(path, str) or not path.strip():
        raise UsageError(f"{where}: {key!r} holds an empty or non-string path", hint=_FIX_HINT)
    _refuse_template(where, key, path)
    if "://" in path:
        raise UsageError(
            f"{where}: {key} {path!r} is not in the repository (external paths are not supported)",
            hint="bring it in with `dvc import-url` and depend on the local copy",
        )
    if posixpath.isabs(path):
        raise UsageError(
            f"{where}: {key} {path!r} is absolute", hint="use a path relative to the repository"
        )
    joined = _join(wdir, path)
    if joined == ".." or joined.startswith("../"):
        raise UsageError(
            f"{where}: {key} {path!r} points outside the repository", hint="keep it inside"
        )
    return joined


def _join(wdir: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(wdir, path))


def _refuse_template(where: str, key: str, value: str) -> None:
    if "${" in value:
        raise UsageError(
            f"{where}: {key} {value!r} uses templating, which is not yet supported",
            hint="write the value out in full",
        )


def _unique(where: str, key: str, items: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: set[Any] = set()
    for item in items:
        if item in seen:
            raise UsageError(f"{where}: {key} lists {item!r} twice", hint="list it once")
        seen.add(item)
    return items


def _overlap(a: str, b: str) -> bool:
    return a == b or a == "." or b == "." or a.startswith(b + "/") or b.startswith(a + "/")


def _check_outs_disjoint(file: str, pipeline: Pipeline) -> None:
    owners = [(out, spec.name) for spec in pipeline.stages for out in spec.outs]
    for i, (out, stage) in enumerate(owners):
        for other, other_stage in owners[i + 1 :]:
            if _overlap(out, other):
                raise UsageError(
                    f"{file}: outputs {out!r} (stage {stage!r}) and {other!r} "
                    f"(stage {other_stage!r}) overlap",
                    hint="let exactly one stage produce each path",
                )
