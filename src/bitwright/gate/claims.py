"""Claims to controls: for each claim made about a model, what checked it and what cannot.

People say things about a model ("these are the weights that were built", "it was trained on
that data", "it is safe to load"); :data:`CLAIMS` maps each claim to the gate requirements
(controls) that check it and says, plainly, what those controls cannot prove.
:func:`claims_report` fills that map in from a decision: which controls the policy required,
whether they held, and the digest of their evidence; a claim is ``supported`` when every
control the policy required for it held, ``refuted`` when one failed, ``not checked`` when
the policy required none. Markdown (:func:`claims_markdown`) and JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bitwright.gate.evaluate import Decision

__all__ = ["CLAIMS", "Claim", "claim_of", "claims_markdown", "claims_report"]


@dataclass(frozen=True)
class Claim:
    """A claim, the controls that check it, and what they cannot prove.

    Attributes:
        id: the claim's id (``integrity``...).
        statement: the claim as a user makes it.
        controls: gate requirement ids (``signal:`` matches every plugin signal).
        cannot_prove: what no control of bitwright establishes about it.
    """

    id: str
    statement: str
    controls: tuple[str, ...]
    cannot_prove: str


CLAIMS = (
    Claim(
        "integrity",
        "These files are the ones that were built and released, unaltered.",
        ("provenance", "model-signature", "aibom"),
        "That whoever holds a trusted key used it honestly: a stolen or coerced key signs "
        "anything, and the signature then holds.",
    ),
    Claim(
        "origin",
        "It was built from this repository, by this builder, from a clean tree, stage by "
        "stage as the layout says.",
        ("layout-and-links", "builder", "source", "clean-build"),
        "Which branch, tag or review the commit went through (the buildType records the "
        "commit, not a ref), and that the builder itself was not compromised.",
    ),
    Claim(
        "data-lineage",
        "It was trained on these data snapshots and these third-party models and datasets.",
        ("data-pinned", "third-party-pinned"),
        "That the data is what it is said to be (licence, consent, poisoning): a pin proves "
        "the bytes are the ones first seen, and TOFU trusts that first download.",
    ),
    Claim(
        "reproducibility",
        "Anyone rebuilding from the pinned inputs gets these bits.",
        ("determinism-confirmed", "reproducibility", "no-different-verdict"),
        "That the rebuilders are independent beyond holding different keys, or that a "
        "reproduced model behaves well: equal bits reproduce a backdoor too.",
    ),
    Claim(
        "safety-to-load",
        "Loading the files runs no code but what the allowlist admits.",
        ("scan-clean", "no-custom-code", "formats", "size", "signal:"),
        "What the model does once loaded: a backdoor lives in the weights as data; and the "
        "allowlist's own entries are trusted, not proven.",
    ),
    Claim(
        "dependencies",
        "No package or image known to be compromised took part in the build.",
        ("denied-dependencies",),
        "Compromises nobody has listed yet, and software the package lock does not record.",
    ),
)
"""Every claim the gate speaks to, in the order reports list them."""


def _matches(control: str, requirement: str) -> bool:
    return requirement.startswith(control) if control.endswith(":") else requirement == control


def claim_of(requirement: str) -> str:
    """The claim a requirement id backs."""
    for claim in CLAIMS:
        if any(_matches(control, requirement) for control in claim.controls):
            return claim.id
    raise ValueError(f"requirement {requirement!r} backs no claim")


def claims_report(decision: Decision) -> dict[str, Any]:
    """The claims-to-controls report of ``decision`` as JSON."""
    claims: list[dict[str, Any]] = []
    for claim in CLAIMS:
        controls: list[dict[str, Any]] = []
        for control in claim.controls:
            judged = [r for r in decision.requirements if _matches(control, r.id)]
            if not judged:
                controls.append({"control": control, "status": "not required"})
            for result in judged:
                controls.append(
                    {
                        "control": result.id,
                        "status": "passed" if result.passed else "failed",
                        "summary": result.summary,
                        "evidenceDigest": {"sha256": result.evidence_sha256},
                    }
                )
        statuses = {c["status"] for c in controls}
        status = (
            "refuted"
            if "failed" in statuses
            else "supported"
            if "passed" in statuses
            else "not checked"
        )
        claims.append(
            {
                "claim": claim.id,
                "statement": claim.statement,
                "status": status,
                "controls": controls,
                "cannotProve": claim.cannot_prove,
            }
        )
    return {
        "target": decision.target,
        "policy": {"sha256": decision.policy_sha256, "profile": decision.profile},
        "decision": "admit" if decision.admitted else "deny",
        "claims": claims,
    }


def claims_markdown(report: dict[str, Any]) -> str:
    """The claims-to-controls report for people."""
    lines = [
        f"# Claims and the controls that checked them: {report['target']}",
        "",
        f"Decision: **{report['decision']}** (policy sha256 `{report['policy']['sha256']}`, "
        f"profile `{report['policy']['profile']}`).",
    ]
    for claim in report["claims"]:
        lines += ["", f"## {claim['claim']}: {claim['status']}", "", f"> {claim['statement']}", ""]
        lines += ["| control | status | evidence sha256 |", "|---|---|---|"]
        for control in claim["controls"]:
            digest = control.get("evidenceDigest", {}).get("sha256", "")
            shown = f"`{digest[:16]}`" if digest else ""
            lines.append(f"| `{control['control']}` | {control['status']} | {shown} |")
        lines += ["", f"Cannot prove: {claim['cannotProve']}"]
    return "\n".join(lines) + "\n"
