"""Bundles the last build into a release and describes it.

* :mod:`.aibom` -- the AI bill of materials (``aibom.cdx.json``): a CycloneDX 1.6 ML-BOM of the
  model, its datasets and its software, and the file digests a verifier checks against it.
* :mod:`.modelsig` -- the OpenSSF model signature (``model.sig``) over ``artifacts/``, which
  ``model_signing verify key`` accepts.
"""

from bitwright.release.aibom import (
    AIBOM_FILE,
    ModelFacts,
    aibom_subjects,
    build_aibom,
    flatten_metrics,
    validate_aibom,
)
from bitwright.release.modelsig import MODEL_SIGNATURE_FILE, sign_model, verify_model

__all__ = [
    "AIBOM_FILE",
    "MODEL_SIGNATURE_FILE",
    "ModelFacts",
    "aibom_subjects",
    "build_aibom",
    "flatten_metrics",
    "sign_model",
    "validate_aibom",
    "verify_model",
]
