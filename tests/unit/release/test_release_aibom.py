"""The AI BOM: a valid CycloneDX 1.6 ML-BOM, byte-stable, and readable back by a verifier."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bitwright.digest import sha256_file
from bitwright.errors import OperationalError, VerificationFailed
from bitwright.model import DataPin, Sha256
from bitwright.pins.environment import installed_packages
from bitwright.release import (
    ModelFacts,
    ReleasedFile,
    aibom_subjects,
    build_aibom,
    flatten_metrics,
    validate_aibom,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
WHEN = datetime.fromtimestamp(1_700_000_000, UTC)
PACKAGES = ("numpy==2.4.6", "safetensors==0.8.0", "torch==2.13.0+cpu", "typing_extensions==4.15.0")
METRICS_JSON = {"accuracy": 0.9777777777777777, "loss": 0.08, "per_class": {"3": {"f1": 1.0}}}


def _facts(release: Path) -> ModelFacts:
    artifacts = release / "artifacts"
    return ModelFacts(
        name="digits-mlp",
        version="0.1.0",
        task="classification",
        architecture="multilayer perceptron 64-128-10",
        architecture_family="multilayer perceptron",
        framework="pytorch 2.13.0+cpu",
        files={f"artifacts/{p.name}": sha256_file(p) for p in sorted(artifacts.iterdir())},
        metrics=flatten_metrics(METRICS_JSON),
        datasets=[
            DataPin(
                path="data/raw",
                dvc_md5="9a0364b9e99bb480dd25e1f0284c8555.dir",
                sha256=Sha256("09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"),
                size=71_432,
                nfiles=1,
                remote_url="/srv/dvc remote",
            )
        ],
        licence="Apache-2.0",
        description="Handwritten digit classifier of the bitwright reference pipeline.",
        dataset_licences={"data/raw": "CC-BY-4.0"},
    )


def _bom(
    facts: ModelFacts | list[ModelFacts],
    *,
    packages: tuple[str, ...] = PACKAGES,
    seed: str = COMMIT,
    files: tuple[ReleasedFile, ...] = (),
) -> str:
    return build_aibom(
        facts,
        files=files,
        packages=packages,
        python="CPython 3.11.7",
        source_uri="git@github.com:example/digits.git",
        commit=COMMIT,
        serial_seed=seed,
        timestamp=WHEN,
    )


def _components(text: str) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in json.loads(text)["components"]}


def test_bom_validates_and_describes_model_data_and_software(release_dir: Path) -> None:
    facts = _facts(release_dir)
    text = _bom(facts)

    validate_aibom(text)
    components = _components(text)
    model = components["model:digits-mlp@0.1.0"]
    assert model["type"] == "machine-learning-model"
    card = model["modelCard"]
    assert card["modelParameters"]["task"] == "classification"
    assert card["modelParameters"]["datasets"] == [{"ref": "data:data/raw"}]
    metrics = {m["type"]: m["value"] for m in card["quantitativeAnalysis"]["performanceMetrics"]}
    assert metrics == {"accuracy": "0.9777777777777777", "loss": "0.08", "per_class.3.f1": "1.0"}
    data = components["data:data/raw"]
    assert data["type"] == "data"
    assert data["hashes"] == [{"alg": "SHA-256", "content": facts.datasets[0].sha256}]
    properties = {p["name"]: p["value"] for p in data["properties"]}
    assert properties["bitwright:dvc:md5"] == "9a0364b9e99bb480dd25e1f0284c8555.dir"
    assert data["licenses"] == [{"license": {"id": "CC-BY-4.0"}}]
    assert data["data"][0]["contents"]["url"] == "/srv/dvc%20remote"
    torch = components["pkg:pypi/torch@2.13.0%2Bcpu"]
    assert torch["type"] == "library"
    assert {"name": "bitwright:role", "value": "framework"} in torch["properties"]
    assert components["pkg:pypi/typing-extensions@4.15.0"]["name"] == "typing_extensions"
    vcs = model["externalReferences"][0]
    assert vcs["url"] == "ssh://git@github.com/example/digits.git"
    graph = {d["ref"]: d.get("dependsOn", []) for d in json.loads(text)["dependencies"]}
    assert graph["model:digits-mlp@0.1.0"] == ["data:data/raw", "pkg:pypi/torch@2.13.0%2Bcpu"]


def test_subjects_are_the_model_files_a_verifier_rehashes(release_dir: Path) -> None:
    facts = _facts(release_dir)

    subjects = aibom_subjects(_bom(facts))

    assert subjects == {
        f"artifacts/{p.name}": sha256_file(p) for p in (release_dir / "artifacts").iterdir()
    }


def test_a_rewritten_file_digest_breaks_the_model_digest(release_dir: Path) -> None:
    document = json.loads(_bom(_facts(release_dir)))
    model = next(c for c in document["components"] if c["type"] == "machine-learning-model")
    model["components"][0]["hashes"][0]["content"] = "f" * 64
    forged = json.dumps(document)

    validate_aibom(forged)  # still a well-formed BOM ...
    with pytest.raises(VerificationFailed, match="digest disagrees with its files"):
        aibom_subjects(forged)  # ... that contradicts itself


def test_same_inputs_give_the_same_bytes_even_in_another_process(release_dir: Path) -> None:
    facts = _facts(release_dir)
    text = _bom(facts)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from tests.unit.release.test_release_aibom import _bom, _facts
        sys.stdout.write(_bom(_facts(Path({str(release_dir)!r}))))
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[3],
        timeout=120,
        check=True,
    )

    assert other.stdout == text
    assert _bom(facts) == text
    assert (
        json.loads(_bom(facts, seed="another"))["serialNumber"] != json.loads(text)["serialNumber"]
    )
    assert json.loads(text)["metadata"]["timestamp"] == "2023-11-14T22:13:20+00:00"


def test_every_installed_distribution_becomes_a_valid_library(release_dir: Path) -> None:
    packages = installed_packages()

    text = _bom(_facts(release_dir), packages=packages)

    validate_aibom(text)
    purls = {c.get("purl") for c in json.loads(text)["components"]}
    assert len([p for p in purls if p and p.startswith("pkg:pypi/")]) == len(packages)


def test_corrupted_bom_fails_validation_with_one_line(release_dir: Path) -> None:
    document = json.loads(_bom(_facts(release_dir)))
    document["components"][0]["type"] = "machine-learning-modle"

    with pytest.raises(VerificationFailed) as failure:
        validate_aibom(json.dumps(document))
    message = failure.value.message
    assert message.startswith("aibom.cdx.json breaks the CycloneDX 1.6 schema at components/0")
    assert "\n" not in message
    with pytest.raises(VerificationFailed, match="aibom.cdx.json is not JSON"):
        validate_aibom('{"bomFormat": "CycloneDX", ')


def test_unknown_field_is_refused_by_the_strict_schema(release_dir: Path) -> None:
    document = json.loads(_bom(_facts(release_dir)))
    document["metadata"]["trustMe"] = True

    with pytest.raises(VerificationFailed, match="at metadata: Additional properties"):
        validate_aibom(json.dumps(document))


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_validation_needs_no_network(release_dir: Path, tmp_path: Path) -> None:
    bom = tmp_path / "aibom.cdx.json"
    bom.write_text(_bom(_facts(release_dir)))
    script = (
        "import sys; from pathlib import Path; from bitwright.release import validate_aibom; "
        "validate_aibom(Path(sys.argv[1]).read_text()); print('valid')"
    )
    if subprocess.run(["unshare", "-rn", "true"], check=False).returncode != 0:
        pytest.skip("this machine forbids network namespaces")

    offline = subprocess.run(
        ["unshare", "-rn", sys.executable, "-c", script, str(bom)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.strip() == "valid"


def test_facts_that_cannot_describe_a_model_are_refused(release_dir: Path) -> None:
    facts = _facts(release_dir)

    with pytest.raises(OperationalError, match="has no timezone"):
        build_aibom(
            facts,
            packages=PACKAGES,
            python="CPython 3.11.7",
            source_uri="",
            commit=COMMIT,
            serial_seed=COMMIT,
            timestamp=datetime(2024, 1, 1),  # naive: no timezone
        )
    with pytest.raises(OperationalError, match="'-e /src/bitwright' is not 'name==version'"):
        _bom(facts, packages=("-e /src/bitwright",))


def test_flatten_metrics_names_nested_values_by_path() -> None:
    flat = flatten_metrics({"loss": 0.5, "per_class": {"0": {"f1": 1.0}}, "ok": True, "k": [3, 4]})

    assert flat == {"k.0": 3, "k.1": 4, "loss": 0.5, "ok": "true", "per_class.0.f1": 1.0}


def test_a_malformed_timestamp_is_refused(release_dir: Path) -> None:
    """rfc3339-validator is pinned for this: jsonschema skips date-time without it."""
    document = json.loads(_bom(_facts(release_dir)))
    document["metadata"]["timestamp"] = "yesterday at noon"
    with pytest.raises(VerificationFailed, match="at metadata/timestamp: .* is not a 'date-time'"):
        validate_aibom(json.dumps(document))


def test_models_are_models_and_metrics_and_plots_are_data(release_dir: Path) -> None:
    facts = _facts(release_dir)
    model_file = "artifacts/model.safetensors"
    classifier = ModelFacts(
        **{**facts.__dict__, "files": {model_file: facts.files[model_file]}},
    )
    scaler = ModelFacts(
        **{
            **facts.__dict__,
            "name": "scaler",
            "framework": "",
            "files": {"artifacts/scaler.pkl": Sha256("a" * 64)},
            "stage": "train",
            "format": "pickle",
            "artifact": "scaler",
            "labels": ("preprocessing",),
        }
    )
    others = [
        ReleasedFile("artifacts/metrics.json", facts.files["artifacts/metrics.json"], "metrics",
                     "evaluate"),
        ReleasedFile("dvclive/plots/loss.tsv", Sha256("b" * 64), "plots", "train"),
        ReleasedFile("artifacts/MODEL_CARD.md", facts.files["artifacts/MODEL_CARD.md"]),
    ]  # fmt: skip
    text = _bom([classifier, scaler], files=tuple(others))
    validate_aibom(text)
    components = _components(text)
    assert components["released:artifacts/metrics.json"]["type"] == "data"
    assert components["released:dvclive/plots/loss.tsv"]["type"] == "data"
    assert components["released:artifacts/MODEL_CARD.md"]["type"] == "file"
    stage = {
        p["name"]: p["value"] for p in components["released:artifacts/metrics.json"]["properties"]
    }
    assert stage == {"bitwright:role": "metrics", "bitwright:stage": "evaluate"}
    second = components["model:scaler@0.1.0"]
    properties = [(p["name"], p["value"]) for p in second["properties"]]
    assert ("bitwright:stage", "train") in properties and (
        "bitwright:format",
        "pickle",
    ) in properties
    assert ("bitwright:label", "preprocessing") in properties
    assert aibom_subjects(text) == {
        model_file: facts.files[model_file],
        "artifacts/scaler.pkl": "a" * 64,
    }
    graph = {d["ref"]: d.get("dependsOn", []) for d in json.loads(text)["dependencies"]}
    assert graph["model:scaler@0.1.0"] == ["data:data/raw"]  # no framework said, none invented


def test_a_bom_without_a_model_tells_the_verifier(release_dir: Path) -> None:
    document = json.loads(_bom(_facts(release_dir)))
    document["components"] = [
        c for c in document["components"] if c["type"] != "machine-learning-model"
    ]
    with pytest.raises(VerificationFailed, match="it describes no model"):
        aibom_subjects(json.dumps(document))
    with pytest.raises(OperationalError, match="no model to describe"):
        _bom([])
