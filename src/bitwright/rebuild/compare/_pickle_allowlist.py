"""Which globals a pickled model may name for it to be compared as data (a data table only).

The comparison never imports or calls any of them: :mod:`._pickle_data` turns each into a
stand-in that records its arguments and state. A pickle that names anything else (``os.system``,
``builtins.eval``, ``builtins.getattr``...) is not read further and is compared by its bytes.
The table is data so that it can be merged with the allowlist of the model scanner later.

Each entry maps ``module.name`` to the role the stand-in plays:

* ``array``: ``numpy``'s array reconstructor; its BUILD state holds shape, dtype and raw bytes;
* ``frombuffer``: how protocol 5 writes an array: its bytes, dtype, shape and order;
* ``dtype``: ``numpy.dtype``; its BUILD state holds byte order and fields;
* ``scalar``: a numpy scalar from a dtype and its raw bytes;
* ``latin1``: ``_codecs.encode(text, "latin1")``, how protocol 2 writes bytes;
* ``reconstructor``: ``copyreg._reconstructor(cls, base, state)``, an object of ``cls``;
* ``dict``, ``set``, ``frozenset``, ``bytearray``, ``complex``: plain containers and values;
* ``joblib-array``: joblib's wrapper, whose array bytes follow the wrapper in the file;
* ``class``: a class whose objects are records of their arguments and state.

Besides the names listed, every class of the packages in :data:`CLASS_PREFIXES` is a
``class`` (their estimators, transformers and sparse matrices are data once nothing runs).
"""

from __future__ import annotations

__all__ = ["ALLOWED_GLOBALS", "CLASS_PREFIXES", "MODULE_ALIASES", "role_of"]

MODULE_ALIASES: dict[str, str] = {"__builtin__": "builtins", "copy_reg": "copyreg"}
"""Python 2 module names that protocols 0 to 2 write for Python 3's (pickle's fix_imports)."""

ALLOWED_GLOBALS: dict[str, str] = {
    "numpy.core.multiarray._reconstruct": "array",
    "numpy._core.multiarray._reconstruct": "array",
    "numpy.core.numeric._frombuffer": "frombuffer",
    "numpy._core.numeric._frombuffer": "frombuffer",
    "numpy.ndarray": "class",
    "numpy.dtype": "dtype",
    "numpy.core.multiarray.scalar": "scalar",
    "numpy._core.multiarray.scalar": "scalar",
    "numpy.random._pickle.__randomstate_ctor": "class",
    "numpy.random._pickle.__bit_generator_ctor": "class",
    "numpy.random._pickle.__generator_ctor": "class",
    "numpy.random.mtrand.RandomState": "class",
    "numpy.random._mt19937.MT19937": "class",
    "numpy.random._pcg64.PCG64": "class",
    "numpy.random._generator.Generator": "class",
    "_codecs.encode": "latin1",
    "copyreg._reconstructor": "reconstructor",
    "builtins.object": "class",
    "builtins.set": "set",
    "builtins.frozenset": "frozenset",
    "builtins.bytearray": "bytearray",
    "builtins.complex": "complex",
    "collections.OrderedDict": "dict",
    "joblib.numpy_pickle.NumpyArrayWrapper": "joblib-array",
}

CLASS_PREFIXES: tuple[str, ...] = ("sklearn.", "scipy.sparse.", "numpy.dtypes.")
"""Packages whose classes are records: a class name starts with a capital or is a scipy
sparse matrix (``csr_matrix``)."""


def role_of(module: str, name: str) -> str | None:
    """The role of the global ``module.name``, or None when it is not allowed."""
    dotted = f"{MODULE_ALIASES.get(module, module)}.{name}"
    role = ALLOWED_GLOBALS.get(dotted)
    if role is not None:
        return role
    if not name.isidentifier() or name.startswith("_"):
        return None
    for prefix in CLASS_PREFIXES:
        if dotted.startswith(prefix) and (name[0].isupper() or prefix == "scipy.sparse."):
            return "class"
    return None
