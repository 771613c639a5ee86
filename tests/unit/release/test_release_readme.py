"""The release README tells a stranger what the release is: a dirty build, a signed source."""

from __future__ import annotations

import base64
from dataclasses import replace

from tests.unit.attest.attest_factories import make_pins

from bitwright.model import SourceSignature
from bitwright.release.readme import release_readme


def _readme(**git: object) -> str:
    pins = make_pins()
    pins = replace(pins, git=replace(pins.git, **git))
    return release_readme(pins, {"release/model.safetensors": "ab" * 32}, "owner.pub", ["a.link"])


def test_a_clean_build_is_rebuildable_and_names_the_release_statement() -> None:
    text = _readme()

    assert "Rebuildable: yes." in text
    assert "release.intoto.json" in text and "verdicts/" in text
    assert "--source-uri https://example.org/ml/model.git --commit 0123456789abcdef" in text
    assert "(unsigned)" in text


def test_a_dirty_build_says_why_it_is_not_rebuildable() -> None:
    text = _readme(dirty=True, dirty_paths=("src/hack.py", "notes.txt"))

    assert "Rebuildable: no: it was built with --allow-dirty" in text
    assert "`src/hack.py`, `notes.txt`" in text


def test_a_signed_source_names_its_signer() -> None:
    signature = SourceSignature("ssh", "SHA256:abc", base64.b64encode(b"tree").decode())

    assert "(ssh signature by SHA256:abc)" in _readme(signature=signature)
