"""How a comparison reads each global a pickled model may name: the role of its stand-in.

Which globals are admitted at all is decided by the one allowlist, the model scanner's
(:func:`bitwright.scan.allowlist.allowed_use`, every family): a pickle naming anything else
(``os.system``, ``builtins.eval``, ``builtins.getattr``...) is not read further and is
compared by its bytes. The comparison never imports or calls an admitted global either:
:mod:`._pickle_data` turns each into a stand-in that records its arguments and state. This
module only says which stand-in plays it:

* ``array``: ``numpy``'s array reconstructor; its BUILD state holds shape, dtype and raw bytes;
* ``frombuffer``: how protocol 5 writes an array: its bytes, dtype, shape and order;
* ``dtype``: ``numpy.dtype``; its BUILD state holds byte order and fields;
* ``scalar``: a numpy scalar from a dtype and its raw bytes;
* ``latin1``: ``_codecs.encode(text, "latin1")``, how protocol 2 writes bytes;
* ``reconstructor``: ``copyreg._reconstructor(cls, base, state)``, an object of ``cls``;
* ``dict``, ``set``, ``frozenset``, ``bytearray``, ``complex``: plain containers and values;
* ``joblib-array``: joblib's wrapper, whose array bytes follow the wrapper in the file;
* ``class`` (every other admitted global): objects are records of their arguments and state.
"""

from __future__ import annotations

from bitwright.scan.allowlist import FAMILIES, allowed_use, python3_module

__all__ = ["ROLES", "role_of"]

ROLES: dict[str, str] = {
    "numpy.core.multiarray._reconstruct": "array",
    "numpy._core.multiarray._reconstruct": "array",
    "numpy.core.numeric._frombuffer": "frombuffer",
    "numpy._core.numeric._frombuffer": "frombuffer",
    "numpy.dtype": "dtype",
    "numpy.core.multiarray.scalar": "scalar",
    "numpy._core.multiarray.scalar": "scalar",
    "_codecs.encode": "latin1",
    "copyreg._reconstructor": "reconstructor",
    "builtins.set": "set",
    "builtins.frozenset": "frozenset",
    "builtins.bytearray": "bytearray",
    "builtins.complex": "complex",
    "collections.OrderedDict": "dict",
    "joblib.numpy_pickle.NumpyArrayWrapper": "joblib-array",
}
"""The globals whose stand-ins are not plain records (every one is also on the allowlist)."""

_EVERY_FAMILY = frozenset(FAMILIES)


def role_of(module: str, name: str) -> str | None:
    """The role of the global ``module.name``, or None when the allowlist does not admit it."""
    if allowed_use(module, name, _EVERY_FAMILY) is None:
        return None
    return ROLES.get(f"{python3_module(module)}.{name}", "class")
