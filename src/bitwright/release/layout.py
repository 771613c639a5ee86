"""The release directory, a contract shared by ``bitwright release``, ``verify`` and ``rebuild``.

::

    RELEASE/
      artifacts/PATH...          the released files, at their repository paths (the subjects)
      provenance.intoto.json     DSSE envelope: Statement v1 + SLSA Provenance v1
      provenance.sigstore.json   sigstore bundle of the provenance (keyless builds)
      links/STAGE.KEYID8.link    one DSSE-signed in-toto link per stage
      root.layout                DSSE-signed in-toto layout
      keys/*.pub                 public keys of owner and functionaries (never trusted by verify)
      aibom.cdx.json             CycloneDX 1.6 ML-BOM
      model.sig                  OpenSSF model-signing bundle over artifacts/
      README.md                  how to verify and rebuild this release
      release.intoto.json        DSSE: the release statement, every file above with its sha256
      verdicts/*.intoto.json     VSAs of independent rebuilders, added later (own signatures)

A provenance subject named ``release/model.safetensors`` is the file
``artifacts/release/model.safetensors``. The release statement
(:mod:`bitwright.attest.release_statement`) is also what marks a directory as a release of
bitwright's own: ``release --force`` replaces nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ReleaseLayout"]


@dataclass(frozen=True)
class ReleaseLayout:
    """Paths inside a release directory rooted at ``root``."""

    root: Path

    @property
    def artifacts(self) -> Path:
        """The released files, at their repository paths."""
        return self.root / "artifacts"

    def artifact(self, subject: str) -> Path:
        """The file of the provenance subject ``subject``."""
        return self.artifacts / subject

    @property
    def provenance(self) -> Path:
        """The DSSE-signed provenance."""
        return self.root / "provenance.intoto.json"

    @property
    def provenance_bundle(self) -> Path:
        """The sigstore bundle of the provenance, when keyless."""
        return self.root / "provenance.sigstore.json"

    @property
    def links(self) -> Path:
        """One link per stage."""
        return self.root / "links"

    @property
    def layout(self) -> Path:
        """The signed in-toto layout."""
        return self.root / "root.layout"

    @property
    def keys(self) -> Path:
        """Public keys shipped for convenience; a verifier trusts only keys it is given."""
        return self.root / "keys"

    @property
    def aibom(self) -> Path:
        """The CycloneDX ML-BOM."""
        return self.root / "aibom.cdx.json"

    @property
    def model_signature(self) -> Path:
        """The OpenSSF model-signing bundle over ``artifacts/``."""
        return self.root / "model.sig"

    @property
    def readme(self) -> Path:
        """How to verify and rebuild."""
        return self.root / "README.md"

    @property
    def statement(self) -> Path:
        """The signed release statement: every file of the release and its sha256."""
        return self.root / "release.intoto.json"

    @property
    def verdicts(self) -> Path:
        """Verification summaries added later, each signed by its verifier."""
        return self.root / "verdicts"
