"""The promotion gate: admit a model only on signed, complete claims and files safe to load.

::

    policy       the versioned YAML policy, its profiles and published JSON schema
    evaluate     every requirement of a profile judged against a release or model directory
    requirements each requirement, with its evidence and the digest of that evidence
    verdicts     rebuilders' VSAs: kept in RELEASE/verdicts/, counted by trusted key
    record       the decision as a signed in-toto statement, and in Markdown
    claims       claims to controls: what each claim rests on, and what it cannot prove
    starter      the starter policy of `bitwright policy init`
    plugins      dynamic signals from entry points (`bitwright.gate.signals`)

The names below are imported on first use.
"""

from typing import TYPE_CHECKING

from bitwright._lazy import lazy_names

if TYPE_CHECKING:
    from bitwright.gate.claims import CLAIMS, claims_markdown, claims_report
    from bitwright.gate.evaluate import Decision, evaluate
    from bitwright.gate.policy import LoadedPolicy, load_policy
    from bitwright.gate.record import read_decision, write_decision
    from bitwright.gate.starter import starter_policy
    from bitwright.gate.verdicts import VERDICTS_DIR, add_verdicts

__all__ = [
    "CLAIMS",
    "VERDICTS_DIR",
    "Decision",
    "LoadedPolicy",
    "add_verdicts",
    "claims_markdown",
    "claims_report",
    "evaluate",
    "load_policy",
    "read_decision",
    "starter_policy",
    "write_decision",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "CLAIMS": "claims",
        "claims_markdown": "claims",
        "claims_report": "claims",
        "Decision": "evaluate",
        "evaluate": "evaluate",
        "LoadedPolicy": "policy",
        "load_policy": "policy",
        "read_decision": "record",
        "write_decision": "record",
        "starter_policy": "starter",
        "VERDICTS_DIR": "verdicts",
        "add_verdicts": "verdicts",
    },
)
