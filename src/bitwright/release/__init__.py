"""Bundles the last build into a release and describes it.

* :mod:`.aibom` -- the AI bill of materials (``aibom.cdx.json``): a CycloneDX 1.6 ML-BOM of the
  model, its datasets and its software, and the file digests a verifier checks against it.
* :mod:`.modelsig` -- the OpenSSF model signature (``model.sig``) over ``artifacts/``, which
  ``model_signing verify key`` accepts.

CycloneDX's model takes a third of a second to import, and a verifier does not need it; so
these names are imported on first use (:pep:`562`), reading a BOM from the light
:mod:`._aibom_check`.
"""

from typing import TYPE_CHECKING

from bitwright._lazy import lazy_names

if TYPE_CHECKING:
    from bitwright.release.aibom import (
        AIBOM_FILE,
        ModelFacts,
        ReleasedFile,
        aibom_subjects,
        build_aibom,
        flatten_metrics,
        validate_aibom,
    )
    from bitwright.release.modelsig import (
        MODEL_SIGNATURE_FILE,
        check_model_bundle,
        sign_model,
        verify_model,
    )

__all__ = [
    "AIBOM_FILE",
    "MODEL_SIGNATURE_FILE",
    "ModelFacts",
    "ReleasedFile",
    "aibom_subjects",
    "build_aibom",
    "check_model_bundle",
    "flatten_metrics",
    "sign_model",
    "validate_aibom",
    "verify_model",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        # Reading a BOM needs only the light _aibom_check (aibom re-exports the same objects).
        **dict.fromkeys(("AIBOM_FILE", "aibom_subjects", "validate_aibom"), "_aibom_check"),
        **dict.fromkeys(("ModelFacts", "ReleasedFile", "build_aibom", "flatten_metrics"), "aibom"),
        **dict.fromkeys(
            ("MODEL_SIGNATURE_FILE", "check_model_bundle", "sign_model", "verify_model"),
            "modelsig",
        ),
    },
)
