r"""Wrapping a stage's ``cmd`` in ``dvc.yaml`` with the stage runner, as a reversible text edit.

``bitwright init`` edits only the characters of each ``cmd`` scalar, so comments, order and
formatting of ``dvc.yaml`` stay as they were, and ``--undo`` restores the file byte for byte.
A command DVC's shell would run as a plain program call gets a prefix::

    python src/train.py          ->  bitwright stage run train -- python src/train.py

and one that needs the shell (``&&``, pipes, redirections, variables, globs) runs through
``sh -c``, which the sealed runner then executes (a single quote inside becomes ``'\''``)::

    mkdir -p out && sed '/^#/d' a > out/b
        ->  bitwright stage run prep -- sh -c 'mkdir -p out && sed '\''/^#/d'\'' a > out/b'

Both edits are undone exactly; a wrap whose undo would not give the original back (a
multi-line command, a command that already reads like a wrapped one) is refused with the
reason, and nothing is written.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from bitwright.errors import UsageError

__all__ = ["CmdSpan", "cmd_spans", "needs_shell", "unwrap_text", "wrap_text", "wrapper_prefix"]

_SHELL_OPEN = "sh -c '"
_SHELL_CLOSE = "'"
_SHELL_CHARS = frozenset("|&;<>()$`*?[]{}~#")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_HINT = "write the cmd on one line, or move the commands into a script the stage runs"


def wrapper_prefix(stage: str) -> str:
    """The text put in front of a stage's command."""
    return f"bitwright stage run {stage} -- "


@dataclass(frozen=True)
class CmdSpan:
    """Where a stage's ``cmd`` scalar lies in the text of ``dvc.yaml``.

    Attributes:
        stage: the stage name.
        start: the index of its first character (a quote or block indicator included).
        end: the index after its last character.
        style: PyYAML's scalar style: None (plain), ``'``, ``"``, ``|`` or ``>``.
        value: the command as YAML reads it.
    """

    stage: str
    start: int
    end: int
    style: str | None
    value: str


def cmd_spans(text: str) -> Iterator[CmdSpan]:
    """Yield the ``cmd`` scalar of every stage of a ``dvc.yaml`` text, in file order.

    Raises:
        UsageError: a ``cmd`` is not a plain scalar (an alias, a list).
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return
    for key, value in root.value:
        if key.value != "stages" or not isinstance(value, yaml.MappingNode):
            continue
        for stage_key, body in value.value:
            if not isinstance(body, yaml.MappingNode):
                continue
            for field, node in body.value:
                if field.value != "cmd":
                    continue
                if not isinstance(node, yaml.ScalarNode):
                    raise UsageError(
                        f"dvc.yaml: stage {stage_key.value!r}: its cmd is not one string",
                        hint=_HINT,
                    )
                yield CmdSpan(
                    stage=str(stage_key.value),
                    start=node.start_mark.index,
                    end=node.end_mark.index,
                    style=node.style,
                    value=str(node.value),
                )


def needs_shell(cmd: str) -> bool:
    """Whether DVC's shell would do more with ``cmd`` than split it into words.

    Conservative: any unquoted operator, redirection, substitution, glob or comment
    character, a variable assignment in front, or a line break means yes (``sh -c`` then
    runs it exactly as DVC's shell would have).
    """
    if "\n" in cmd.strip():
        return True
    try:
        words = shlex.split(cmd)
    except ValueError:
        return True
    if words and _ASSIGNMENT.match(words[0]):
        return True
    quote = ""
    escaped = False
    for char in cmd:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
            elif quote == '"' and char in "$`":
                return True
        elif char in "'\"":
            quote = char
        elif char in _SHELL_CHARS:
            return True
    return False


def wrap_text(span: CmdSpan, text: str) -> str:
    """Return the new text of ``span`` (``text[span.start:span.end]``) with the wrapper.

    Raises:
        UsageError: the command cannot be wrapped so that :func:`unwrap_text` gives it back.
    """
    if "\n" in span.value.strip():
        raise UsageError(
            f"dvc.yaml: stage {span.stage!r}: a multi-line cmd cannot be wrapped", hint=_HINT
        )
    shell = _through_shell(span.value)
    head = wrapper_prefix(span.stage) + (_SHELL_OPEN if shell else "")
    tail = _SHELL_CLOSE if shell else ""
    original = text[span.start : span.end]
    wrapped = _insert(span.style, original, head, tail, quote=shell)
    if _remove(span.stage, span.style, wrapped) != original:
        raise UsageError(
            f"dvc.yaml: stage {span.stage!r}: its cmd would not unwrap to itself",
            hint=f"wrap it by hand: `{wrapper_prefix(span.stage)}...`",
        )
    return wrapped


def unwrap_text(span: CmdSpan, text: str) -> str | None:
    """Return the text of ``span`` without the wrapper; None when it is not wrapped.

    Raises:
        UsageError: the cmd is wrapped for another stage or was edited so that it cannot be
            unwrapped exactly.
    """
    if not span.value.startswith("bitwright stage run "):
        return None
    if not span.value.startswith(wrapper_prefix(span.stage)):
        raise UsageError(
            f"dvc.yaml: stage {span.stage!r}: its cmd runs another stage ({span.value!r})",
            hint=f"it must start with `{wrapper_prefix(span.stage)}`; fix it by hand",
        )
    unwrapped = _remove(span.stage, span.style, text[span.start : span.end])
    if unwrapped is None:
        raise UsageError(
            f"dvc.yaml: stage {span.stage!r}: its cmd was edited since it was wrapped",
            hint="unwrap it by hand: remove the `bitwright stage run` prefix",
        )
    return unwrapped


def _content_bounds(style: str | None, original: str) -> tuple[int, int]:
    """Where the command's characters start and end inside the scalar's text."""
    if style in ("'", '"'):
        return 1, len(original) - 1
    if style in ("|", ">"):
        lines = original.split("\n")
        first = next(i for i, line in enumerate(lines) if i > 0 and line.strip())
        start = sum(len(line) + 1 for line in lines[:first])
        start += len(lines[first]) - len(lines[first].lstrip(" "))
        stripped = original.rstrip()
        return start, len(stripped)
    return 0, len(original)


def _escape(style: str | None, inserted: str) -> str:
    """``inserted`` as the text of a scalar of ``style`` writes it."""
    if style == "'":
        return inserted.replace("'", "''")
    if style == '"':
        return inserted.replace("\\", "\\\\")
    return inserted


def _quotes(style: str | None) -> tuple[str, str]:
    """A single quote of the command and its form inside ``sh -c '...'``, as scalar text."""
    return _escape(style, "'"), _escape(style, "'\\''")


def _insert(style: str | None, original: str, head: str, tail: str, *, quote: bool) -> str:
    start, end = _content_bounds(style, original)
    content = original[start:end]
    if quote:
        single, quoted = _quotes(style)
        content = content.replace(single, quoted)
    return original[:start] + _escape(style, head) + content + _escape(style, tail) + original[end:]


def _remove(stage: str, style: str | None, wrapped: str) -> str | None:
    start, end = _content_bounds(style, wrapped)
    content = wrapped[start:end]
    prefix = _escape(style, wrapper_prefix(stage))
    if not content.startswith(prefix):
        return None
    rest = content[len(prefix) :]
    shell_open, shell_close = _escape(style, _SHELL_OPEN), _escape(style, _SHELL_CLOSE)
    if rest.startswith(shell_open) and rest.endswith(shell_close):
        single, quoted = _quotes(style)
        inner = rest[len(shell_open) : len(rest) - len(shell_close)]
        command = inner.replace(quoted, single)
        if command.replace(single, quoted) == inner and _through_shell(_value(style, command)):
            rest = command
    return wrapped[:start] + rest + wrapped[end:]


def _through_shell(cmd: str) -> bool:
    """Whether init runs ``cmd`` through ``sh -c``.

    It does when ``cmd`` needs the shell, or is itself an ``sh -c '...'`` command (wrapped
    plainly, it would read like one that init wrapped).
    """
    return needs_shell(cmd) or (cmd.startswith(_SHELL_OPEN) and cmd.endswith(_SHELL_CLOSE))


def _value(style: str | None, text: str) -> str:
    """Roughly the value of a scalar's text (enough to tell whether it needs the shell)."""
    return text.replace("''", "'") if style == "'" else text
