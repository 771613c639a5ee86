"""Parameters known to make a stage's results depend on scheduling, named when they matter.

A stage whose same materials gave other products in a rebuild needs an explanation, and the
usual one in scikit-learn projects is parallelism: with ``n_jobs`` other than 1, joblib runs
the work in threads or processes and, for example, a random forest sums its trees'
probabilities in the order they finish, so the last bits of the sums change from run to run.
:func:`parallel_knobs` finds such parameters among the ones a stage declares (its ``params:``
in ``dvc.yaml``), so the rebuild can name the knob next to the divergence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KNOBS", "Knob", "parallel_knobs"]

_MAX_VISITED = 100_000


def _not_one(value: Any) -> bool:
    """Parallel unless 1 (or None, scikit-learn's "one job unless a context says more")."""
    return isinstance(value, int) and not isinstance(value, bool) and value != 1


KNOBS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_jobs": (
        _not_one,
        "scikit-learn/joblib run the work in parallel and combine partial results in the "
        "order they finish",
    ),
    "nthread": (_not_one, "XGBoost sums gradients over threads in varying order"),
    "n_threads": (_not_one, "the work runs in threads whose partial sums vary in order"),
    "num_threads": (_not_one, "the work runs in threads whose partial sums vary in order"),
}
"""Parameter name -> (whether a value makes results depend on scheduling, why)."""


@dataclass(frozen=True)
class Knob:
    """A declared parameter that can make a stage nondeterministic.

    Attributes:
        file: the parameter file.
        key: its dotted key (``train.n_jobs``).
        value: its value.
        why: what it does to the results.
    """

    file: str
    key: str
    value: Any
    why: str

    def describe(self) -> str:
        """One line for the report."""
        return (
            f"{self.file} {self.key}={self.value!r}: {self.why}, so results can differ from "
            "run to run; set it to 1 for bit-for-bit rebuilds"
        )


def parallel_knobs(
    params: Mapping[str, Mapping[str, Any]], declared: Iterable[tuple[str, str]]
) -> tuple[Knob, ...]:
    """The knobs among a stage's declared parameters whose values make it nondeterministic.

    Args:
        params: parameter file -> its parsed mapping.
        declared: the stage's ``(file, key)`` parameters (a key may name a whole group).
    """
    found: list[Knob] = []
    for file, key in declared:
        group: Any = params.get(file, {})
        for part in key.split("."):
            group = group.get(part) if isinstance(group, Mapping) else None
        for dotted, name, value in _leaves(key, group):
            rule = KNOBS.get(name)
            if rule is not None and rule[0](value):
                found.append(Knob(file, dotted, value, rule[1]))
    return tuple(dict.fromkeys(found))


def _leaves(prefix: str, value: Any) -> Iterable[tuple[str, str, Any]]:
    todo: list[tuple[str, Any]] = [(prefix, value)]
    visited = 0
    while todo and visited < _MAX_VISITED:
        visited += 1
        path, item = todo.pop()
        if isinstance(item, Mapping):
            todo.extend((f"{path}.{k}", v) for k, v in item.items())
        else:
            yield path, path.rsplit(".", 1)[-1], item
