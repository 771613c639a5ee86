"""`bitwright build` with third-party inputs: pins recorded, unpinned reads named, drift refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from tests.integration.project import BITWRIGHT, commit, make_project, sh

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_pinned_inputs_are_resolved_dependencies_and_unpinned_ones_are_named(
    tmp_path: Path,
) -> None:
    repo = make_project(tmp_path)
    upstream = tmp_path / "upstream" / "embeddings"
    upstream.mkdir(parents=True)
    (upstream / "vectors.txt").write_text("0.1 0.2\n")
    (repo / ".gitignore").write_text(".bitwright/\nthird_party/\nvendor/\n")
    (repo / "vendor").mkdir()
    (repo / "vendor" / "extra.txt").write_text("copied by hand\n")
    sh(BITWRIGHT, "pin", "add", str(upstream), cwd=repo)
    dvc_yaml = (repo / "dvc.yaml").read_text()
    (repo / "dvc.yaml").write_text(
        dvc_yaml.replace(
            "      - out/first.json\n    outs:\n      - out/second.json",
            "      - out/first.json\n      - third_party/embeddings\n      - vendor/extra.txt\n"
            "    outs:\n      - out/second.json",
        )
    )
    commit(repo, "third-party inputs")

    done = sh(BITWRIGHT, "build", cwd=repo, check=False)

    assert done.returncode == 0, done.stderr
    assert "stage second reads unpinned third-party input vendor/extra.txt" in done.stderr
    envelope = json.loads((repo / ".bitwright/attestations/provenance.intoto.json").read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    (pinned,) = [d for d in deps if d["name"] == "third_party/embeddings"]
    pins = json.loads((repo / "thirdparty.pins.json").read_text())["pins"]
    assert pinned["digest"] == {"sha256": pins["third_party/embeddings"]["sha256"]}
    assert pinned["uri"] == upstream.resolve().as_uri()
    assert pinned["annotations"] == {"pinning": "tofu", "kind": "model"}

    (repo / "third_party" / "embeddings" / "vectors.txt").write_text("9.9 9.9\n")
    drifted = sh(BITWRIGHT, "build", cwd=repo, check=False)

    assert drifted.returncode == 1
    assert "third_party/embeddings/vectors.txt: changed in the local" in drifted.stderr
