"""Every link a project's builds wrote, and when one may stand for a stage DVC did not run.

DVC skips a stage whose deps and outs are unchanged, and restores a stage's outputs from its
run-cache without running the command; neither writes a link. The store keeps every signed
link by signer, stage and the digests of its materials and products, and :func:`reuse`
decides whether the run one of them attests can stand for the stage in this build:

* **as it is**, when everything the link attests is still true: its materials and products
  are the files now, and its pins (the commit among them), command, declared settings,
  sandbox and the environment the stage started with are this build's;
* **attested again**, when only the commit moved (a commit of ``dvc.lock``, say) and nothing
  the run depended on did: the same materials, products, command, settings, package set,
  data, image, sandbox, and the very environment a run would get now (``SOURCE_DATE_EPOCH``
  included, which a commit of only ``dvc.lock`` does not move). The stage gets a fresh link
  for this build's pins that carries the earlier run's evidence (receipts, logs' digests,
  times) and cites the earlier link by digest (``byproducts.reused-run``);
* **not at all**, otherwise: the stage is run again.

A run that read undeclared files, or ran in a sandbox whose paths differ from run to run,
cannot be proven the same and is run again.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bitwright.attest import build_link, keyid8, read_link, write_link
from bitwright.attest.keys import Signer
from bitwright.errors import BitwrightError
from bitwright.fileio import write_atomic
from bitwright.model import (
    ArtifactMap,
    BuildPins,
    SandboxAllowances,
    SandboxKind,
    SandboxReport,
    Sha256,
    StageReceipts,
    StageRun,
    StageSpec,
)
from bitwright.runner.allowances import DVC_VARIABLES

__all__ = ["LinkStore", "Reuse", "StageNow", "artifact_key", "reuse"]


def artifact_key(stage: str, materials: ArtifactMap, products: ArtifactMap) -> str:
    """Return the store key of a stage run with these materials and products."""
    canonical = json.dumps(
        {"stage": stage, "materials": materials, "products": products},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _digests(section: dict[str, Any]) -> ArtifactMap:
    return {path: hashes["sha256"] for path, hashes in section.items()}


class LinkStore:
    """Links kept under ``root/KEYID8/STAGE/KEY/SHA256.link`` (every one, newest found first)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, link_path: Path, link: dict[str, Any], keyid8: str) -> Path:
        """Keep a copy of the link at ``link_path`` whose payload is ``link``."""
        stage = str(link["name"])
        key = artifact_key(stage, _digests(link["materials"]), _digests(link["products"]))
        data = link_path.read_bytes()
        target = self.root / keyid8 / stage / key / f"{hashlib.sha256(data).hexdigest()}.link"
        write_atomic(target, data)
        return target

    def find(
        self, stage: str, keyid8: str, materials: ArtifactMap, products: ArtifactMap
    ) -> tuple[Path, ...]:
        """Return the stored links of ``stage`` for exactly these files, signed by ``keyid8``."""
        folder = self.root / keyid8 / stage / artifact_key(stage, materials, products)
        found = list(folder.glob("*.link")) if folder.is_dir() else []
        return tuple(sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True))


class Reuse(StrEnum):
    """How a stored link may stand for a stage in this build."""

    AS_IS = "as-is"
    ATTEST_AGAIN = "attest-again"
    NO = "no"


@dataclass(frozen=True)
class StageNow:
    """What a run of a stage in this build would be: the facts a stored link must match.

    Attributes:
        spec: the stage.
        pins: this build's pins.
        materials: its materials now (hashed by this process).
        products: its outs now (hashed by this process).
        environment: the environment a run would start with now, or None when the sandbox
            gives every run other paths (then no earlier run can be proven the same).
        sandbox: the sandbox stages run in.
        strict: whether undeclared files are hidden.
        allowances: what the project config lets the stage do beyond the seal.
    """

    spec: StageSpec
    pins: BuildPins
    materials: ArtifactMap
    products: ArtifactMap
    environment: Mapping[str, str] | None
    sandbox: SandboxKind
    strict: bool
    allowances: SandboxAllowances = field(default_factory=SandboxAllowances)


def reuse(link: Mapping[str, Any], now: StageNow) -> tuple[Reuse, str]:
    """Decide whether the (signature-checked) link ``link`` may stand for the stage now.

    Returns:
        The verdict, and what differs when it is not :attr:`Reuse.AS_IS`.
    """
    reason = _unprovable(link, now)
    if reason:
        return Reuse.NO, reason
    pins = link["environment"]["pins"]
    if pins == now.pins.to_json():
        return Reuse.AS_IS, ""
    ours = now.pins.to_json()
    moved = sorted(k for k in ours if k != "git" and pins.get(k) != ours[k])
    if moved:
        return Reuse.NO, f"its run had other pins ({', '.join(moved)})"
    return Reuse.ATTEST_AGAIN, "only the commit moved"


def _unprovable(link: Mapping[str, Any], now: StageNow) -> str:
    """Why the run ``link`` attests may have made other outputs than a run now; "" if none."""
    byproducts, environment = link["byproducts"], link["environment"]
    sandbox = byproducts.get("sandbox") or {}
    checks = (
        (link["name"] == now.spec.name, "it is another stage's"),
        (link["command"] == shlex.split(now.spec.inner_cmd), "its command differs"),
        (_digests(link["materials"]) == now.materials, "its materials differ"),
        (_digests(link["products"]) == now.products, "its products differ"),
        (byproducts.get("return-value") == 0, "its run failed"),
        (not byproducts.get("undeclared-reads"), "its run read undeclared files"),
        (sandbox.get("kind") == now.sandbox.value, "it ran in another sandbox"),
        (sandbox.get("undeclared_hidden") or not now.strict, "it did not run in strict mode"),
        (
            environment.get("determinism-declared") == now.pins.determinism.to_json(),
            "it was declared other determinism settings",
        ),
        (
            byproducts.get("allowances", {}) == _granted(now.allowances),
            "it was given other sandbox allowances",
        ),
        (now.environment is not None, "this sandbox gives every run other paths"),
        (
            _without_dvc(environment.get("variables") or {}) == _without_dvc(now.environment),
            "its environment differs",
        ),
    )
    return next((why for ok, why in checks if not ok), "")


def _granted(allowances: SandboxAllowances) -> dict[str, Any]:
    return allowances.to_json() if allowances.granted else {}


def _without_dvc(variables: Mapping[str, str] | None) -> dict[str, str]:
    """The variables but DVC's own, which name the repository and stage (compared apart)."""
    return {k: v for k, v in (variables or {}).items() if k not in DVC_VARIABLES}


def attest_again(
    link_path: Path, link: Mapping[str, Any], now: StageNow, signer: Signer, links_dir: Path
) -> Path:
    """Write this build's link of a run that ``link`` (at ``link_path``) attested before.

    Raises:
        BitwrightError: the earlier link's evidence cannot be read back.
    """
    byproducts = link["byproducts"]
    run = StageRun(
        stage=now.spec.name,
        command=tuple(link["command"]),
        returncode=0,
        materials=now.materials,
        products=now.products,
        stdout_sha256=Sha256(byproducts["stdout-sha256"]),
        stderr_sha256=Sha256(byproducts["stderr-sha256"]),
        sandbox=SandboxReport.from_json(byproducts["sandbox"]),
        environment=dict(link["environment"]["variables"]),
        receipts=StageReceipts.from_json(byproducts["receipts"]),
        undeclared_reads=(),
        started_on=str(byproducts.get("started-on", "")),
        finished_on=str(byproducts.get("finished-on", "")),
        notes=tuple(byproducts.get("notes") or ()),
        allowances=now.allowances,
    )
    cited = {
        "link": link_path.name,
        "sha256": hashlib.sha256(link_path.read_bytes()).hexdigest(),
        "commit": str(link["environment"]["pins"]["git"]["commit"]),
    }
    new = build_link(run, now.pins, declared=now.pins.determinism, reused=cited)
    return write_link(new, signer, links_dir)


def reuse_stored(
    store: LinkStore, now: StageNow, signer: Signer, links_dir: Path
) -> tuple[Path | None, str]:
    """Give the stage the link of an earlier run, as it is or attested again; or say why not.

    Returns:
        The link written into ``links_dir`` (None when the stage must run again), and the
        reason when it must.
    """
    kid8 = keyid8(signer.public_key)
    reasons: list[str] = []
    for stored in store.find(now.spec.name, kid8, now.materials, now.products):
        try:
            link, _ = read_link(stored, keys=[signer.public_key])
            verdict, why = reuse(link, now)
            if verdict is Reuse.AS_IS:
                target = links_dir / f"{now.spec.name}.{kid8}.link"
                write_atomic(target, stored.read_bytes())
                return target, ""
            if verdict is Reuse.ATTEST_AGAIN:
                written = attest_again(stored, link, now, signer, links_dir)
                payload, _ = read_link(written)
                store.put(written, payload, kid8)
                return written, ""
        except (BitwrightError, KeyError, TypeError, ValueError) as exc:
            why = f"its stored link is unreadable ({exc})"
        reasons.append(why)
    return None, reasons[0] if reasons else "no earlier run made these outputs"
