"""Stage-by-stage comparison of the released links with the rebuilt ones.

For every stage, in topological order, the materials and products digest maps of the original
link and of the rebuilt link are matched path by path. A stage whose products all match is
reproduced. The *first divergent* stage is the first whose materials all matched and whose
products did not (beyond tolerance): the place where the same inputs gave other outputs,
which is where a forgery or a non-deterministic step lives. A later stage whose materials
differ only inherits the divergence. Products that differ are compared as files where the
original bytes exist (the caller decides where: the release's artifacts), so a forged model is
reported tensor by tensor at the stage that produced it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bitwright.errors import UsageError
from bitwright.rebuild.compare import FileComparison, Tolerance, Verdict

__all__ = [
    "CompareProducts",
    "PathMatch",
    "PathStatus",
    "StageComparison",
    "StageRole",
    "compare_stages",
    "match_paths",
    "stage_tolerances",
]


class PathStatus(StrEnum):
    """How one material or product of the rebuild relates to the original link's."""

    MATCHED = "matched"
    DIFFERS = "differs"
    MISSING = "missing"
    """In the original link, not in the rebuilt one."""
    EXTRA = "extra"
    """In the rebuilt link only."""


class StageRole(StrEnum):
    """What a stage's comparison means for the story of the rebuild."""

    REPRODUCED = "reproduced"
    WITHIN_TOLERANCE = "within tolerance"
    FIRST_DIVERGENT = "first divergent"
    DIVERGENT = "divergent"
    """Same materials, other products, after the first divergent stage."""
    INHERITED = "inherited"
    """Other products from other materials: the divergence came from upstream."""
    NOT_REBUILT = "not rebuilt"
    NOT_RELEASED = "no original link"


@dataclass(frozen=True)
class PathMatch:
    """One path of a digest map, compared.

    Attributes:
        path: the repository path.
        status: matched, differs, missing (original only) or extra (rebuilt only).
        original: its sha256 in the original link, ``None`` if absent there.
        rebuilt: its sha256 in the rebuilt link, ``None`` if absent there.
    """

    path: str
    status: PathStatus
    original: str | None
    rebuilt: str | None

    def to_json(self) -> dict[str, Any]:
        """Return this match as JSON data."""
        return {
            "path": self.path,
            "status": self.status.value,
            "original": self.original,
            "rebuilt": self.rebuilt,
        }


@dataclass(frozen=True)
class StageComparison:
    """The comparison of one stage.

    Attributes:
        stage: the stage name.
        verdict: the stage's verdict (the worst of its products').
        role: what it means in the chain (first divergent, inherited...).
        materials: per-path comparison of the materials.
        products: per-path comparison of the products.
        files: file comparisons of differing products whose original bytes exist.
        note: one line for a human, "" when there is nothing to add.
        knobs: declared parameters that can make the stage nondeterministic
            (``params.yaml train.n_jobs=2``), named by the rebuild.
    """

    stage: str
    verdict: Verdict
    role: StageRole
    materials: tuple[PathMatch, ...]
    products: tuple[PathMatch, ...]
    files: tuple[FileComparison, ...] = ()
    note: str = ""
    knobs: tuple[str, ...] = ()

    @property
    def materials_matched(self) -> bool:
        """Whether every material matched (and there was at least the original's set)."""
        return all(m.status is PathStatus.MATCHED for m in self.materials)

    @property
    def products_matched(self) -> bool:
        """Whether every product matched."""
        return bool(self.products) and all(p.status is PathStatus.MATCHED for p in self.products)

    def summary(self, which: str) -> str:
        """``"5/5 matched"`` or ``"1/2 matched, 1 differs"`` for ``materials`` or ``products``."""
        matches: tuple[PathMatch, ...] = getattr(self, which)
        counts: dict[PathStatus, int] = {}
        for match in matches:
            counts[match.status] = counts.get(match.status, 0) + 1
        text = f"{counts.get(PathStatus.MATCHED, 0)}/{len(matches)} matched"
        rest = [f"{n} {s.value}" for s, n in counts.items() if s is not PathStatus.MATCHED]
        return ", ".join([text, *rest])

    def to_json(self) -> dict[str, Any]:
        """Return this stage's comparison as JSON data."""
        return {
            "stage": self.stage,
            "verdict": self.verdict.value,
            "role": self.role.value,
            "materials": [m.to_json() for m in self.materials],
            "products": [p.to_json() for p in self.products],
            "files": [f.to_json() for f in self.files],
            "note": self.note,
            "knobs": list(self.knobs),
        }


CompareProducts = Callable[[str, Sequence[PathMatch]], tuple[FileComparison, ...]]
"""(stage, its differing products) -> comparisons of those whose original bytes exist."""


def match_paths(original: Mapping[str, str], rebuilt: Mapping[str, str]) -> tuple[PathMatch, ...]:
    """Match two ``path -> sha256`` maps path by path, sorted by path."""
    out: list[PathMatch] = []
    for path in sorted(set(original) | set(rebuilt)):
        a, b = original.get(path), rebuilt.get(path)
        if a is None:
            status = PathStatus.EXTRA
        elif b is None:
            status = PathStatus.MISSING
        else:
            status = PathStatus.MATCHED if a == b else PathStatus.DIFFERS
        out.append(PathMatch(path, status, a, b))
    return tuple(out)


def _digests(link: Mapping[str, Any], section: str) -> dict[str, str]:
    return {path: str(hashes["sha256"]) for path, hashes in link.get(section, {}).items()}


def _no_original_bytes(match: PathMatch) -> FileComparison:
    what = "not rebuilt" if match.rebuilt is None else "sha256 differs"
    return FileComparison(
        path=match.path,
        kind="digest",
        verdict=Verdict.DIFFERENT,
        detail=f"{what}; the original bytes are not in the release, so only digests compare",
    )


def _compare_one(
    stage: str,
    original: Mapping[str, Any],
    rebuilt: Mapping[str, Any],
    compare_products: CompareProducts,
) -> tuple[Verdict, tuple[PathMatch, ...], tuple[PathMatch, ...], tuple[FileComparison, ...]]:
    materials = match_paths(_digests(original, "materials"), _digests(rebuilt, "materials"))
    products = match_paths(_digests(original, "products"), _digests(rebuilt, "products"))
    differing = [p for p in products if p.status is not PathStatus.MATCHED]
    if not differing:
        return Verdict.REPRODUCED, materials, products, ()
    compared = compare_products(stage, differing)
    by_path = {c.path: c for c in compared}
    files = tuple(by_path.get(p.path) or _no_original_bytes(p) for p in differing)
    return Verdict.combine(f.verdict for f in files), materials, products, files


def compare_stages(
    order: Sequence[str],
    original: Mapping[str, Mapping[str, Any]],
    rebuilt: Mapping[str, Mapping[str, Any]],
    compare_products: CompareProducts,
) -> tuple[tuple[StageComparison, ...], str | None]:
    """Compare every stage of ``order`` (topological) and find the first divergent one.

    Args:
        order: the stage names, every stage after its upstream stages.
        original: stage -> the released link's JSON (``materials``/``products`` maps).
        rebuilt: stage -> the rebuilt link's JSON; a stage absent here was not rebuilt.
        compare_products: compares differing products whose original bytes exist.

    Returns:
        The per-stage comparisons in ``order`` and the first divergent stage (or ``None``).
    """
    rows: list[StageComparison] = []
    first: str | None = None
    for stage in order:
        if stage not in original:
            rows.append(
                StageComparison(stage, Verdict.FAILED, StageRole.NOT_RELEASED, (), (), (), "")
            )
            continue
        if stage not in rebuilt:
            products = match_paths(_digests(original[stage], "products"), {})
            rows.append(
                StageComparison(
                    stage,
                    Verdict.FAILED,
                    StageRole.NOT_REBUILT,
                    (),
                    products,
                    (),
                    "the rebuild produced no link for this stage",
                )
            )
            continue
        verdict, materials, products, files = _compare_one(
            stage, original[stage], rebuilt[stage], compare_products
        )
        same_inputs = all(m.status is PathStatus.MATCHED for m in materials)
        note = ""
        if verdict is Verdict.REPRODUCED:
            role = StageRole.REPRODUCED
        elif verdict is Verdict.REPRODUCED_WITHIN_TOLERANCE:
            role = StageRole.WITHIN_TOLERANCE
        elif not same_inputs:
            role = StageRole.INHERITED
            upstream = first or "an upstream stage"
            note = f"its materials differ: inherited from {upstream}"
        elif first is None:
            role, first = StageRole.FIRST_DIVERGENT, stage
            note = "same materials, other products: the divergence starts here"
        else:
            role = StageRole.DIVERGENT
            note = "same materials, other products"
        rows.append(StageComparison(stage, verdict, role, materials, products, files, note))
    return tuple(rows), first


def stage_tolerances(
    params: Mapping[str, Any], stages: Sequence[str], override: Tolerance | None
) -> dict[str, Tolerance]:
    """Per-stage tolerance: ``--atol/--rtol`` if given, else ``compare.<stage>`` of params.

    Raises:
        UsageError: a ``compare.<stage>`` entry is not ``{atol, rtol}`` numbers >= 0.
    """
    section = params.get("compare") or {}
    result: dict[str, Tolerance] = {}
    for stage in stages:
        if override is not None:
            result[stage] = override
            continue
        entry = section.get(stage) if isinstance(section, dict) else None
        if entry is None:
            result[stage] = Tolerance()
            continue
        if not isinstance(entry, dict) or set(entry) - {"atol", "rtol"}:
            raise UsageError(
                f"params.yaml compare.{stage} must be a mapping of atol and rtol",
                hint=f"write compare: {{{stage}: {{atol: 0.0, rtol: 0.0}}}}",
            )
        result[stage] = Tolerance(float(entry.get("atol", 0.0)), float(entry.get("rtol", 0.0)))
    return result
