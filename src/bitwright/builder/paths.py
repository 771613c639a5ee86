"""Where bitwright keeps keys, attestations, logs and caches inside a project (a contract)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProjectPaths"]


@dataclass(frozen=True)
class ProjectPaths:
    """The ``.bitwright/`` layout of a project rooted at ``repo``."""

    repo: Path

    @property
    def state(self) -> Path:
        """``.bitwright/``: never committed."""
        return self.repo / ".bitwright"

    @property
    def keys(self) -> Path:
        """Default key directory of ``bitwright keygen``."""
        return self.state / "keys"

    @property
    def owner_key(self) -> Path:
        """The owner's private key (0600)."""
        return self.keys / "owner.key"

    @property
    def owner_pub(self) -> Path:
        """The owner's public key (PEM)."""
        return self.keys / "owner.pub"

    @property
    def attestations(self) -> Path:
        """Links, layout and provenance of the last build."""
        return self.state / "attestations"

    @property
    def links(self) -> Path:
        """``links/STAGE.KEYID8.link`` of the last build."""
        return self.attestations / "links"

    @property
    def layout(self) -> Path:
        """The owner-signed layout of the last build."""
        return self.attestations / "root.layout"

    @property
    def provenance(self) -> Path:
        """The signed SLSA provenance of the last build."""
        return self.attestations / "provenance.intoto.json"

    @property
    def link_store(self) -> Path:
        """Every link ever written, by signer, stage and content: reused for restored stages."""
        return self.state / "cache" / "links"

    @property
    def params_memo(self) -> Path:
        """The key of the last ``params.yaml`` check that passed (see ``check_params_file``)."""
        return self.state / "cache" / "params.memo"

    @property
    def logs(self) -> Path:
        """Stage stdout/stderr logs of the last build."""
        return self.state / "logs"

    @property
    def run(self) -> Path:
        """Scratch state of the build in progress (context, failure record)."""
        return self.state / "run"

    @property
    def context_file(self) -> Path:
        """The build context ``bitwright stage run`` reads."""
        return self.run / "context.json"

    @property
    def failure_file(self) -> Path:
        """Written by a failing ``stage run`` so that ``build`` can name the stage and reason."""
        return self.run / "failure.json"
