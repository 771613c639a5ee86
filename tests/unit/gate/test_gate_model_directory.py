"""The gate on a bare model directory, its TOFU pin, signals from plugins, the records."""

from __future__ import annotations

import base64
import json
import pickle
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from bitwright.attest import generate_keypair, load_public_key
from bitwright.attest.canonical import canonical_json
from bitwright.attest.keys import KeyPair
from bitwright.attest.signers import KeySigner
from bitwright.errors import VerificationFailed
from bitwright.gate.claims import claims_markdown, claims_report
from bitwright.gate.evaluate import Decision, evaluate
from bitwright.gate.policy import load_policy
from bitwright.gate.record import read_decision, write_decision
from bitwright.pins.tofu import PINS_FILE, add_pin

_NOTHING_ATTESTED = {
    "provenance": False,
    "layout_and_links": False,
    "determinism_confirmed": False,
    "data_pinned": False,
    "aibom": False,
    "model_signature": False,
    "clean_build": False,
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    folder = tmp_path_factory.mktemp("keys")
    return {n: generate_keypair(folder, name=n) for n in ("owner", "gate", "stranger")}


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "repo" / "third_party" / "tiny"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden": 4}')
    (folder / "weights.pkl").write_bytes(pickle.dumps({"w": [0.5, 0.25]}, protocol=4))
    return folder


def policy(tmp_path: Path, keys: dict[str, KeyPair], **profile: Any) -> Path:
    document = {
        "apiVersion": "bitwright.dev/gate-policy/v1",
        "default_profile": "intake",
        "profiles": {
            "intake": {
                "signers": {"keys": [{"pem": keys["owner"].public_path.read_text()}]},
                "require": {**_NOTHING_ATTESTED, "third_party_pinned": False},
                **profile,
            }
        },
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def judge(model: Path, policy_path: Path) -> Decision:
    return evaluate(model, load_policy(policy_path))


def failed(decision: Decision) -> dict[str, str]:
    return {r.id: r.summary for r in decision.requirements if not r.passed}


def test_a_clean_third_party_model_is_admitted_on_its_files(
    model: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    decision = judge(model, policy(tmp_path, keys, deployment={"formats": ["json", "pickle"]}))

    assert decision.kind == "model-directory"
    assert [r.id for r in decision.requirements] == ["scan-clean", "no-custom-code", "formats"]
    assert decision.admitted


def test_requirements_that_need_attestations_fail_without_them(
    model: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    strict = policy(tmp_path, keys, require={}, builders=["https://b/v1"])

    reasons = failed(judge(model, strict))

    assert set(reasons) >= {"provenance", "layout-and-links", "builder", "clean-build", "aibom"}
    assert "holds no provenance" in reasons["provenance"]


def test_a_payload_format_size_and_code_are_each_named(
    model: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    (model / "evil.bin").write_bytes(b"cbuiltins\nexec\n(Vprint(1)\ntR.")
    (model / "modeling_tiny.py").write_text("import os\n")
    limits = {"formats": ["json"], "max_file_bytes": 40}

    reasons = failed(judge(model, policy(tmp_path, keys, deployment=limits)))

    assert reasons["scan-clean"] == (
        "evil.bin: unsafe: imports builtins.exec, which the allowlist does not admit"
    )
    assert reasons["no-custom-code"].startswith("modeling_tiny.py: custom-code")
    assert reasons["formats"].startswith("evil.bin: format pickle is not allowed")
    assert "more than 40" in reasons["size"]


def test_trust_remote_code_is_its_own_allowance(
    model: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    (model / "config.json").write_text('{"trust_remote_code": true}')

    denied = judge(model, policy(tmp_path, keys))
    allowed = judge(model, policy(tmp_path, keys, deployment={"trust_remote_code": True}))

    assert "trust_remote_code" in failed(denied)["no-custom-code"]
    assert allowed.admitted


def test_a_bare_model_must_match_its_trusted_pin(
    model: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    repo = tmp_path / "repo"
    add_pin(repo, str(model))
    pinned = policy(
        tmp_path,
        keys,
        require={**_NOTHING_ATTESTED, "third_party_pinned": True},
        third_party_pins=str(repo / PINS_FILE),
    )
    assert judge(model, pinned).admitted

    (model / "weights.pkl").write_bytes(pickle.dumps({"w": [9.0]}, protocol=4))

    assert failed(judge(model, pinned)) == {
        "third-party-pinned": "third_party/tiny/weights.pkl: not as pinned"
    }


# -- signals from plugins ---------------------------------------------------------------------


def test_the_shipped_signal_runs_the_other_scanners(
    model: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    (model / "evil.pkl").write_bytes(b"cposix\nsystem\n(Vid\ntR.")

    decision = judge(model, policy(tmp_path, keys, signals=["external-scanners"]))

    signal = next(r for r in decision.requirements if r.id == "signal:external-scanners")
    assert not signal.passed
    assert "picklescan: flagged" in signal.summary
    assert signal.evidence["picklescan"]["verdict"] == "flagged"


def _install_plugin(root: Path, name: str, module: str, body: str) -> None:
    """A real distribution on sys.path whose entry point provides the signal ``name``."""
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[bitwright.gate.signals]\n{name} = {module}:Answer\n")


@pytest.mark.parametrize(
    ("module", "body", "passed", "summary"),
    [
        (
            "signal_passes",
            """
            from bitwright.gate.plugins import Signal, SignalResult, SignalVerdict
            class Answer(Signal):
                name = "sandbox-run"
                def evaluate(self, context):
                    return SignalResult(SignalVerdict.PASS, f"{len(context.files)} ran", {"n": 1})
            """,
            True,
            "3 ran",
        ),
        (
            "signal_raises",
            """
            from bitwright.gate.plugins import Signal
            class Answer(Signal):
                name = "sandbox-run"
                def evaluate(self, context):
                    raise RuntimeError("sandbox unreachable")
            """,
            False,
            "the signal raised RuntimeError: sandbox unreachable",
        ),
        (
            "not_a_signal",
            "class Answer:\n    pass\n",
            False,
            "not_a_signal:Answer is not a gate Signal",
        ),
    ],
)
def test_plugin_signals_are_required_by_name(
    model: Path,
    tmp_path: Path,
    keys: dict[str, KeyPair],
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    body: str,
    passed: bool,
    summary: str,
) -> None:
    plugins = tmp_path / "site"
    plugins.mkdir()
    _install_plugin(plugins, "sandbox-run", module, body)
    monkeypatch.syspath_prepend(str(plugins))
    (model / "README.md").write_text("# tiny\n")

    decision = judge(model, policy(tmp_path, keys, signals=["sandbox-run"]))

    signal = next(r for r in decision.requirements if r.id == "signal:sandbox-run")
    assert (signal.passed, signal.summary) == (passed, summary)


def test_a_signal_nobody_provides_fails(
    model: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    reasons = failed(judge(model, policy(tmp_path, keys, signals=["nobody-ships-this"])))

    assert reasons == {
        "signal:nobody-ships-this": "no installed package provides the signal 'nobody-ships-this'"
    }


# -- the record and the claims ----------------------------------------------------------------


def test_the_record_verifies_with_the_gate_key_only(
    model: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    decision = judge(model, policy(tmp_path, keys))
    written = write_decision(decision, KeySigner.from_file(keys["gate"].private_path), tmp_path)

    record = read_decision(written["record"], [load_public_key(keys["gate"].public_path)])

    assert record.predicate.decision == "admit"
    assert record.predicate.policy.digest == {"sha256": decision.policy_sha256}
    assert {s.name for s in record.subject} == {"config.json", "weights.pkl"}
    with pytest.raises(VerificationFailed, match="signature check failed"):
        read_decision(written["record"], [load_public_key(keys["stranger"].public_path)])


def test_a_record_with_evidence_that_is_not_its_digest_is_refused(
    model: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    from bitwright.attest.dsse import sign_envelope
    from bitwright.attest.keys import load_signer

    decision = judge(model, policy(tmp_path, keys))
    written = write_decision(decision, KeySigner.from_file(keys["gate"].private_path), tmp_path)
    envelope = json.loads(written["record"].read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["requirements"][0]["evidence"]["findings"] = ["edited"]
    forged = sign_envelope(
        canonical_json(statement),
        "application/vnd.in-toto+json",
        load_signer(keys["gate"].private_path),
    )
    written["record"].write_bytes(canonical_json(forged))

    with pytest.raises(VerificationFailed, match="evidence digest"):
        read_decision(written["record"], [load_public_key(keys["gate"].public_path)])


def test_claims_report_says_what_each_claim_rests_on(
    model: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    (model / "evil.bin").write_bytes(b"cbuiltins\nexec\n(Vprint(1)\ntR.")
    decision = judge(model, policy(tmp_path, keys))

    report = claims_report(decision)

    status = {c["claim"]: c["status"] for c in report["claims"]}
    assert status == {
        "integrity": "not checked",
        "origin": "not checked",
        "data-lineage": "not checked",
        "reproducibility": "not checked",
        "safety-to-load": "refuted",
        "dependencies": "not checked",
    }
    text = claims_markdown(report)
    assert "## safety-to-load: refuted" in text
    assert "Cannot prove: What the model does once loaded" in text
