"""A rebuilder fetches the pinned third-party inputs the clone lacks, and checks them.

The project's ``third_party/embeddings`` is TOFU-pinned from a directory outside it and
git-ignored, as downloaded models are: a clone of the source has the pins file, not the files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.integration.project import BITWRIGHT, add_third_party_input, make_project, sh

from bitwright.attest import generate_keypair, load_public_key
from bitwright.attest.trust import TrustPolicy
from bitwright.builder.paths import ProjectPaths
from bitwright.digest import tree_sha256
from bitwright.pipeline import load_pipeline
from bitwright.rebuild.compare import Verdict
from bitwright.rebuild.fetch import fetch_third_party
from bitwright.rebuild.flow import rebuild_release
from bitwright.verify import verify_release

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_pinned_input_is_fetched_from_its_source_and_a_changed_source_is_different(
    tmp_path: Path,
) -> None:
    repo = make_project(tmp_path)
    upstream = add_third_party_input(repo, tmp_path)
    sh(BITWRIGHT, "build", cwd=repo)
    release = tmp_path / "release"
    sh(BITWRIGHT, "release", "--out", str(release), cwd=repo)
    owner = TrustPolicy(keys=(load_public_key(ProjectPaths(repo).owner_pub),))
    verifier = generate_keypair(tmp_path / "verifier", name="verifier").private_path

    report = rebuild_release(
        release, owner, verifier_key=verifier, out=tmp_path / "out", workspace=tmp_path / "ws"
    )
    assert report.verdict is Verdict.REPRODUCED, report.reason
    fetched = tmp_path / "ws" / "third_party" / "embeddings" / "vectors.txt"
    assert fetched.read_text() == "0.1 0.2\n"

    # a pins file at odds with the provenance (which the owner signed) is named
    pins_file = tmp_path / "ws" / "thirdparty.pins.json"
    pins = json.loads(pins_file.read_text())
    pin = pins["pins"]["third_party/embeddings"]
    pin["files"]["vectors.txt"]["sha256"] = "0" * 64
    pin["sha256"] = tree_sha256({"vectors.txt": "0" * 64})  # a consistent pin, not the built one
    pins_file.write_text(json.dumps(pins))
    statement = verify_release(release, owner).trusted.statement
    _, problems = fetch_third_party(tmp_path / "ws", load_pipeline(tmp_path / "ws"), statement)
    assert problems[0].startswith("third_party/embeddings: the provenance records sha256 ")

    # the source now serves other bytes than were pinned: nothing runs, the file is named
    (upstream / "vectors.txt").write_text("0.9 0.9\n")
    changed = rebuild_release(release, owner, workspace=tmp_path / "ws2")
    assert changed.verdict is Verdict.DIFFERENT
    assert "third_party/embeddings/vectors.txt: changed" in changed.reason
    assert changed.stages == ()

    # the source is gone: an operational error that names it
    shutil.rmtree(upstream)
    done = sh(
        BITWRIGHT, "rebuild", str(release), "--key", str(ProjectPaths(repo).owner_pub),
        "--workspace", str(tmp_path / "ws3"), cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert str(upstream) in done.stderr and "not found" in done.stderr
