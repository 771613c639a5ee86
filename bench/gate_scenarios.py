"""Scenario suite of the promotion gate: which controls fire on which attack, and the decision.

A tiny real project (git, DVC, sealed stages, a TOFU-pinned third-party input; the one the
integration tests build) is built and released; a second build has a compromised stage that
writes a pickle with a payload. Rebuilders' VSAs are signed with throwaway verifier keys.
Each scenario judges a copy of a release (or a third-party model directory) with the same
strict policy and prints the decision and the requirements that failed:

    honest                 two trusted rebuilders reproduced it            -> admit
    compromised-dependency a package of the build's lock is on the deny list
    malicious-hub-artifact a third-party torch checkpoint whose data.pkl runs code
    unsafe-deserialization the owner's own build released a pickle payload
    forged-provenance      the provenance edited after signing
    attacker-signed        a release signed by a key the policy does not trust
    swapped-model          the model replaced by another, claims left as they were
    stale-reproduction     the only reproductions are older than the policy allows
    backdoored-model       weights that misbehave on a trigger: nothing to see  -> admit

The last row is the point of the suite: every control checks a claim about how a model was
made or what loading it runs; none checks what the weights do. Then, on the honest release,
``bitwright gate`` and ``bitwright verify`` are timed as commands (best of ``--repeat``) and
their ratio printed (the gate adds the scan, the policy and the verdicts to verify).

    .venv/bin/python bench/gate_scenarios.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timing import best_command  # noqa: E402
from tests.integration.project import (  # noqa: E402
    BITWRIGHT,
    add_third_party_input,
    commit,
    make_project,
    sh,
)
from tests.unit.verify.release_factory import signed_vsa  # noqa: E402

from bitwright.attest import canonical_json, generate_keypair, load_signer  # noqa: E402
from bitwright.attest.dsse import sign_envelope  # noqa: E402
from bitwright.gate.evaluate import Decision, evaluate  # noqa: E402
from bitwright.gate.policy import Require, load_policy  # noqa: E402
from bitwright.release.bundle import bundle_release  # noqa: E402
from bitwright.verify import check_candidate  # noqa: E402

ATTESTED = tuple(name for name in Require.model_fields if name != "scan_clean")
PAYLOAD = b"cbuiltins\nexec\n(Vopen('pwned', 'w')\ntR."
COMPROMISED_STAGE = f"""\
import pathlib
from bitwright import stagekit
stagekit.begin()
pathlib.Path("out/second.json").write_text('{{"sum": 1}}')
pathlib.Path("out/model.pkl").write_bytes({PAYLOAD!r})
"""


def build(base: Path, *, compromised: bool = False) -> tuple[Path, Path]:
    """Build and release the tiny project; return (repo, release)."""
    repo = make_project(base)
    add_third_party_input(repo, base)
    if compromised:
        (repo / "stages" / "second.py").write_text(COMPROMISED_STAGE)
        out = "      - out/second.json"
        dvc_yaml = (repo / "dvc.yaml").read_text().replace(out, f"{out}\n      - out/model.pkl")
        (repo / "out" / ".gitignore").write_text("/first.json\n/second.json\n/model.pkl\n")
        (repo / "dvc.yaml").write_text(dvc_yaml)
        commit(repo, "a compromised stage")
    sh(BITWRIGHT, "build", cwd=repo)
    return repo, bundle_release(repo, base / "release", check=check_candidate).directory


def payload_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))
    return data


class Suite:
    """The two built releases, the keys, and the helpers every scenario uses."""

    def __init__(self, work: Path) -> None:
        self.work = work
        keys = work / "keys"
        self.verifiers = {n: generate_keypair(keys, name=n) for n in ("alice", "bob")}
        self.stranger = generate_keypair(keys, name="stranger")
        self.repo, self.release = build(work / "honest")
        self.bad_repo, self.bad_release = build(work / "compromised", compromised=True)
        statement = payload_of(self.release / "provenance.intoto.json")
        self.builder = statement["predicate"]["runDetails"]["builder"]["id"]
        self.packages = next(
            d["annotations"]["packages"]
            for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
            if d["name"] == "python-packages"
        )

    def owner(self, repo: Path) -> Path:  # noqa: D102
        return repo / ".bitwright" / "keys" / "owner.pub"

    def policy(self, name: str, repo: Path, **changes: Any) -> Path:  # noqa: D102
        import yaml

        profile: dict[str, Any] = {
            "signers": {"keys": [{"pem": self.owner(repo).read_text()}]},
            "builders": [self.builder],
            "sources": ["*"],
            "third_party_pins": str(repo / "thirdparty.pins.json"),
            "reproducibility": {
                "verdicts": 2,
                "verifiers": [{"pem": k.public_path.read_text()} for k in self.verifiers.values()],
                "max_age_days": 30,
            },
            "deployment": {"formats": ["json", "text", "safetensors"], "custom_code": False},
            "deny": {"packages": ["event-stream==3.3.6"]},
        }
        profile.update(changes)
        document = {
            "apiVersion": "bitwright.dev/gate-policy/v1",
            "default_profile": "production",
            "profiles": {"production": profile},
        }
        path = self.work / f"{name}.policy.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def verdicts(self, release: Path, age_days: float = 1) -> list[Path]:  # noqa: D102
        subjects = {
            s["name"]: s["digest"]["sha256"]
            for s in payload_of(release / "provenance.intoto.json")["subject"]
        }
        return [
            signed_vsa(
                subjects,
                pair.private_path,
                self.work / f"{release.parent.name}-{name}-{age_days}.vsa.json",
                age=dt.timedelta(days=age_days),
            )
            for name, pair in self.verifiers.items()
        ]

    def copy(self, release: Path, name: str) -> Path:  # noqa: D102
        target = self.work / "copies" / name
        shutil.copytree(release, target)
        return target

    def judge(self, target: Path, policy: Path, vsas: list[Path]) -> Decision:  # noqa: D102
        return evaluate(target, load_policy(policy), vsa_files=vsas)


def _torch_checkpoint_with_payload(folder: Path) -> None:
    import torch

    folder.mkdir(parents=True)
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source:
        members = [(i.filename, source.read(i)) for i in source.infolist()]
    with zipfile.ZipFile(folder / "pytorch_model.bin", "w") as target:
        for name, data in members:
            target.writestr(name, PAYLOAD if name.endswith("/data.pkl") else data)
    (folder / "config.json").write_text('{"model_type": "tiny"}')


def scenarios(suite: Suite) -> dict[str, Callable[[], tuple[Decision, str]]]:
    honest_policy = suite.policy("strict", suite.repo)

    def honest() -> tuple[Decision, str]:
        return suite.judge(suite.release, honest_policy, suite.verdicts(suite.release)), "admit"

    def compromised_dependency() -> tuple[Decision, str]:
        denied = suite.policy("deny", suite.repo, deny={"packages": [suite.packages[0]]})
        return suite.judge(suite.release, denied, suite.verdicts(suite.release)), "deny"

    def malicious_hub_artifact() -> tuple[Decision, str]:
        model = suite.work / "hub" / "org-tiny"
        _torch_checkpoint_with_payload(model)
        intake = suite.policy(
            "intake",
            suite.repo,
            builders=[],
            sources=[],
            require=dict.fromkeys(ATTESTED, False),
            reproducibility={"verdicts": 0},
            deny={},
        )
        return suite.judge(model, intake, []), "deny"

    def unsafe_deserialization() -> tuple[Decision, str]:
        policy = suite.policy("owner-pickle", suite.bad_repo, deployment={"custom_code": False})
        return suite.judge(suite.bad_release, policy, suite.verdicts(suite.bad_release)), "deny"

    def forged_provenance() -> tuple[Decision, str]:
        copy = suite.copy(suite.release, "forged")
        path = copy / "provenance.intoto.json"
        envelope = json.loads(path.read_text())
        statement = payload_of(path)
        statement["predicate"]["runDetails"]["builder"]["id"] = (
            "https://bitwright.dev/builders/ci/v1"
        )
        envelope["payload"] = base64.b64encode(canonical_json(statement)).decode()
        path.write_bytes(canonical_json(envelope))
        return suite.judge(copy, honest_policy, suite.verdicts(suite.release)), "deny"

    def attacker_signed() -> tuple[Decision, str]:
        copy = suite.copy(suite.release, "attacker")
        path = copy / "provenance.intoto.json"
        envelope = sign_envelope(
            canonical_json(payload_of(path)),
            "application/vnd.in-toto+json",
            load_signer(suite.stranger.private_path),
        )
        path.write_bytes(canonical_json(envelope))
        return suite.judge(copy, honest_policy, suite.verdicts(suite.release)), "deny"

    def swapped_model() -> tuple[Decision, str]:
        copy = suite.copy(suite.release, "swapped")
        (copy / "artifacts" / "out" / "second.json").write_text('{"sum": 42.0}')
        return suite.judge(copy, honest_policy, suite.verdicts(suite.release)), "deny"

    def stale_reproduction() -> tuple[Decision, str]:
        old = suite.verdicts(suite.release, age_days=120)
        return suite.judge(suite.release, honest_policy, old), "deny"

    def backdoored_model() -> tuple[Decision, str]:
        # Honest process, poisoned behaviour: the weights are data every control accepts.
        return suite.judge(suite.release, honest_policy, suite.verdicts(suite.release)), "deny"

    return {
        "honest": honest,
        "compromised-dependency": compromised_dependency,
        "malicious-hub-artifact": malicious_hub_artifact,
        "unsafe-deserialization": unsafe_deserialization,
        "forged-provenance": forged_provenance,
        "attacker-signed": attacker_signed,
        "swapped-model": swapped_model,
        "stale-reproduction": stale_reproduction,
        "backdoored-model": backdoored_model,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="Print the rows as JSON too.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bitwright-gate-bench-") as scratch:
        suite = Suite(Path(scratch))
        for name, run in scenarios(suite).items():
            decision, wanted = run()
            fired = [r.id for r in decision.failed]
            got = "admit" if decision.admitted else "deny"
            rows.append(
                {
                    "scenario": name,
                    "decision": got,
                    "should": wanted,
                    "controls": fired,
                    "first": decision.failed[0].summary if fired else "",
                }
            )
        policy = suite.work / "strict.policy.yaml"
        vsas = suite.verdicts(suite.release)
        gate = [BITWRIGHT, "gate", str(suite.release), "--policy", str(policy)]
        gate += [part for vsa in vsas for part in ("--vsa", str(vsa))]
        verify = [BITWRIGHT, "verify", str(suite.release), "--key", str(suite.owner(suite.repo))]
        gate_s, verify_s = best_command(gate, args.repeat), best_command(verify, args.repeat)
    width = max(len(r["scenario"]) for r in rows)
    print(f"{'scenario':<{width}}  decision  controls that fired")
    for row in rows:
        fired = ", ".join(row["controls"]) or "-"
        mark = "" if row["decision"] == row["should"] else "  (no evidence the gate has could tell)"
        print(f"{row['scenario']:<{width}}  {row['decision']:<8}  {fired}{mark}")
    print(
        f"\ngate vs verify as commands, honest release, best of {args.repeat}: "
        f"{gate_s:.2f} s vs {verify_s:.2f} s = {gate_s / verify_s:.2f}x"
    )
    if args.json:
        print(json.dumps({"rows": rows, "gate_s": gate_s, "verify_s": verify_s}, indent=2))


if __name__ == "__main__":
    main()
