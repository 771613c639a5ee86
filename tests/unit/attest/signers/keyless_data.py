"""Data of the signer tests: a keyless signer's identity and an in-toto Statement to sign."""

from __future__ import annotations

from bitwright.attest import canonical_json

__all__ = ["GITHUB_ISSUER", "WORKFLOW", "make_statement"]

WORKFLOW = "https://github.com/acme/model/.github/workflows/release.yml@refs/heads/main"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def make_statement(name: str = "model.safetensors") -> bytes:
    """A canonical in-toto Statement v1 with one subject (what keyless signing accepts)."""
    return canonical_json(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": name, "digest": {"sha256": "ab" * 32}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {"buildType": "https://example.org/bitwright/v1"}},
        }
    )
