"""Receipts: read what a stage reported it ran with, and check it against the declaration.

Fail closed: a declared setting that a receipt does not confirm fails the stage, and so does
a missing receipt when receipts are required. A stage writes a receipt when it calls
``bitwright.stagekit.begin()`` and another at interpreter exit; both must agree with the
declared settings, so a stage that turns a flag off midway is caught by the exit receipt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bitwright.errors import OperationalError, ReceiptMismatch
from bitwright.model.pins import DeterminismSettings
from bitwright.model.receipt import Receipt

__all__ = ["check_receipts", "read_receipts"]

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "phase": str,
    "seed": int,
    "torch_deterministic": bool,
    "cudnn_deterministic": bool,
    "cudnn_benchmark": bool,
    "allow_tf32_matmul": bool,
    "allow_tf32_cudnn": bool,
    "threads": int,
    "interop_threads": int,
    "devices": list,
    "env": dict,
    "hash_randomization": int,
}
_PHASES = ("start", "exit")
_HINT_FLAG = (
    "the stage changed it after bitwright.stagekit.begin(); declare the value under "
    "determinism: in params.yaml instead of setting it in stage code"
)
_HINT_ENV = (
    "it must be set before the interpreter starts: run the stage through "
    "`bitwright stage run` and do not override it"
)


def read_receipts(path: Path) -> tuple[Receipt, ...]:
    """Return the receipts in the JSON-lines file ``path``, in order (none if it is absent).

    Raises:
        OperationalError: a line is not a receipt (names the file and the line).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as exc:
        raise OperationalError(
            f"cannot read the receipt file {path}: {exc}",
            hint="the stage must only write receipts through bitwright.stagekit",
        ) from exc
    receipts = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            receipts.append(_parse(line, path, number))
    return tuple(receipts)


def _parse(line: str, path: Path, number: int) -> Receipt:
    try:
        data = json.loads(line)
        if not isinstance(data, dict) or set(data) != set(_FIELDS):
            raise ValueError(f"expected the fields {sorted(_FIELDS)}")
        for name, kind in _FIELDS.items():
            value = data[name]
            # bool is an int: a flag where a number belongs (and back) is malformed too.
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"{name} is not a {getattr(kind, '__name__', kind)}")
        env = {str(k): str(v) for k, v in data["env"].items()}
        devices = tuple(str(d) for d in data["devices"])
        return Receipt(**{**data, "env": env, "devices": devices})
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise OperationalError(
            f"line {number} of the receipt file {path} is not a receipt: {exc}",
            hint="the stage must only write receipts through bitwright.stagekit",
        ) from exc


def check_receipts(
    stage: str,
    declared: DeterminismSettings,
    receipts: Sequence[Receipt],
    *,
    required: bool,
) -> None:
    """Check that every receipt confirms every declared setting.

    Args:
        stage: the stage name, for the message.
        declared: the determinism settings the stage was declared with.
        receipts: the receipts the stage wrote (start and exit, per process that began).
        required: whether a stage must confirm its settings (then both receipts must exist).

    Raises:
        ReceiptMismatch: a receipt is missing or contradicts a declared setting; the message
            names the setting, the declared and the observed value, and the receipt.
    """
    if not receipts:
        if required:
            raise ReceiptMismatch(
                stage,
                "declared determinism settings were not confirmed: the stage wrote no receipt",
                hint="call bitwright.stagekit.begin() at the start of the stage",
            )
        return
    phases = {r.phase for r in receipts}
    unknown = sorted(phases - set(_PHASES))
    if unknown:
        raise ReceiptMismatch(
            stage,
            f"a receipt has the unknown phase {unknown[0]!r}",
            hint="the stage must only write receipts through bitwright.stagekit",
        )
    missing = [p for p in _PHASES if p not in phases]
    if required and missing:
        raise ReceiptMismatch(
            stage,
            f"declared determinism settings were not confirmed: the stage wrote no "
            f"{missing[0]} receipt",
            hint="call bitwright.stagekit.begin() at the start and let the interpreter exit "
            "normally (os._exit and signals skip the exit receipt)",
        )
    for receipt in receipts:
        for setting, want, seen, hint in _expectations(declared, receipt):
            if want != seen:
                raise ReceiptMismatch(
                    stage,
                    f"{setting}: declared {_show(want)}, observed {_show(seen)} "
                    f"in the {receipt.phase} receipt",
                    hint=hint,
                )


def _expectations(
    declared: DeterminismSettings, receipt: Receipt
) -> Iterator[tuple[str, Any, Any, str]]:
    """Yield (setting, declared value, observed value, hint) for every checked setting."""
    yield "seed", declared.seed, receipt.seed, "call bitwright.stagekit.begin() to seed"
    yield (
        "torch_deterministic",
        declared.torch_deterministic,
        receipt.torch_deterministic,
        _HINT_FLAG,
    )
    yield (
        "cudnn.deterministic",
        declared.torch_deterministic,
        receipt.cudnn_deterministic,
        _HINT_FLAG,
    )
    yield "cudnn.benchmark", declared.cudnn_benchmark, receipt.cudnn_benchmark, _HINT_FLAG
    yield "cuda.matmul.allow_tf32", declared.allow_tf32, receipt.allow_tf32_matmul, _HINT_FLAG
    yield "cudnn.allow_tf32", declared.allow_tf32, receipt.allow_tf32_cudnn, _HINT_FLAG
    yield "threads", declared.threads, receipt.threads, _HINT_FLAG
    for name, value in declared.environment().items():
        yield name, value, receipt.env.get(name), _HINT_ENV
    # PYTHONHASHSEED=0 turns hash randomization off; any other seed leaves it on, seeded.
    want = 0 if declared.pythonhashseed == 0 else 1
    yield "hash_randomization", want, receipt.hash_randomization, _HINT_ENV


def _show(value: object) -> str:
    return "unset" if value is None else repr(value)
