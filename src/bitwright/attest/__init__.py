"""Attestations: keys, DSSE envelopes, in-toto links of stage runs and the layout of the chain.

The flow::

    keys.generate_keypair / load_signer          the owner's (and functionaries') keys
    link.build_link(run, pins) -> write_link     one signed link per stage run
    layout.build_layout(pipeline) -> write_layout  the owner-signed policy from dvc.yaml
    dsse.sign_envelope / verify_envelope         the envelope every signed file uses

Everything signed is RFC 8785 canonical JSON (:func:`canonical.canonical_json`) in a DSSE
envelope; links and layout are the in-toto v0.9 documents that ``in-toto-verify`` checks.

Links and layouts are pydantic models, slow to import; their names are imported on first use
(:pep:`562`), so code that only needs keys or envelopes does not pay for them.
"""

from typing import TYPE_CHECKING

from bitwright._lazy import lazy_names
from bitwright.attest.canonical import canonical_json
from bitwright.attest.dsse import (
    INTOTO_PAYLOAD_TYPE,
    read_envelope,
    sign_envelope,
    unverified_payload,
    verify_envelope,
    write_envelope,
)
from bitwright.attest.keys import (
    DEFAULT_KEY_DIR,
    KEY_TYPES,
    KeyPair,
    generate_keypair,
    keyid8,
    load_public_key,
    load_signer,
)

if TYPE_CHECKING:
    from bitwright.attest.layout import (
        DEFAULT_LAYOUT_LIFETIME,
        LAYOUT_FILE,
        Layout,
        build_layout,
        read_layout,
        write_layout,
    )
    from bitwright.attest.link import (
        LINKS_DIR,
        Link,
        build_link,
        link_filename,
        read_link,
        write_link,
    )

__all__ = [
    "DEFAULT_KEY_DIR",
    "DEFAULT_LAYOUT_LIFETIME",
    "INTOTO_PAYLOAD_TYPE",
    "KEY_TYPES",
    "LAYOUT_FILE",
    "LINKS_DIR",
    "KeyPair",
    "Layout",
    "Link",
    "build_layout",
    "build_link",
    "canonical_json",
    "generate_keypair",
    "keyid8",
    "link_filename",
    "load_public_key",
    "load_signer",
    "read_envelope",
    "read_layout",
    "read_link",
    "sign_envelope",
    "unverified_payload",
    "verify_envelope",
    "write_envelope",
    "write_layout",
    "write_link",
]

_LAYOUT_NAMES = (
    "DEFAULT_LAYOUT_LIFETIME",
    "LAYOUT_FILE",
    "Layout",
    "build_layout",
    "read_layout",
    "write_layout",
)
_LINK_NAMES = ("LINKS_DIR", "Link", "build_link", "link_filename", "read_link", "write_link")
__getattr__, __dir__ = lazy_names(
    __name__, {**dict.fromkeys(_LAYOUT_NAMES, "layout"), **dict.fromkeys(_LINK_NAMES, "link")}
)
