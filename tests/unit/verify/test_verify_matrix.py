"""The tamper and bad-input matrix: ``bitwright verify`` on every kind of broken release.

Each class damages a private copy of an honest release, then runs the whole command (its
entry point, in this process) under a deadline. Every class must end in exit 1 (the check
said no: the last line is ``verification failed: CHECK: ...``) or exit 3 (the release
cannot be read: exactly one ``error:`` line), name what is wrong, print no traceback, report
no unexpected error and never hang. A few classes that could hang a naive reader are run
again through the console script in a subprocess with a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from release_factory import (
    Release,
    edit_payload,
    payload_of,
    resign_provenance,
    seal,
)

from bitwright.attest import canonical_json, sign_envelope
from bitwright.cli.main import main
from bitwright.release.seal import seal_release

MODEL = "release/model.safetensors"
BITWRIGHT = Path(sys.executable).parent / "bitwright"
Tamper = Callable[[Release, Release], list[str]]
"""Damages the release (given another honest build); returns extra command-line arguments."""


class _Deadline(BaseException):
    pass


@pytest.fixture
def deadline() -> Iterator[None]:
    def expired(signum: int, frame: Any) -> None:
        raise _Deadline("verify did not finish in time")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Case:
    """One class of damage: what is done, the exit code and what the last line must say."""

    tamper: Tamper
    code: int
    says: str
    args: list[str] = field(default_factory=list)


def _flip(path: Path, at: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def _fifo(path: Path) -> None:
    if path.exists():
        path.unlink()
    os.mkfifo(path)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _owner_signed(release: Release, payload: bytes) -> bytes:
    envelope = sign_envelope(payload, "application/vnd.in-toto+json", release.keys.owner_signer())
    return canonical_json(envelope)


def _edit_statement(edit: Callable[[dict[str, Any]], None]) -> Tamper:
    def tamper(release: Release, _: Release) -> list[str]:
        resign_provenance(release, release.keys.owner_signer(), edit)
        seal(release)
        return []

    return tamper


def _do(action: Callable[[Release], object], *args: str) -> Tamper:
    def tamper(release: Release, _: Release) -> list[str]:
        action(release)
        return list(args)

    return tamper


def _resealed(action: Callable[[Release], object]) -> Tamper:
    """Damage, then have the owner sign the release statement again (an insider's release)."""

    def tamper(release: Release, _: Release) -> list[str]:
        action(release)
        seal(release)
        return []

    return tamper


def _from_other(relative: str) -> Tamper:
    def tamper(release: Release, other: Release) -> list[str]:
        target = release.root / relative
        if target.is_dir():
            shutil.rmtree(target)
            shutil.copytree(other.root / relative, target)
        else:
            shutil.copyfile(other.root / relative.replace("{kid}", ""), target)
        return []

    return tamper


def _swap_link(release: Release, other: Release) -> list[str]:
    shutil.copyfile(other.link("train"), release.link("train"))
    return []


def _strangers_statement(release: Release, _: Release) -> list[str]:
    seal_release(
        release.root,
        release.keys.stranger_signer(),
        repository=release.pins.git.remote_url,
        commit=release.pins.git.commit,
    )
    return []


def _stranger_key_planted(release: Release, _: Release) -> list[str]:
    resign_provenance(release, release.keys.stranger_signer())
    for pub in release.layout.keys.glob("*.pub"):
        pub.unlink()
    shutil.copyfile(release.keys.stranger.public_path, release.layout.keys / "owner.pub")
    return []


def _layout_by_stranger(release: Release, _: Release) -> list[str]:
    layout = payload_of(release.layout.layout)
    envelope = sign_envelope(
        canonical_json(layout), "application/vnd.in-toto+json", release.keys.stranger_signer()
    )
    release.layout.layout.write_bytes(canonical_json(envelope))
    return []


def _layout_edit(edit: Callable[[dict[str, Any]], None]) -> Tamper:
    def tamper(release: Release, _: Release) -> list[str]:
        layout = payload_of(release.layout.layout)
        edit(layout)
        release.layout.layout.write_bytes(_owner_signed(release, canonical_json(layout)))
        return []

    return tamper


def _aibom_edit(edit: Callable[[dict[str, Any]], None]) -> Callable[[Release], None]:
    def action(release: Release) -> None:
        bom = json.loads(release.layout.aibom.read_text())
        edit(bom)
        release.layout.aibom.write_text(json.dumps(bom))

    return action


def _dirty(statement: dict[str, Any]) -> None:
    internal = statement["predicate"]["buildDefinition"]["internalParameters"]
    internal["dirty"] = True
    internal["dirtyPaths"] = ["src/hack.py"]


def _deep_payload(release: Release, _: Release) -> list[str]:
    release.layout.provenance.write_bytes(_owner_signed(release, _nested(5000)))
    return []


def _duplicate_keys(release: Release, _: Release) -> list[str]:
    payload = canonical_json(payload_of(release.layout.provenance))
    doubled = payload.replace(b'{"_type":', b'{"_type":"x","_type":', 1)
    release.layout.provenance.write_bytes(_owner_signed(release, doubled))
    return []


def _stranger_model_sig(release: Release) -> None:
    from bitwright.release import sign_model

    sign_model(
        release.layout.artifacts, release.keys.stranger.private_path, release.layout.model_signature
    )


def _verdict_fifo(release: Release) -> None:
    release.layout.verdicts.mkdir()
    os.mkfifo(release.layout.verdicts / "rebuilder.intoto.json")


CASES: dict[str, Case] = {
    # artifacts and subjects
    "artifact-byte-flipped": Case(_do(lambda r: _flip(r.layout.artifact(MODEL))), 1, "subjects:"),
    "artifact-added": Case(
        _do(lambda r: (r.layout.artifacts / "release" / "x.py").write_text("import os")),
        1,
        "artifacts/release/x.py is not a subject",
    ),
    "artifact-removed": Case(
        _do(lambda r: r.layout.artifact("release/metrics.json").unlink()),
        1,
        "artifacts/release/metrics.json is missing",
    ),
    "artifact-symlink-to-dev-zero": Case(
        _do(lambda r: (r.layout.artifacts / "zero.bin").symlink_to("/dev/zero")), 3, "zero.bin"
    ),
    "artifact-fifo": Case(_do(lambda r: os.mkfifo(r.layout.artifacts / "pipe")), 3, "pipe"),
    # links and the layout
    "link-removed": Case(_do(lambda r: r.link("train").unlink()), 1, "in-toto:"),
    "link-from-another-build": Case(_swap_link, 1, "in-toto:"),
    "link-truncated": Case(
        _do(lambda r: r.link("package").write_bytes(r.link("package").read_bytes()[:200])),
        1,
        "links/package.",
    ),
    "link-is-a-fifo": Case(_do(lambda r: _fifo(r.link("prepare"))), 3, "is not a regular file"),
    "links-is-a-file": Case(
        _do(lambda r: (shutil.rmtree(r.layout.links), r.layout.links.write_text("x"))),
        1,
        "links is not a directory",
    ),
    "link-extra-file": Case(
        _do(lambda r: (r.layout.links / "notes.txt").write_text("hi")),
        1,
        "links/notes.txt is covered by no signature",
    ),
    "layout-signed-by-stranger": Case(_layout_by_stranger, 1, "layout-signature:"),
    "layout-of-another-build": Case(_from_other("root.layout"), 1, "byproducts:"),
    "layout-truncated": Case(
        _do(lambda r: r.layout.layout.write_bytes(r.layout.layout.read_bytes()[:100])),
        1,
        "root.layout is not a DSSE envelope",
    ),
    "layout-not-utf8": Case(
        _do(lambda r: r.layout.layout.write_bytes(b"\xff\xfe{}")), 1, "not UTF-8"
    ),
    "layout-expired": Case(
        _layout_edit(lambda layout: layout.update(expires="2020-01-01T00:00:00Z")),
        1,
        "layout-expiry:",
    ),
    "layout-with-inspection": Case(
        _layout_edit(
            lambda layout: layout.update(
                inspect=[{"_type": "inspection", "name": "x", "run": ["true"]}]
            )
        ),
        1,
        "inspection",
    ),
    "layout-is-a-fifo": Case(_do(lambda r: _fifo(r.layout.layout)), 3, "root.layout"),
    "layout-nested-deeply": Case(
        _do(lambda r: r.layout.layout.write_bytes(_nested(2000))), 1, "nested 2000 levels"
    ),
    # the provenance
    "provenance-by-stranger": Case(
        lambda r, _: (resign_provenance(r, r.keys.stranger_signer()), [])[1],
        1,
        "provenance-signature:",
    ),
    "stranger-key-planted-in-keys": Case(_stranger_key_planted, 1, "provenance-signature:"),
    "provenance-edited-unsigned": Case(
        lambda r, _: (
            edit_payload(
                r.layout.provenance,
                lambda s: s["subject"][0]["digest"].update(sha256="ab" * 32),
            ),
            [],
        )[1],
        1,
        "signature check failed",
    ),
    "provenance-truncated": Case(
        _do(lambda r: r.layout.provenance.write_bytes(r.layout.provenance.read_bytes()[:300])),
        1,
        "provenance.intoto.json is not a DSSE envelope",
    ),
    "provenance-json-array": Case(
        _do(lambda r: r.layout.provenance.write_text("[1, 2, 3]")), 1, "not a JSON object"
    ),
    "provenance-payload-nested-deeply": Case(_deep_payload, 1, "nested 5000 levels"),
    "provenance-duplicate-keys": Case(_duplicate_keys, 1, "duplicate key"),
    "provenance-unknown-predicate": Case(
        _edit_statement(lambda s: s.update(predicateType="https://example.org/v9")),
        1,
        "unknown predicate type",
    ),
    "provenance-other-data": Case(
        _edit_statement(
            lambda s: [
                d["digest"].update(sha256="cd" * 32)
                for d in s["predicate"]["buildDefinition"]["resolvedDependencies"]
                if d["name"] == "data/raw"
            ]
        ),
        1,
        "dependencies:",
    ),
    "provenance-too-large": Case(
        _do(lambda r: None, "--max-document-bytes", "1000"), 3, "more than the 1000 accepted"
    ),
    # every other file: the release statement and coverage
    "readme-edited": Case(
        _do(lambda r: r.layout.readme.write_text("# trust me\n")),
        1,
        "README.md differs from its signed digest",
    ),
    "readme-symlink-out": Case(
        _do(lambda r: (r.layout.readme.unlink(), r.layout.readme.symlink_to("/etc/passwd"))),
        1,
        "coverage:",
    ),
    "public-key-replaced": Case(
        _do(
            lambda r: [
                shutil.copyfile(r.keys.stranger.public_path, p) for p in r.layout.keys.glob("*")
            ]
        ),
        1,
        "differs from its signed digest",
    ),
    "extra-top-level-file": Case(
        _do(lambda r: (r.root / "install.sh").write_text("curl | sh")),
        1,
        "install.sh is covered by no signature",
    ),
    "aibom-mutated": Case(
        _do(_aibom_edit(lambda bom: bom["metadata"].update(timestamp="2000-01-01T00:00:00Z"))),
        1,
        "aibom.cdx.json differs from its signed digest",
    ),
    "aibom-deleted": Case(
        _do(lambda r: r.layout.aibom.unlink()), 1, "aibom.cdx.json is listed by release.intoto"
    ),
    "model-sig-deleted": Case(
        _do(lambda r: r.layout.model_signature.unlink()),
        1,
        "model.sig is listed by release.intoto.json but missing",
    ),
    "statement-deleted": Case(
        _do(lambda r: r.layout.statement.unlink()), 1, "the release has no release.intoto.json"
    ),
    "statement-by-stranger": Case(_strangers_statement, 1, "release-statement:"),
    "statement-of-another-build": Case(_from_other("release.intoto.json"), 1, "coverage:"),
    "verdict-fifo": Case(_do(_verdict_fifo), 1, "is a FIFO"),
    # insiders: the owner signs everything again, the content is still wrong
    "aibom-wrong-digests-resealed": Case(
        _resealed(
            _aibom_edit(
                lambda bom: [
                    item["hashes"][0].update(content="ef" * 32)
                    for c in bom["components"]
                    if c["type"] == "machine-learning-model"
                    for item in c["components"]
                ]
            )
        ),
        1,
        "aibom:",
    ),
    "aibom-not-cyclonedx-resealed": Case(
        _resealed(lambda r: r.layout.aibom.write_text('{"bomFormat": "SPDX"}')), 1, "aibom:"
    ),
    "aibom-too-large": Case(_do(lambda r: None, "--max-aibom-bytes", "100"), 3, "100 accepted"),
    "model-sig-garbage-resealed": Case(
        _resealed(lambda r: r.layout.model_signature.write_text("{]")), 1, "model-signature:"
    ),
    "model-sig-by-stranger-resealed": Case(
        _resealed(_stranger_model_sig), 1, "made with another key"
    ),
    "model-sig-missing-resealed": Case(
        _resealed(lambda r: r.layout.model_signature.unlink()), 1, "the release has no model.sig"
    ),
    # binding and freshness
    "other-commit-expected": Case(_do(lambda r: None, "--commit", "f" * 40), 1, "binding:"),
    "other-source-expected": Case(
        _do(lambda r: None, "--source-uri", "https://example.org/other.git"), 1, "binding:"
    ),
    "built-before-not-before": Case(
        _do(lambda r: None, "--not-before", "2030-01-01"), 1, "before 2030-01-01"
    ),
    "dirty-build-required-clean": Case(
        lambda r, o: [*_edit_statement(_dirty)(r, o), "--require-clean"], 1, "dirty work tree"
    ),
    "unsigned-source-required-signed": Case(
        _do(lambda r: None, "--require-signed-source", "/dev/null"), 1, "is not signed"
    ),
    "ref-that-cannot-be-resolved": Case(
        _do(lambda r: None, "--ref", "main"), 3, "cannot read the refs of /srv/git/tiny.git"
    ),
    # what the verifier itself brings
    "key-is-garbage": Case(_do(lambda r: None), 3, "not a usable PEM public key"),
    "artifacts-missing": Case(
        _do(lambda r: shutil.rmtree(r.layout.artifacts)), 3, "the release is incomplete"
    ),
}


def _verify(
    release: Release, args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    key = release.keys.owner.public_path
    code = main(["verify", str(release.root), "--key", str(key), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("name", list(CASES))
def test_every_class_ends_in_one_clear_line(
    name: str,
    release: Release,
    other_build: Release,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    deadline: None,
) -> None:
    case = CASES[name]
    args = case.tamper(release, other_build)
    if name == "key-is-garbage":
        garbage = tmp_path / "garbage.pub"
        garbage.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
        args = ["--key", str(garbage)]

    code, _, err = _verify(release, args, capsys)

    lines = [line for line in err.splitlines() if line.strip()]
    assert code == case.code, err
    assert "Traceback" not in err and "unexpected" not in err
    if code == 3:
        assert len(lines) == 1, err
        assert lines[0].startswith("error: ")
    else:
        assert lines[-1].startswith("verification failed: ")
    assert case.says in lines[-1], lines[-1]


def test_the_matrix_has_at_least_forty_classes() -> None:
    assert len(CASES) >= 40


def test_json_output_of_a_failure_is_one_object(
    release: Release, capsys: pytest.CaptureFixture[str], deadline: None
) -> None:
    _fifo(release.link("prepare"))

    code, out, _ = _verify(release, ["--json"], capsys)

    assert code == 3
    error = json.loads(out)
    assert error["ok"] is False and error["error"]["exit_code"] == 3
    assert "is not a regular file" in error["error"]["message"]


@pytest.mark.parametrize("damage", ["fifo-link", "dev-zero-artifact", "deep-envelope"])
def test_the_console_script_never_hangs_on_hostile_files(release: Release, damage: str) -> None:
    if damage == "fifo-link":
        _fifo(release.link("train"))
    elif damage == "dev-zero-artifact":
        (release.layout.artifacts / "big.bin").symlink_to("/dev/zero")
    else:
        release.layout.provenance.write_bytes(b'{"payload": ' * 100_000)
    done = subprocess.run(
        [str(BITWRIGHT), "verify", str(release.root), "--key", str(release.keys.owner.public_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode in (1, 3), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(("error: ", "verification failed: "))


def test_a_key_inside_the_release_is_warned_about(
    release: Release, capsys: pytest.CaptureFixture[str], deadline: None
) -> None:
    (inside,) = release.layout.keys.glob("owner.*.pub")
    code = main(["verify", str(release.root), "--key", str(inside), "--json"])
    out = capsys.readouterr()

    assert code == 0
    assert "lies inside the release being checked" in out.err
    assert any("inside the release" in w for w in json.loads(out.out)["warnings"])
