"""The reference ``in-toto-verify`` CLI on links and a layout written by bitwright's attest API.

A three-stage chain (prepare -> train -> evaluate) is "run" in ``tmp_path``: its files are real
and digested with hashlib, its links are signed with real keys. What in-toto-verify needs, as
measured here: the layout's ``expires`` in the future, the owner's ``.pub`` file, and the link
directory; it does not read the artifacts and does not care about its working directory (this
test runs it from an unrelated directory).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import shlex
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bitwright.attest import (
    KeyPair,
    build_layout,
    build_link,
    canonical_json,
    generate_keypair,
    link_filename,
    load_signer,
    write_layout,
    write_link,
)
from bitwright.attest.keys import Signer
from bitwright.model import (
    BuildPins,
    DeterminismSettings,
    EnvironmentPin,
    GitPin,
    Pipeline,
    SandboxKind,
    SandboxReport,
    Sha256,
    StageRun,
    StageSpec,
)

pytestmark = pytest.mark.integration

IN_TOTO_VERIFY = Path(sys.executable).parent / "in-toto-verify"

PIPELINE = Pipeline(
    stages=(
        StageSpec(
            name="prepare",
            cmd="bitwright stage run prepare -- python pipelines/prepare.py",
            deps=("pipelines/prepare.py", "data/raw"),
            outs=("data/prepared",),
            params=(("params.yaml", "prepare.test_fraction"),),
        ),
        StageSpec(
            name="train",
            cmd="bitwright stage run train -- python pipelines/train.py --epochs 2",
            deps=("pipelines/train.py", "data/prepared"),
            outs=("models/model.pt",),
            params=(("params.yaml", "train.lr"),),
        ),
        StageSpec(
            name="evaluate",
            cmd="bitwright stage run evaluate -- python pipelines/evaluate.py",
            deps=("pipelines/evaluate.py", "models/model.pt", "data/prepared/test.csv"),
            outs=("metrics.json",),
        ),
    )
)

SOURCES = {
    "pipelines/prepare.py": b"print('prepare')\n",
    "pipelines/train.py": b"print('train')\n",
    "pipelines/evaluate.py": b"print('evaluate')\n",
    "params.yaml": b"prepare:\n  test_fraction: 0.2\ntrain:\n  lr: 0.01\n",
    "data/raw/a.csv": b"x,y\n1,2\n",
    "data/raw/b.csv": b"x,y\n3,4\n",
}
OUTPUTS = {
    "prepare": {"data/prepared/train.csv": b"x,y\n1,2\n", "data/prepared/test.csv": b"x,y\n3,4\n"},
    "train": {"models/model.pt": b"\x80\x02weights"},
    "evaluate": {"metrics.json": b'{"accuracy": 1.0}\n'},
}


@dataclasses.dataclass
class Chain:
    repo: Path
    links: Path
    layout: Path
    owner_pair: KeyPair
    owner: Signer
    stranger: Signer
    pins: BuildPins


def _sha(data: bytes) -> Sha256:
    return Sha256(hashlib.sha256(data).hexdigest())


def _digest_paths(repo: Path, paths: tuple[str, ...]) -> dict[str, Sha256]:
    found: dict[str, Sha256] = {}
    for rel in paths:
        target = repo / rel
        files = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
        for file in files:
            found[file.relative_to(repo).as_posix()] = _sha(file.read_bytes())
    return found


def _run_stage(repo: Path, spec: StageSpec) -> StageRun:
    """Digest inputs, "run" the stage by writing its outputs, digest outputs."""
    materials = _digest_paths(repo, (*spec.deps, *spec.param_files))
    for rel, data in OUTPUTS[spec.name].items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    return StageRun(
        stage=spec.name,
        command=tuple(shlex.split(spec.inner_cmd)),
        returncode=0,
        materials=materials,
        products=_digest_paths(repo, spec.outs),
        stdout_sha256=_sha(b""),
        stderr_sha256=_sha(b""),
        sandbox=SandboxReport(SandboxKind.NONE, False, False, False, False),
        environment={"PYTHONHASHSEED": "0"},
        started_on="2024-01-01T00:00:00Z",
        finished_on="2024-01-01T00:00:01Z",
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeyPair, Signer, Signer]:
    owner_pair = generate_keypair(tmp_path_factory.mktemp("keys"))
    stranger_pair = generate_keypair(tmp_path_factory.mktemp("stranger"), name="stranger")
    return owner_pair, load_signer(owner_pair.private_path), load_signer(stranger_pair.private_path)


@pytest.fixture
def chain(tmp_path: Path, keys: tuple[KeyPair, Signer, Signer]) -> Chain:
    return _make_chain(tmp_path, keys)


def _make_chain(tmp_path: Path, keys: tuple[KeyPair, Signer, Signer]) -> Chain:
    """Write sources, run the three stages, sign their links and the layout."""
    owner_pair, owner, stranger = keys
    repo = tmp_path / "repo"
    for rel, data in SOURCES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    pins = BuildPins(
        git=GitPin(commit="ab" * 20, commit_time=1_700_000_000, remote_url=str(repo)),
        data=(),
        container=None,
        determinism=DeterminismSettings(),
        environment=EnvironmentPin(
            "CPython 3.11", (), _sha(b""), "Linux", "x86_64", "cpu", _sha(b"")
        ),
    )
    links = repo / ".bitwright" / "attestations" / "links"
    for name in PIPELINE.topological():
        run = _run_stage(repo, PIPELINE.stage(name))
        write_link(build_link(run, pins, declared=pins.determinism), owner, links)
    layout = build_layout(PIPELINE, [owner.public_key], expires=datetime.now(UTC) + timedelta(1))
    layout_path = write_layout(layout, owner, repo / ".bitwright" / "attestations" / "root.layout")
    return Chain(repo, links, layout_path, owner_pair, owner, stranger, pins)


def _in_toto_verify(chain: Chain, cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [
            str(IN_TOTO_VERIFY),
            "--layout",
            str(chain.layout),
            "--verification-keys",
            str(chain.owner_pair.public_path),
            "--link-dir",
            str(chain.links),
        ],
        cwd=cwd,  # not the repository: in-toto-verify must not need the artifacts
        capture_output=True,
        text=True,
        timeout=120,
    )


def _link_path(chain: Chain, stage: str) -> Path:
    return chain.links / link_filename(stage, chain.owner)


def _edit_product_without_resigning(chain: Chain) -> None:
    path = _link_path(chain, "train")
    envelope = json.loads(path.read_text())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["products"]["models/model.pt"]["sha256"] = _sha(b"backdoored weights")
    envelope["payload"] = base64.b64encode(canonical_json(payload)).decode()
    path.write_bytes(canonical_json(envelope))


def _resign_with_stranger(chain: Chain) -> None:
    _link_path(chain, "evaluate").unlink()
    run = _run_stage(chain.repo, PIPELINE.stage("evaluate"))
    write_link(
        build_link(run, chain.pins, declared=chain.pins.determinism), chain.stranger, chain.links
    )


def _stranger_link_under_owners_name(chain: Chain) -> None:
    run = _run_stage(chain.repo, PIPELINE.stage("evaluate"))
    written = write_link(
        build_link(run, chain.pins, declared=chain.pins.determinism), chain.stranger, chain.links
    )
    written.replace(_link_path(chain, "evaluate"))


def _material_not_matching_upstream(chain: Chain) -> None:
    (chain.repo / "models" / "model.pt").write_bytes(b"other weights, not what train made")
    run = _run_stage(chain.repo, PIPELINE.stage("evaluate"))
    write_link(
        build_link(run, chain.pins, declared=chain.pins.determinism), chain.owner, chain.links
    )


def _file_in_upstream_directory_swapped(chain: Chain) -> None:
    (chain.repo / "data" / "prepared" / "train.csv").write_bytes(b"x,y\n9,9\n")
    run = _run_stage(chain.repo, PIPELINE.stage("train"))
    write_link(
        build_link(run, chain.pins, declared=chain.pins.determinism), chain.owner, chain.links
    )


def _expired_layout(chain: Chain) -> None:
    layout = build_layout(
        PIPELINE, [chain.owner.public_key], expires=datetime.now(UTC) + timedelta(1)
    )
    write_layout(
        layout.model_copy(update={"expires": "2020-01-01T00:00:00Z"}), chain.owner, chain.layout
    )


def _layout_signed_by_stranger(chain: Chain) -> None:
    layout = build_layout(
        PIPELINE, [chain.owner.public_key], expires=datetime.now(UTC) + timedelta(1)
    )
    write_layout(layout, chain.stranger, chain.layout)


def test_honest_chain_passes(chain: Chain, tmp_path: Path) -> None:
    result = _in_toto_verify(chain, tmp_path / "elsewhere")

    assert result.returncode == 0, result.stderr
    # The layout's expected_command equals what the links record: no alignment warning.
    assert "differs from expected command" not in result.stderr


def test_honest_chain_passes_with_ed25519_keys(tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "keys", key_type="ed25519")
    signer = load_signer(pair.private_path)
    chain = _make_chain(tmp_path, (pair, signer, signer))

    result = _in_toto_verify(chain, tmp_path / "elsewhere")

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (
            _edit_product_without_resigning,
            "Step 'train' requires at least '1' links validly signed",
        ),
        (_resign_with_stranger, "Step 'evaluate' requires '1' link metadata file(s), found '0'"),
        (_stranger_link_under_owners_name, "Step 'evaluate' requires at least '1' links validly"),
        (_material_not_matching_upstream, "RuleVerificationError: 'DISALLOW models/model.pt'"),
        (_file_in_upstream_directory_swapped, "'DISALLOW data/prepared/*' matched"),
        (_expired_layout, "LayoutExpiredError"),
        (_layout_signed_by_stranger, "SignatureVerificationError"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else "",
)
def test_tampered_chain_fails(
    chain: Chain, tmp_path: Path, tamper: Callable[[Chain], None], reason: str
) -> None:
    tamper(chain)

    result = _in_toto_verify(chain, tmp_path / "elsewhere")

    assert result.returncode == 1, result.stderr
    assert reason in result.stderr
