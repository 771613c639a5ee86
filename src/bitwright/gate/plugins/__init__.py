"""Signals from plugins (entry points ``bitwright.gate.signals``), loaded only when required.

See :mod:`.interface` for how to write one; :mod:`.scanners` is the one bitwright ships.
"""

from __future__ import annotations

import importlib.metadata

from bitwright.gate.plugins.interface import (
    ENTRY_POINT_GROUP,
    Signal,
    SignalContext,
    SignalResult,
    SignalVerdict,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Signal",
    "SignalContext",
    "SignalResult",
    "SignalVerdict",
    "evaluate_signal",
]


def evaluate_signal(name: str, context: SignalContext) -> SignalResult:
    """Load the signal ``name`` from its entry point and evaluate it.

    A signal no installed package provides, one that is not a :class:`Signal`, or one
    that raises, gives an ``error`` result naming why (a policy that requires it denies).
    """
    points = [p for p in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if p.name == name]
    if not points:
        return SignalResult(
            SignalVerdict.ERROR, f"no installed package provides the signal {name!r}"
        )
    try:
        loaded = points[0].load()
        if not (isinstance(loaded, type) and issubclass(loaded, Signal)):
            return SignalResult(SignalVerdict.ERROR, f"{points[0].value} is not a gate Signal")
        result = loaded().evaluate(context)
    except Exception as exc:  # noqa: BLE001  (a plugin's failure is a failed signal)
        text = " ".join(str(exc).split())[:200]
        return SignalResult(SignalVerdict.ERROR, f"the signal raised {type(exc).__name__}: {text}")
    if not isinstance(result, SignalResult):
        return SignalResult(SignalVerdict.ERROR, f"{name} returned no SignalResult")
    return result
