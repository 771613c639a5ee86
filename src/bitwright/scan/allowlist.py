"""The one allowlist of globals a pickle may reach: the data the pickle machine judges against.

A pickle can import any module and call anything in it (``GLOBAL``/``STACK_GLOBAL`` import,
``REDUCE``/``INST``/``OBJ``/``NEWOBJ`` call), so a model file is safe to load only when every
global it names is one that is harmless *for any arguments*. This module lists those, by
family, and how far each may be used (:class:`Use`):

* ``REFERENCE`` -- imported and looked up, nothing more (a class stored as an attribute);
* ``CONSTRUCT`` -- a class created by ``NEWOBJ`` (``cls.__new__``, no ``__init__``) and
  given its state by ``BUILD``, or named as the class of ``copyreg._reconstructor``;
* ``CALL`` -- called with arguments the file chooses (``REDUCE``, ``INST``, ``OBJ``), or
  handed to such a call (a function given a global may call it).

Exact entries name one ``module`` and ``name`` and admit every use. Prefix entries admit
every plain name (no dots, no dunders: Python resolves dotted names attribute by attribute)
of a package and its submodules, for ``REFERENCE`` and ``CONSTRUCT`` only: scikit-learn's
estimators are plain classes whose state is set by ``BUILD``, but nothing vouches for every
function of the package.

Families:

* ``torch`` -- exactly the globals of torch's ``weights_only`` unpickler (torch 2.13): the
  tensor and storage rebuild functions, storage, tensor and dtype names, ``Size``,
  ``device``, ``OrderedDict``, ``Counter``, and the few builtins it admits;
* ``numpy`` -- array, scalar and dtype reconstruction (``numpy.core`` and numpy 2's
  ``numpy._core``), the scalar types, and random generators' state;
* ``sklearn`` -- scikit-learn's classes by prefix, plus its extension types that pickle by
  ``__reduce__`` (trees, KD/ball trees, losses);
* ``joblib`` -- joblib's array wrapper, whose array bytes follow it in the file;
* ``scipy`` -- sparse matrices and arrays by prefix (features of text models);
* ``builtins`` -- containers and numbers of the standard library, ``_codecs.encode``
  (bytes in protocol 2) and ``copyreg._reconstructor`` (protocol 0/1 objects).

:func:`allowed_use` answers for a (module, name); :data:`ALLOWLIST` is the table, so other
readers of pickles (a restricted ``Unpickler.find_class``) use the same answers. Python 2
names (``__builtin__``, ``copy_reg``), which protocol 2 pickles written by Python 3 still use,
are read as their Python 3 names (:func:`python3_module`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "ALLOWLIST",
    "CONSTRUCTORS",
    "DEFAULT_FAMILIES",
    "FAMILIES",
    "AllowEntry",
    "Use",
    "allowed_use",
    "constructor_uses",
    "python3_module",
]


class Use(IntEnum):
    """How far a pickle uses a global; a larger use needs a more trusted entry."""

    REFERENCE = 0
    CONSTRUCT = 1
    CALL = 2


@dataclass(frozen=True)
class AllowEntry:
    """One row of the allowlist.

    Attributes:
        module: the module (for a prefix entry: the package whose submodules count too).
        name: the attribute, or ``"*"`` for a prefix entry.
        family: which family of files needs it.
        use: the most it may be used for.
    """

    module: str
    name: str
    family: str
    use: Use

    @property
    def prefix(self) -> bool:
        """Whether the entry admits every plain name of the package and its submodules."""
        return self.name == "*"


def _exact(family: str, module: str, names: Iterable[str]) -> list[AllowEntry]:
    return [AllowEntry(module, name, family, Use.CALL) for name in names]


def _prefix(family: str, package: str) -> AllowEntry:
    return AllowEntry(package, "*", family, Use.CONSTRUCT)


_TORCH_DTYPES = [
    "bfloat16",
    "bits16",
    "bits1x8",
    "bits2x4",
    "bits4x2",
    "bits8",
    "bool",
    "complex128",
    "complex32",
    "complex64",
    "float16",
    "float32",
    "float4_e2m1fn_x2",
    "float64",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "int1",
    "int16",
    "int2",
    "int3",
    "int32",
    "int4",
    "int5",
    "int6",
    "int64",
    "int7",
    "int8",
    "qint32",
    "qint8",
    "quint2x4",
    "quint4x2",
    "quint8",
    "uint1",
    "uint16",
    "uint2",
    "uint3",
    "uint32",
    "uint4",
    "uint5",
    "uint6",
    "uint64",
    "uint7",
    "uint8",
]
_TORCH_KINDS = [
    "BFloat16",
    "Bool",
    "Byte",
    "Char",
    "Double",
    "Float",
    "Half",
    "Int",
    "Long",
    "Short",
]
_TORCH_QUANT = [
    "per_channel_affine",
    "per_channel_affine_float_qparams",
    "per_channel_symmetric",
    "per_tensor_affine",
    "per_tensor_symmetric",
]
_TORCH_REBUILD = [
    "_rebuild_device_tensor_from_cpu_tensor",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_nested_tensor",
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_sparse_tensor",
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_wrapper_subclass",
]

_TORCH = [
    *_exact("torch", "collections", ["OrderedDict", "Counter"]),
    *_exact("torch", "_codecs", ["encode"]),
    *_exact("torch", "builtins", ["bytearray", "set", "complex"]),
    *_exact(
        "torch",
        "torch",
        [
            "Size",
            "Tensor",
            "device",
            *_TORCH_DTYPES,
            *_TORCH_QUANT,
            *(f"{k}Storage" for k in [*_TORCH_KINDS, "ComplexDouble", "ComplexFloat"]),
            *(f"{k}Storage" for k in ["QInt32", "QInt8", "QUInt2x4", "QUInt4x2", "QUInt8"]),
            *(f"{k}Tensor" for k in _TORCH_KINDS),
        ],
    ),
    *_exact(
        "torch",
        "torch.cuda",
        [
            *(f"{k}Storage" for k in [*_TORCH_KINDS, "ComplexDouble", "ComplexFloat"]),
            *(f"{k}Tensor" for k in _TORCH_KINDS),
        ],
    ),
    *_exact("torch", "torch.sparse", [f"{k}Tensor" for k in _TORCH_KINDS if k != "Bool"]),
    *_exact("torch", "torch.cuda.sparse", [f"{k}Tensor" for k in _TORCH_KINDS if k != "Bool"]),
    *_exact("torch", "torch.storage", ["TypedStorage", "UntypedStorage"]),
    *_exact("torch", "torch.nn.parameter", ["Parameter"]),
    *_exact("torch", "torch.serialization", ["_get_layout"]),
    *_exact("torch", "torch._utils", _TORCH_REBUILD),
    *_exact("torch", "torch._tensor", ["_rebuild_from_type_v2"]),
]

_NUMPY_SCALARS = [
    "bool",
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "intc",
    "uintc",
    "intp",
    "uintp",
    "longlong",
    "ulonglong",
    "float16",
    "float32",
    "float64",
    "longdouble",
    "complex64",
    "complex128",
    "clongdouble",
    "str_",
    "bytes_",
    "void",
    "object_",
    "datetime64",
    "timedelta64",
]

_NUMPY = [
    *_exact("numpy", "numpy", ["ndarray", "dtype", *_NUMPY_SCALARS]),
    *_exact("numpy", "numpy._core.multiarray", ["_reconstruct", "scalar"]),
    *_exact("numpy", "numpy.core.multiarray", ["_reconstruct", "scalar"]),
    *_exact("numpy", "numpy._core.numeric", ["_frombuffer"]),
    *_exact("numpy", "numpy.core.numeric", ["_frombuffer"]),
    *_exact(
        "numpy",
        "numpy.random._pickle",
        ["__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor"],
    ),
    *_exact("numpy", "numpy.random.mtrand", ["RandomState"]),
    *_exact("numpy", "numpy.random._generator", ["Generator"]),
    _prefix("numpy", "numpy.dtypes"),
    *_exact("numpy", "numpy.random._mt19937", ["MT19937"]),
    *_exact("numpy", "numpy.random._pcg64", ["PCG64", "PCG64DXSM"]),
    *_exact("numpy", "numpy.random._philox", ["Philox"]),
    *_exact("numpy", "numpy.random._sfc64", ["SFC64"]),
    *_exact("numpy", "numpy.random.bit_generator", ["SeedSequence"]),
]

_SKLEARN = [
    _prefix("sklearn", "sklearn"),
    *_exact("sklearn", "sklearn.tree._tree", ["Tree"]),
    *_exact("sklearn", "sklearn.metrics._dist_metrics", ["newObj"]),
    *_exact("sklearn", "sklearn.neighbors._kd_tree", ["newObj"]),
    *_exact("sklearn", "sklearn.neighbors._ball_tree", ["newObj"]),
    *_exact("sklearn", "sklearn.neighbors._kd_tree", ["KDTree"]),
    *_exact("sklearn", "sklearn.neighbors._ball_tree", ["BallTree"]),
    *_exact(
        "sklearn",
        "sklearn._loss._loss",
        [
            "CyAbsoluteError",
            "CyExponentialLoss",
            "CyHalfBinomialLoss",
            "CyHalfGammaLoss",
            "CyHalfMultinomialLoss",
            "CyHalfPoissonLoss",
            "CyHalfSquaredError",
            "CyHalfTweedieLoss",
            "CyHalfTweedieLossIdentity",
            "CyHuberLoss",
            "CyPinballLoss",
        ],
    ),
]

_JOBLIB = [AllowEntry("joblib.numpy_pickle", "NumpyArrayWrapper", "joblib", Use.CONSTRUCT)]

_SCIPY = [_prefix("scipy", "scipy.sparse")]

_BUILTINS = [
    *_exact(
        "builtins",
        "builtins",
        [
            "bool",
            "bytearray",
            "bytes",
            "complex",
            "dict",
            "float",
            "frozenset",
            "int",
            "list",
            "object",
            "range",
            "set",
            "slice",
            "str",
            "tuple",
        ],
    ),
    *_exact("builtins", "collections", ["OrderedDict", "Counter", "defaultdict", "deque"]),
    *_exact("builtins", "_codecs", ["encode"]),
    *_exact("builtins", "copyreg", ["_reconstructor"]),
]

ALLOWLIST: tuple[AllowEntry, ...] = (*_TORCH, *_NUMPY, *_SKLEARN, *_JOBLIB, *_SCIPY, *_BUILTINS)
"""Every entry, by family (a name may be listed by more than one family)."""

CONSTRUCTORS: dict[tuple[str, str], tuple[Use, ...]] = {
    ("copyreg", "_reconstructor"): (Use.CONSTRUCT, Use.CALL),
    ("sklearn.metrics._dist_metrics", "newObj"): (Use.CONSTRUCT,),
    ("sklearn.neighbors._kd_tree", "newObj"): (Use.CONSTRUCT,),
    ("sklearn.neighbors._ball_tree", "newObj"): (Use.CONSTRUCT,),
}
"""Allowlisted helpers that only create an instance of a class they are given, and how they
use their leading arguments: ``copyreg._reconstructor(cls, base, state)`` makes ``cls`` with
``base.__new__`` (and calls ``base.__init__``), Cython's ``newObj(cls)`` calls
``cls.__new__``. Later arguments count as passed to a call. Cython's ``__pyx_unpickle_X(cls,
checksum, state)`` of an admitted class ``X`` is one too (:func:`constructor_uses`): it makes
``cls``, which must be ``X`` or a subclass, and sets its C fields from ``state``."""

_CYTHON_UNPICKLE = "__pyx_unpickle_"

FAMILIES = ("torch", "numpy", "sklearn", "joblib", "scipy", "builtins")
"""The families, in the order of :data:`ALLOWLIST`."""

DEFAULT_FAMILIES = frozenset(FAMILIES)
"""What ``bitwright scan`` admits unless told otherwise."""

_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*|_[A-Za-z0-9][A-Za-z0-9_]*")

_EXACT: dict[tuple[str, str], list[AllowEntry]] = {}
_PREFIXES: list[AllowEntry] = []
for _entry in ALLOWLIST:
    if _entry.prefix:
        _PREFIXES.append(_entry)
    else:
        _EXACT.setdefault((_entry.module, _entry.name), []).append(_entry)


def constructor_uses(module: str, name: str) -> tuple[Use, ...]:
    """How an allowlisted constructor helper uses its leading arguments (see CONSTRUCTORS)."""
    module = python3_module(module)
    if name.startswith(_CYTHON_UNPICKLE):
        return (Use.CONSTRUCT,)
    return CONSTRUCTORS.get((module, name), ())


def python3_module(module: str) -> str:
    """The Python 3 name of a module a protocol 2 pickle may name by its Python 2 name."""
    return _PY2_MODULES.get(module, module)


def allowed_use(module: str, name: str, families: frozenset[str] = DEFAULT_FAMILIES) -> Use | None:
    """Return the most the allowlist lets a pickle do with ``module.name``, or ``None``.

    Args:
        module: the module as the pickle names it (Python 2 names are mapped).
        name: the attribute (a dotted name is never admitted by a prefix entry).
        families: the families to consult.
    """
    module = python3_module(module)
    if name.startswith(_CYTHON_UNPICKLE):
        cls = name.removeprefix(_CYTHON_UNPICKLE)
        return Use.CALL if allowed_use(module, cls, families) is not None else None
    best: Use | None = None
    for entry in _EXACT.get((module, name), ()):
        if entry.family in families:
            best = entry.use if best is None else max(best, entry.use)
    if best is not None or _PLAIN_NAME.fullmatch(name) is None or name.startswith("__"):
        return best
    for entry in _PREFIXES:
        inside = module == entry.module or module.startswith(entry.module + ".")
        if inside and entry.family in families:
            best = entry.use if best is None else max(best, entry.use)
    return best
