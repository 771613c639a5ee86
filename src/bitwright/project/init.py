"""``bitwright init``: make an existing git + DVC project build through bitwright.

What it does, each step only when needed (running it twice changes nothing the second time):

1. wraps every stage's ``cmd`` in ``dvc.yaml`` with ``bitwright stage run NAME --`` (a text
   edit of the commands alone, see :mod:`._wrap`), so every stage runs sealed, under
   ``dvc repro`` as under ``bitwright build``;
2. writes ``.bitwright/config.toml`` (:mod:`.config`), allowing ``.dvc/tmp`` for the stages
   whose Python code imports dvclive (which opens the DVC repository and writes there);
3. adds to ``.gitignore`` that ``.bitwright/`` stays local (keys, attestations, caches) except
   the config, which is committed;
4. makes the owner's signing key, ``.bitwright/keys/owner.key``, if there is none.

:func:`undo_init` unwraps ``dvc.yaml`` byte for byte and takes the ``.gitignore`` lines back;
it leaves the config and the key (a key is never deleted).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bitwright.attest.keys import generate_keypair, keyid8, load_signer
from bitwright.errors import OperationalError, UsageError
from bitwright.fileio import read_regular, write_text_atomic
from bitwright.model import Pipeline, StageSpec
from bitwright.pipeline import DVC_FILE, parse_pipeline
from bitwright.project._wrap import CmdSpan, cmd_spans, unwrap_text, wrap_text
from bitwright.project.config import CONFIG_PATH

__all__ = ["InitResult", "init_project", "undo_init"]

KEY_DIR = ".bitwright/keys"
_GITIGNORE = ".gitignore"
_BLOCK_START = (
    "# bitwright: keys, attestations and caches stay local; the project config is committed"
)
_BLOCK = f"{_BLOCK_START}\n/.bitwright/*\n!/{CONFIG_PATH}\n"
_DISABLED = "#bitwright init disabled: "
_DIRECTORY_IGNORES = frozenset({".bitwright", ".bitwright/", "/.bitwright", "/.bitwright/"})
_DVCLIVE_IMPORT = re.compile(rb"^\s*(?:import|from)\s+dvclive\b", re.MULTILINE)
_MAX_SCANNED = 1 << 20
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class InitResult:
    """What ``init`` (or ``init --undo``) changed.

    Attributes:
        changes: one line per change, for the user.
        wrapped: stages whose cmd was wrapped (or unwrapped by ``--undo``) now.
        already: stages that were wrapped before (or not wrapped, for ``--undo``).
        next_steps: the commands to run next.
    """

    changes: tuple[str, ...]
    wrapped: tuple[str, ...]
    already: tuple[str, ...]
    next_steps: tuple[str, ...]


def init_project(repo: Path, *, make_key: bool = True) -> InitResult:
    """Set up bitwright in the git + DVC project at ``repo`` (see the module docstring).

    Raises:
        OperationalError: ``repo`` is not a git + DVC project, or a file cannot be read or
            written.
        UsageError: ``dvc.yaml`` uses what bitwright cannot seal, or a cmd cannot be wrapped
            (then nothing at all is written).
    """
    repo = repo.resolve()
    text, pipeline = _read_dvc_yaml(repo)
    key = repo / KEY_DIR / "owner.key"
    if make_key and (key.exists() or key.is_symlink()):
        load_signer(key)  # an unusable key is said now, before anything is written
    spans = list(cmd_spans(text))
    edits: list[tuple[CmdSpan, str]] = []
    already: list[str] = []
    for span in spans:
        if unwrap_text(span, text) is not None:
            already.append(span.stage)
        else:
            edits.append((span, wrap_text(span, text)))
    changes: list[str] = []
    if edits:
        write_text_atomic(repo / DVC_FILE, _apply(text, edits))
        changes.append(f"{DVC_FILE}: wrapped the cmd of {_names([s.stage for s, _ in edits])}")
    config = repo / CONFIG_PATH
    if not config.exists() and not config.is_symlink():
        write_text_atomic(config, config_template(pipeline, _dvclive_stages(repo, pipeline)))
        changes.append(f"{CONFIG_PATH}: written (sandbox allowances and what a release holds)")
    if _ensure_gitignore(repo):
        changes.append(f"{_GITIGNORE}: .bitwright/ stays local except {CONFIG_PATH}")
    if make_key:
        changes.extend(_ensure_key(repo))
    return InitResult(
        changes=tuple(changes),
        wrapped=tuple(s.stage for s, _ in edits),
        already=tuple(already),
        next_steps=(
            f"git add {DVC_FILE} {_GITIGNORE} {CONFIG_PATH}",
            'git commit -m "Build with bitwright"',
            "bitwright build",
        ),
    )


def undo_init(repo: Path) -> InitResult:
    """Unwrap every stage's cmd in ``dvc.yaml`` and take back init's ``.gitignore`` lines.

    Raises:
        OperationalError: ``repo`` is not a git + DVC project, or a file cannot be written.
        UsageError: a wrapped cmd was edited so that it cannot be unwrapped exactly (then
            nothing is written).
    """
    repo = repo.resolve()
    text, _ = _read_dvc_yaml(repo)
    edits: list[tuple[CmdSpan, str]] = []
    plain: list[str] = []
    for span in cmd_spans(text):
        unwrapped = unwrap_text(span, text)
        if unwrapped is None:
            plain.append(span.stage)
        else:
            edits.append((span, unwrapped))
    changes: list[str] = []
    if edits:
        write_text_atomic(repo / DVC_FILE, _apply(text, edits))
        changes.append(f"{DVC_FILE}: unwrapped the cmd of {_names([s.stage for s, _ in edits])}")
    if _restore_gitignore(repo):
        changes.append(f"{_GITIGNORE}: removed the lines bitwright init added")
    if (repo / ".bitwright").exists():
        changes.append(f"kept .bitwright/ (the key and {CONFIG_PATH}); remove it yourself")
    return InitResult(
        changes=tuple(changes),
        wrapped=tuple(s.stage for s, _ in edits),
        already=tuple(plain),
        next_steps=(f"git diff {DVC_FILE} {_GITIGNORE}",),
    )


def _read_dvc_yaml(repo: Path) -> tuple[str, Pipeline]:
    if not (repo / ".git").exists():
        raise OperationalError(
            f"{repo} is not the root of a git work tree",
            hint="run bitwright init at the top of a git clone (git init; git commit)",
        )
    if not (repo / ".dvc").is_dir():
        raise OperationalError(
            f"{repo} is not a DVC project (no .dvc/)", hint="run `dvc init` first"
        )
    path = repo / DVC_FILE
    if not path.exists():
        raise OperationalError(
            f"{path} is missing: there is no pipeline to wrap",
            hint="add stages with `dvc stage add`",
        )
    data = read_regular(path, inside=repo)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{DVC_FILE} is not UTF-8 text", hint="save it as UTF-8") from None
    return text, parse_pipeline(text)


def _apply(text: str, edits: Sequence[tuple[CmdSpan, str]]) -> str:
    for span, replacement in sorted(edits, key=lambda e: e[0].start, reverse=True):
        text = text[: span.start] + replacement + text[span.end :]
    return text


def _names(stages: Sequence[str]) -> str:
    return ", ".join(stages)


def _dvclive_stages(repo: Path, pipeline: Pipeline) -> dict[str, str]:
    """Stage -> the Python file of it that imports dvclive (a dep or a file its cmd names)."""
    found: dict[str, str] = {}
    for spec in pipeline.stages:
        for candidate in _python_files(spec):
            path = repo / candidate
            try:
                data = read_regular(path, limit=_MAX_SCANNED, inside=repo)
            except OperationalError:
                continue
            if _DVCLIVE_IMPORT.search(data):
                found[spec.name] = candidate
                break
    return found


def _python_files(spec: StageSpec) -> list[str]:
    words = re.findall(r"[\w./-]+\.py\b", spec.cmd)
    return list(dict.fromkeys([*(d for d in spec.deps if d.endswith(".py")), *words]))


def config_template(pipeline: Pipeline, dvclive: dict[str, str]) -> str:
    """The config ``init`` writes: every setting at its default, explained.

    The stages in ``dvclive`` (stage -> the file that imports dvclive) get ``.dvc/tmp``.
    """
    lines = [
        "# bitwright project configuration, committed with the project.",
        "# Every allowance loosens a stage's seal; each is recorded in the stage's link and in",
        "# the provenance of the build.",
        "schema = 1",
        "",
        "[sandbox]  # every stage",
        "env = []          # the caller's variables a stage may read (values recorded as digests)",
        "writable = []     # repository directories a stage may write (fresh; writes discarded)",
        "network = false   # true: stages keep the network, and the build is not hermetic",
        "",
    ]
    for stage, source in dvclive.items():
        key = stage if _BARE_KEY.fullmatch(stage) else json.dumps(stage)
        lines += [
            f"[stages.{key}.sandbox]",
            f"# {source} imports dvclive, which opens the DVC repository and writes under .dvc/tmp",
            'writable = [".dvc/tmp"]',
            "",
        ]
    artifacts = ", ".join(a.name for a in pipeline.artifacts) or "none declared"
    lines += [
        "[release]",
        f"# Released: the artifacts: of dvc.yaml ({artifacts}), every metrics and plots",
        "# output, and these paths; without artifacts or paths, the final stages' outputs.",
        "paths = []",
        "exclude = []",
        "metrics = true",
        "plots = true",
        'framework = ""    # the model framework named in the AI BOM; default: read from the model',
    ]
    return "\n".join(lines) + "\n"


def _read_gitignore(repo: Path) -> str:
    path = repo / _GITIGNORE
    if not path.exists() and not path.is_symlink():
        return ""
    try:
        return read_regular(path, inside=repo).decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{_GITIGNORE} is not UTF-8 text", hint="save it as UTF-8") from None


def _ensure_gitignore(repo: Path) -> bool:
    """Add the block that keeps .bitwright/ local but its config; whether it changed."""
    text = _read_gitignore(repo)
    if _BLOCK in text:
        return False
    lines = text.splitlines(keepends=True)
    lines = [_DISABLED + line if line.strip() in _DIRECTORY_IGNORES else line for line in lines]
    body = "".join(lines)
    if body and not body.endswith("\n"):
        body += "\n"
    write_text_atomic(repo / _GITIGNORE, body + _BLOCK)
    return True


def _restore_gitignore(repo: Path) -> bool:
    text = _read_gitignore(repo)
    if _BLOCK not in text and _DISABLED not in text:
        return False
    restored = text.replace(_BLOCK, "", 1)
    restored = "".join(line.removeprefix(_DISABLED) for line in restored.splitlines(keepends=True))
    write_text_atomic(repo / _GITIGNORE, restored)
    return True


def _ensure_key(repo: Path) -> list[str]:
    key = repo / KEY_DIR / "owner.key"
    if key.exists() or key.is_symlink():
        return []
    pair = generate_keypair(repo / KEY_DIR)
    return [
        f"{pair.private_path.relative_to(repo)}: new owner key, keyid {keyid8(pair.keyid)} "
        f"(private, mode 0600, never committed; {pair.public_path.name} is its public half)"
    ]
