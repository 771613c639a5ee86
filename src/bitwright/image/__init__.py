"""The build image: made bit for bit from pinned inputs, stored by digest, obtained and checked.

``bitwright image build`` (:func:`.build.build_image`) turns the recipe
``containers/image.toml`` into an OCI image whose manifest digest is pinned, with every input,
in ``containers/images.lock`` (format: :mod:`bitwright.pins.container`)::

    recipe.py      the recipe: Debian suite and packages, Python packages, environment
    debian.py      mmdebstrap from exactly the locked .debs (resolved once from apt sources)
    wheels.py      the locked wheels, unpacked by their bytes (resolved once from the lock)
    normtar.py     the root file system as a tar whose bytes depend on its contents only
    oci.py         the OCI archive, written and read back with every digest checked
    store.py       archives by digest on this machine; in the DVC remote by md5
    obtain.py      podman by digest, else the store, else the DVC remote; loaded and checked
    environment.py the environment pin of a build whose stages ran in the image
    claims.py      what verify checks of a provenance that names an image

Stages run in it through :class:`bitwright.runner.PodmanSandbox`. Names are imported on first
use: most commands never touch the image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bitwright._lazy import lazy_names

if TYPE_CHECKING:
    from bitwright.image.build import ImageBuild, build_image
    from bitwright.image.claims import check_claimed_image
    from bitwright.image.environment import image_environment
    from bitwright.image.obtain import Obtained, obtain_image
    from bitwright.image.store import ImageStore

__all__ = [
    "ImageBuild",
    "ImageStore",
    "Obtained",
    "build_image",
    "check_claimed_image",
    "image_environment",
    "obtain_image",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "ImageBuild": "build",
        "build_image": "build",
        "check_claimed_image": "claims",
        "image_environment": "environment",
        "Obtained": "obtain",
        "obtain_image": "obtain",
        "ImageStore": "store",
    },
)
