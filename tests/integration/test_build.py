"""`bitwright build` end to end on a tiny real project: links, layout, in-toto-verify, failures."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from tests.integration.project import BIN, BITWRIGHT, make_project, set_config, sh

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One honest build, shared read-only; tests that change it work on a copy."""
    repo = make_project(tmp_path_factory.mktemp("built"))
    rc, err = build(repo)
    assert rc == 0, err
    return repo


def copy_of(repo: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(repo.parent, target, symlinks=True)
    return target / repo.name


def build(repo: Path, *args: str) -> tuple[int, str]:
    done = sh(BITWRIGHT, "build", *args, cwd=repo, check=False)
    return done.returncode, done.stderr


def links(repo: Path) -> dict[str, Path]:
    found = (repo / ".bitwright" / "attestations" / "links").glob("*.link")
    return {p.name.split(".")[0]: p for p in found}


def intoto_verify(repo: Path, attestations: Path | None = None) -> int:
    att = attestations or repo / ".bitwright" / "attestations"
    done = sh(
        str(BIN / "in-toto-verify"),
        "--layout",
        "root.layout",
        "--verification-keys",
        str(repo / ".bitwright" / "keys" / "owner.pub"),
        "--link-dir",
        "links",
        cwd=att,
        check=False,
    )
    return done.returncode


def payload(link: Path) -> dict:
    envelope = json.loads(link.read_text())
    return json.loads(base64.b64decode(envelope["payload"]))


def test_honest_build_is_accepted_by_in_toto_verify(built: Path) -> None:
    assert set(links(built)) == {"first", "second"}
    assert (built / ".bitwright" / "attestations" / "root.layout").is_file()
    assert (built / ".bitwright" / "attestations" / "provenance.intoto.json").is_file()
    assert intoto_verify(built) == 0
    first = payload(links(built)["first"])
    assert set(first["products"]) == {"out/first.json"}
    assert "data/raw/input.txt" in first["materials"]
    assert "params.yaml" in first["materials"]


def test_edited_product_and_foreign_key_are_rejected(built: Path, tmp_path: Path) -> None:
    att = tmp_path / "attestations"
    shutil.copytree(built / ".bitwright" / "attestations", att)
    project = built
    link = att / "links" / links(built)["first"].name
    original = link.read_bytes()
    envelope = json.loads(original)
    body = json.loads(base64.b64decode(envelope["payload"]))
    body["products"]["out/first.json"]["sha256"] = "0" * 64
    envelope["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    link.write_text(json.dumps(envelope))
    assert intoto_verify(project, att) != 0
    link.write_bytes(original)
    assert intoto_verify(project, att) == 0

    # the same link content, signed by a key the layout does not name
    from bitwright.attest import generate_keypair, keyid8, load_signer, sign_envelope

    other = generate_keypair(tmp_path / "other")
    signer = load_signer(other.private_path)
    forged = sign_envelope(base64.b64decode(envelope["payload"]), envelope["payloadType"], signer)
    link.unlink()
    (link.parent / f"first.{keyid8(signer.public_key)}.link").write_text(json.dumps(forged))
    assert intoto_verify(project, att) != 0


def test_two_builds_of_one_commit_are_bitwise_identical(built: Path, tmp_path: Path) -> None:
    first = {p: (built / p).read_bytes() for p in ("out/first.json", "out/second.json")}
    products = {k: payload(v)["products"] for k, v in links(built).items()}
    project = copy_of(built, tmp_path)  # another directory, the same commit
    assert build(project, "--force")[0] == 0
    assert {p: (project / p).read_bytes() for p in first} == first
    assert {k: payload(v)["products"] for k, v in links(project).items()} == products


def test_dirty_tree_and_missing_key_are_refused(project: Path) -> None:
    (project / "stages" / "first.py").write_text("# edited\n")
    rc, err = build(project)
    assert rc == 3
    assert "stages/first.py" in err and "--allow-dirty" in err
    assert "Traceback" not in err
    assert links(project) == {}
    sh("git", "checkout", "stages/first.py", cwd=project)
    rc, err = build(project, "--key", "nowhere.key")
    assert rc == 3 and "nowhere.key" in err and "keygen" in err


def test_crashing_stage_fails_without_link(project: Path) -> None:
    set_config(project, crash=True)
    rc, err = build(project)
    assert rc == 1, err
    assert "first" in err and "status 7" in err
    assert links(project) == {}


def test_receipt_contradicting_declaration_fails_the_stage(project: Path) -> None:
    set_config(project, undo_determinism=True)
    rc, err = build(project)
    assert rc == 1, err
    assert "torch_deterministic" in err
    assert "first" not in links(project)


def test_undeclared_input_warns_and_fails_under_strict(project: Path) -> None:
    set_config(project, peek=True)
    rc, err = build(project, "--strict")
    assert rc == 1, err
    assert "notes/secret.txt" in err
    assert "first" not in links(project)
    rc, err = build(project)
    assert rc == 0, err
    assert "notes/secret.txt" in err and "warning" in err
    assert intoto_verify(project) == 0


def test_run_cache_restored_stage_keeps_a_valid_link(project: Path) -> None:
    """Links are reused where the earlier run is provably the same (here: the same directory).

    A copy of a project in another directory would run its stages again: their runs saw
    other paths.
    """
    assert build(project)[0] == 0
    before = payload(links(project)["first"])["products"]
    set_config(project, scale=3.0)
    assert build(project)[0] == 0
    set_config(project, scale=2.0)
    rc, err = build(project)
    assert rc == 0, err
    assert "reused: first, second" in err
    assert payload(links(project)["first"])["products"] == before
    assert intoto_verify(project) == 0


def test_a_forged_digest_cache_never_reaches_a_link_or_the_provenance(
    built: Path, tmp_path: Path
) -> None:
    """Whoever can write the persistent cache could name any digest for an unchanged file."""
    import os
    import subprocess
    import time

    from tests.integration.project import env

    from bitwright.digest import DigestCache
    from bitwright.digest.identity import FileIdentity
    from bitwright.model import Sha256

    project = copy_of(built, tmp_path)
    forged = "f" * 64
    cache_file = tmp_path / "private" / "digests.sqlite"
    files = [
        p
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.parts and ".bitwright" not in p.parts
    ]
    time.sleep(0.1)  # older than the cache's racy-timestamp margin, as a real entry would be
    with DigestCache.open(cache_file) as cache:
        cache.store([(FileIdentity.of(str(p), p.stat()), Sha256(forged)) for p in files])
    with_cache = {**env(), "BITWRIGHT_DIGEST_CACHE": str(cache_file)}
    shown = subprocess.run(
        [BITWRIGHT, "digest", "data/raw/input.txt"],
        cwd=project, env=with_cache, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shown.stdout.startswith(forged)  # the forgery works on whoever trusts the cache

    done = subprocess.run(
        [BITWRIGHT, "build", "--force"], cwd=project, env=with_cache, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for link in links(project).values():
        assert forged not in json.dumps(payload(link))
    real = hashlib.sha256((project / "data/raw/input.txt").read_bytes()).hexdigest()
    assert payload(links(project)["first"])["materials"]["data/raw/input.txt"]["sha256"] == real
    provenance = (project / ".bitwright" / "attestations" / "provenance.intoto.json").read_text()
    statement = base64.b64decode(json.loads(provenance)["payload"]).decode()
    assert forged not in statement
    assert os.path.getsize(cache_file) > 0
