"""The gate on a release of a real build: admit the honest one, deny each broken claim by name.

One tiny project (git, DVC, sealed stages, a TOFU-pinned third-party input) is built and
released once per module; each test judges a private copy. Rebuilders' VSAs are statements
signed with throwaway verifier keys, as ``bitwright rebuild --out`` signs them, without
rebuilding each time.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.project import BITWRIGHT, add_third_party_input, make_project, sh
from tests.unit.verify.release_factory import resign_provenance, signed_vsa

from bitwright.attest import generate_keypair, load_public_key, load_signer
from bitwright.attest.keys import KeyPair
from bitwright.errors import VerificationFailed
from bitwright.gate.evaluate import Decision, evaluate
from bitwright.gate.policy import load_policy
from bitwright.gate.record import read_decision
from bitwright.gate.verdicts import VERDICTS_DIR
from bitwright.release.bundle import bundle_release
from bitwright.verify import check_candidate

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass(frozen=True)
class Built:
    repo: Path
    release: Path
    owner: KeyPair
    verifiers: dict[str, KeyPair]
    stranger: KeyPair
    gate: KeyPair
    builder: str
    subjects: dict[str, str]
    build_log: str
    upstream: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("gate-integration")
    repo = make_project(base)
    upstream = add_third_party_input(repo, base, unpinned=True)
    done = sh(BITWRIGHT, "build", cwd=repo)
    release = bundle_release(repo, base / "release", check=check_candidate).directory
    keys = base / "keys"
    statement = _payload(release / "provenance.intoto.json")
    return Built(
        repo=repo,
        release=release,
        owner=KeyPair(
            repo / ".bitwright/keys/owner.key", repo / ".bitwright/keys/owner.pub", "", ""
        ),
        verifiers={n: generate_keypair(keys, name=n) for n in ("alice", "bob", "carol")},
        stranger=generate_keypair(keys, name="stranger"),
        gate=generate_keypair(keys, name="gate"),
        builder=statement["predicate"]["runDetails"]["builder"]["id"],
        subjects={s["name"]: s["digest"]["sha256"] for s in statement["subject"]},
        build_log=done.stderr,
        upstream=upstream,
    )


@pytest.fixture
def release(built: Built, tmp_path: Path) -> Path:
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    return copy


def _payload(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))
    return data


def _pem(pair: KeyPair) -> dict[str, str]:
    return {"name": pair.public_path.stem, "pem": pair.public_path.read_text()}


def write_policy(built: Built, tmp_path: Path, **changes: Any) -> Path:
    """A strict policy the honest release meets; ``changes`` replace parts of its profile."""
    profile: dict[str, Any] = {
        "signers": {"keys": [_pem(built.owner)]},
        "builders": [built.builder],
        "sources": ["*"],
        "third_party_pins": str(built.repo / "thirdparty.pins.json"),
        "reproducibility": {
            "verdicts": 2,
            "verifiers": [_pem(built.verifiers[n]) for n in ("alice", "bob", "carol")],
            "max_age_days": 30,
        },
        "deployment": {"formats": ["json", "text"], "custom_code": False},
        "deny": {"packages": ["leftpad==0.0.1"]},
    }
    profile.update(changes)
    policy = {
        "apiVersion": "bitwright.dev/gate-policy/v1",
        "default_profile": "production",
        "profiles": {"production": profile},
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def vsa(
    built: Built,
    signer: str,
    tmp_path: Path,
    *,
    passed: bool = True,
    age_days: float = 1,
    subjects: dict[str, str] | None = None,
) -> Path:
    """A rebuilder's signed VSA over the release's subjects."""
    key = built.verifiers[signer].private_path if signer in built.verifiers else Path(signer)
    path = tmp_path / f"{key.stem}-{passed}-{age_days}.intoto.json"
    age = dt.timedelta(days=age_days)
    return signed_vsa(subjects or built.subjects, key, path, passed=passed, age=age)


def judge(built: Built, target: Path, policy: Path, *vsas: Path) -> Decision:
    return evaluate(target, load_policy(policy), vsa_files=vsas)


def failed(decision: Decision) -> dict[str, str]:
    return {r.id: r.summary for r in decision.requirements if not r.passed}


def two_verdicts(built: Built, tmp_path: Path) -> list[Path]:
    return [vsa(built, "alice", tmp_path), vsa(built, "bob", tmp_path)]


# -- the build: pinned inputs recorded, unpinned ones named, drift refused ------------------------


def test_the_build_records_its_pin_and_names_the_unpinned_read(built: Built) -> None:
    assert "stage second reads unpinned third-party input vendor/extra.txt" in built.build_log
    statement = _payload(built.release / "provenance.intoto.json")
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    (pinned,) = [d for d in deps if d["name"] == "third_party/embeddings"]
    pins = json.loads((built.repo / "thirdparty.pins.json").read_text())["pins"]
    assert pinned["digest"] == {"sha256": pins["third_party/embeddings"]["sha256"]}
    assert pinned["uri"] == built.upstream.resolve().as_uri()
    assert pinned["annotations"] == {"pinning": "tofu", "kind": "model"}


def test_a_build_refuses_a_pinned_input_that_drifted(built: Built, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(built.repo.parent, copy, symlinks=True)
    repo = copy / built.repo.name
    (repo / "third_party" / "embeddings" / "vectors.txt").write_text("9.9 9.9\n")

    drifted = sh(BITWRIGHT, "build", cwd=repo, check=False)

    assert drifted.returncode == 1
    assert "third_party/embeddings/vectors.txt: changed in the local" in drifted.stderr


# -- admit --------------------------------------------------------------------------------------


def test_an_honest_release_with_two_reproductions_is_admitted(
    built: Built, release: Path, tmp_path: Path
) -> None:
    decision = judge(built, release, write_policy(built, tmp_path), *two_verdicts(built, tmp_path))

    assert failed(decision) == {}
    assert decision.admitted
    ids = [r.id for r in decision.requirements]
    assert ids[:4] == ["provenance", "layout-and-links", "model-signature", "aibom"]
    assert {"third-party-pinned", "reproducibility", "no-different-verdict"} <= set(ids)


def test_the_command_admits_and_signs_a_record_the_gate_key_verifies(
    built: Built, release: Path, tmp_path: Path
) -> None:
    policy = write_policy(built, tmp_path)
    for path in two_verdicts(built, tmp_path):
        added = sh(BITWRIGHT, "vsa", "add", str(release), str(path), cwd=tmp_path)
        assert "added" in added.stderr
    out = tmp_path / "decision"

    done = sh(
        BITWRIGHT, "gate", str(release), "--policy", str(policy), "--key",
        str(built.gate.private_path), "--out", str(out), "--json", cwd=tmp_path, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["decision"] == "admit"
    record = read_decision(out / "decision.intoto.json", [load_public_key(built.gate.public_path)])
    assert record.predicate.decision == "admit"
    assert record.predicate.policy.digest["sha256"] == load_policy(policy).sha256
    assert {s.name: s.digest["sha256"] for s in record.subject if s.digest} == built.subjects
    with pytest.raises(VerificationFailed):
        read_decision(out / "decision.intoto.json", [load_public_key(built.stranger.public_path)])
    assert "# Gate decision: ADMIT" in (out / "decision.md").read_text()
    claims = json.loads((out / "claims.json").read_text())
    assert {c["claim"]: c["status"] for c in claims["claims"]}["reproducibility"] == "supported"


def test_verify_still_passes_with_verdicts_kept_in_the_release(
    built: Built, release: Path, tmp_path: Path
) -> None:
    sh(BITWRIGHT, "vsa", "add", str(release), str(vsa(built, "alice", tmp_path)), cwd=tmp_path)
    assert any((release / VERDICTS_DIR).iterdir())

    done = sh(BITWRIGHT, "verify", str(release), "--key", str(built.owner.public_path),
              cwd=tmp_path, check=False)  # fmt: skip

    assert done.returncode == 0, done.stderr


# -- deny, each naming its requirement ----------------------------------------------------------


def test_an_untrusted_signer_is_denied(built: Built, release: Path, tmp_path: Path) -> None:
    policy = write_policy(built, tmp_path, signers={"keys": [_pem(built.stranger)]})

    reasons = failed(judge(built, release, policy, *two_verdicts(built, tmp_path)))

    assert "provenance" in reasons and "signature" in reasons["provenance"]
    assert "layout-and-links" in reasons


def test_an_unlisted_builder_is_denied(built: Built, release: Path, tmp_path: Path) -> None:
    policy = write_policy(built, tmp_path, builders=["https://bitwright.dev/builders/ci/v1"])

    reasons = failed(judge(built, release, policy, *two_verdicts(built, tmp_path)))

    assert reasons == {"builder": f"builder {built.builder} is not an allowed builder"}


def _resign(built: Built, release: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    owner = load_signer(built.owner.private_path)
    resign_provenance(_AsRelease(release), owner, edit)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _AsRelease:
    root: Path

    @property
    def layout(self) -> Any:
        from bitwright.release.layout import ReleaseLayout

        return ReleaseLayout(self.root)


def test_a_dirty_build_is_denied(built: Built, release: Path, tmp_path: Path) -> None:
    def dirty(statement: dict[str, Any]) -> None:
        internal = statement["predicate"]["buildDefinition"]["internalParameters"]
        internal["dirty"] = True
        internal["dirtyPaths"] = ["stages/first.py"]

    _resign(built, release, dirty)

    reasons = failed(judge(built, release, write_policy(built, tmp_path),
                           *two_verdicts(built, tmp_path)))  # fmt: skip

    assert reasons == {"clean-build": "the build ran on a dirty tree: stages/first.py"}


def test_a_missing_aibom_is_denied(built: Built, release: Path, tmp_path: Path) -> None:
    (release / "aibom.cdx.json").unlink()

    reasons = failed(judge(built, release, write_policy(built, tmp_path),
                           *two_verdicts(built, tmp_path)))  # fmt: skip

    assert list(reasons) == ["aibom"]
    assert "no aibom.cdx.json" in reasons["aibom"]


def test_a_pin_mismatch_is_denied(built: Built, release: Path, tmp_path: Path) -> None:
    pins = json.loads((built.repo / "thirdparty.pins.json").read_text())
    entry = pins["pins"]["third_party/embeddings"]
    entry["files"]["vectors.txt"]["sha256"] = "f" * 64
    entry["sha256"] = _tree({k: v["sha256"] for k, v in entry["files"].items()})
    trusted = tmp_path / "trusted.pins.json"
    trusted.write_text(json.dumps(pins))
    policy = write_policy(built, tmp_path, third_party_pins=str(trusted))

    reasons = failed(judge(built, release, policy, *two_verdicts(built, tmp_path)))

    assert list(reasons) == ["third-party-pinned"]
    assert reasons["third-party-pinned"].startswith("third-party input third_party/embeddings:")


def _tree(files: dict[str, str]) -> str:
    from bitwright.digest import tree_sha256
    from bitwright.model import Sha256

    return tree_sha256({k: Sha256(v) for k, v in files.items()})


def test_a_pickle_payload_is_denied(built: Built, release: Path, tmp_path: Path) -> None:
    (release / "artifacts" / "out" / "weights.pkl").write_bytes(b"cposix\nsystem\n(Vid\ntR.")

    reasons = failed(judge(built, release, write_policy(built, tmp_path),
                           *two_verdicts(built, tmp_path)))  # fmt: skip

    assert "imports posix.system" in reasons["scan-clean"]
    assert "out/weights.pkl" in reasons["scan-clean"]


def test_custom_code_is_denied(built: Built, release: Path, tmp_path: Path) -> None:
    (release / "artifacts" / "out" / "modeling.py").write_text("import os\n")

    reasons = failed(judge(built, release, write_policy(built, tmp_path),
                           *two_verdicts(built, tmp_path)))  # fmt: skip

    assert reasons["no-custom-code"].startswith("out/modeling.py: custom-code")


def test_one_verdict_where_two_are_required_is_denied(
    built: Built, release: Path, tmp_path: Path
) -> None:
    one = [vsa(built, "alice", tmp_path), vsa(built, "alice", tmp_path, age_days=2)]

    reasons = failed(judge(built, release, write_policy(built, tmp_path), *one))

    assert reasons == {
        "reproducibility": "1 REPRODUCED verdict(s) from distinct trusted verifiers, 2 required"
    }


def test_a_stale_verdict_is_denied(built: Built, release: Path, tmp_path: Path) -> None:
    verdicts = [vsa(built, "alice", tmp_path), vsa(built, "bob", tmp_path, age_days=45)]

    reasons = failed(judge(built, release, write_policy(built, tmp_path), *verdicts))

    assert list(reasons) == ["reproducibility"]
    assert "1 older than 30 days" in reasons["reproducibility"]


def test_a_different_verdict_denies_even_beside_two_reproductions(
    built: Built, release: Path, tmp_path: Path
) -> None:
    verdicts = [*two_verdicts(built, tmp_path), vsa(built, "carol", tmp_path, passed=False)]

    reasons = failed(judge(built, release, write_policy(built, tmp_path), *verdicts))

    assert list(reasons) == ["no-different-verdict"]
    assert "found it DIFFERENT" in reasons["no-different-verdict"]


def test_verdicts_of_strangers_or_other_releases_do_not_count(
    built: Built, release: Path, tmp_path: Path
) -> None:
    other = {name: "0" * 64 for name in built.subjects}
    verdicts = [
        vsa(built, "alice", tmp_path),
        vsa(built, str(built.stranger.private_path), tmp_path),
        vsa(built, "bob", tmp_path, subjects=other),
    ]

    decision = judge(built, release, write_policy(built, tmp_path), *verdicts)

    assert list(failed(decision)) == ["reproducibility"]
    evidence = next(r for r in decision.requirements if r.id == "reproducibility").evidence
    problems = sorted(v["problem"] for v in evidence["verdicts"] if v["problem"])
    assert problems == [
        "its subjects are not this release's artifacts",
        "signed by no trusted verifier key",
    ]


def test_vsa_add_refuses_a_verdict_on_other_artifacts(
    built: Built, release: Path, tmp_path: Path
) -> None:
    other = {name: "0" * 64 for name in built.subjects}

    foreign = vsa(built, "bob", tmp_path, subjects=other)

    done = sh(BITWRIGHT, "vsa", "add", str(release), str(foreign), cwd=tmp_path, check=False)

    assert done.returncode == 1
    assert "has another sha256 than the release's artifact" in done.stderr
    assert not (release / VERDICTS_DIR).exists()


def test_the_command_denies_with_exit_1_naming_the_requirement(
    built: Built, release: Path, tmp_path: Path
) -> None:
    policy = write_policy(built, tmp_path)

    done = subprocess.run(
        [BITWRIGHT, "gate", str(release), "--policy", str(policy)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert done.returncode == 1
    assert "deny: 1 requirement(s) failed; reproducibility: 0 REPRODUCED" in done.stderr
