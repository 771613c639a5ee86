"""bitwright: reproducible model builds whose every claim can be checked.

The data flows one way::

    pins (git, data, image, determinism, environment)
      -> runner (each DVC stage sealed: cleared env, no network, read-only repo, receipt)
      -> attest (a signed in-toto link per stage, the owner-signed layout, SLSA provenance)
      -> release (artifacts, attestations, keys, AI BOM, model signature)
      -> verify / rebuild / gate (signatures, digests, an independent rebuild, promotion)

The command line lives in :mod:`bitwright.cli`; stage code reports what it ran with through
:mod:`bitwright.stagekit`.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
