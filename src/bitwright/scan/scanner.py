"""Scanning a file or directory: every file and archive member judged by its content.

Each file is sniffed (:mod:`.formats`) and judged by what it is: a safetensors header is
validated (:mod:`.safetensors`); a pickle, a joblib file, a torch archive's pickles, a
numpy object array are run through the pickle machine (:mod:`.pickle_machine`), each
pickle of a file that holds several in turn; zip and tar archives are opened and every
member judged the same way, nested archives and compressed streams too (within
:class:`ScanLimits`); JSON is checked for custom code (``auto_map``, ``trust_remote_code``);
text for YAML tags that build Python objects; ``.py`` files and native libraries are code.
A file whose format none of this knows is reported as unknown. Nothing is imported,
called or written outside a private temporary spool.

Symbolic links to files are followed (a loader would follow them) and named in a note;
links to directories and special files (FIFOs, devices) are not opened.
"""

from __future__ import annotations

import contextlib
import lzma
import math
import os
import re
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bitwright.digest import sha256_files
from bitwright.errors import OperationalError
from bitwright.fileio import NotRegularFile, load_json, open_regular
from bitwright.scan._streams import Opener, TooLarge, decompress, spool_opener, tar_opener
from bitwright.scan.formats import HEAD_BYTES, Sniffed, is_code_name, sniff
from bitwright.scan.pickle_machine import analyse_pickle
from bitwright.scan.report import Finding, ScannedFile, ScanPolicy, ScanReport, Severity
from bitwright.scan.safetensors import MalformedSafetensors, check_safetensors

__all__ = ["ScanLimits", "scan_path"]

_JSON_LIMIT = 64 << 20
_YAML_PYTHON_TAG = re.compile(rb"!!python/|!python/|tag:yaml\.org,2002:python/")
_CUSTOM_CODE_KEYS = ("auto_map", "custom_pipelines")
_MAX_PICKLES = 16  # legacy torch files hold five in a row


@dataclass(frozen=True)
class ScanLimits:
    """Bounds on what a hostile archive can make the scanner do.

    Attributes:
        max_depth: archives and compressed streams nested deeper are not opened.
        max_members: members of one archive beyond this are not judged.
        max_unpacked_bytes: bytes decompressed in all (zip members, gzip...) per scan.
        spool_memory: decompressed streams larger than this are spooled to a temporary file.
    """

    max_depth: int = 4
    max_members: int = 100_000
    max_unpacked_bytes: int = 16 << 30
    spool_memory: int = 64 << 20


@dataclass(frozen=True)
class _Blob:
    label: str  # where findings point: FILE or FILE!MEMBER
    name: str  # the file or member name (only to recognize code by name)
    size: int
    open: Opener  # a fresh seekable stream at offset 0
    depth: int = 0
    tensor_data: bool = False  # a storage a pickle of the same archive refers to


@dataclass
class _Judged:
    format: str
    globals: set[str] = field(default_factory=set)
    storages: set[str] = field(default_factory=set)  # keys of torch storages referred to


@dataclass
class _Scan:
    policy: ScanPolicy
    limits: ScanLimits
    findings: list[Finding] = field(default_factory=list)
    unpacked: int = 0

    def add(self, blob: _Blob, severity: Severity, message: str) -> None:
        self.findings.append(Finding(blob.label, severity, message))

    # -- dispatch --------------------------------------------------------------------------

    def judge(self, blob: _Blob) -> _Judged:
        """Judge one file or member: its format, the globals and storages its pickles name."""
        if is_code_name(blob.name):
            self.add(blob, Severity.CUSTOM_CODE, "code shipped with the model (by its name)")
        with blob.open() as stream:
            head = stream.read(HEAD_BYTES)
        kind = sniff(head, blob.size)
        opens = kind in (Sniffed.ZIP, Sniffed.TAR) or kind.compressed
        if opens and blob.depth >= self.limits.max_depth:
            self.add(blob, Severity.UNKNOWN, f"{kind.value} nested too deep to open")
            return _Judged(kind.value)
        handler = _HANDLERS.get(kind)
        if handler is not None:
            return handler(self, blob)
        if kind is Sniffed.NATIVE:
            self.add(blob, Severity.CUSTOM_CODE, "a native library or executable")
        elif kind in (Sniffed.LZ4, Sniffed.GGUF):
            self.add(blob, Severity.UNKNOWN, f"{kind.value}: a format the scanner cannot judge")
        elif kind is not Sniffed.EMPTY:
            return self._plain(blob, kind)
        return _Judged(kind.value)

    def _plain(self, blob: _Blob, kind: Sniffed) -> _Judged:
        """Text or binary without a header: a protocol 0/1 pickle, JSON, text, or unknown."""
        judged = self._pickles(blob, announced=False)
        if judged is not None:
            return judged
        if kind is Sniffed.BINARY and blob.tensor_data:
            return _Judged("tensor-data")
        if kind is Sniffed.BINARY:
            self.add(blob, Severity.UNKNOWN, "binary data of a format the scanner cannot judge")
            return _Judged("unknown")
        return _Judged(self._text(blob))

    # -- pickles ---------------------------------------------------------------------------

    def _pickles(self, blob: _Blob, *, announced: bool, start: int = 0) -> _Judged | None:
        """Run every pickle stored back to back from ``start``; None if there is none."""
        judged = _Judged("pickle")
        with blob.open() as stream:
            if start:
                stream.seek(start)
            position = start
            for index in range(_MAX_PICKLES):
                result = analyse_pickle(
                    stream, size=blob.size, start=position, families=self.policy.families
                )
                first = announced if index == 0 else result.stopped
                if not (first or result.reached_code):
                    if index == 0 and not announced:
                        return None
                    break  # what follows the pickles is data (legacy torch storages)
                judged.globals.update(result.globals)
                judged.storages.update(s.key for s in result.storages)
                for problem in result.problems:
                    self.add(blob, Severity.UNSAFE, problem)
                if not result.stopped or result.end >= blob.size:
                    break
                position = result.end
        if "joblib.numpy_pickle.NumpyArrayWrapper" in judged.globals:
            judged.format = "joblib"
        return judged

    # -- other formats ---------------------------------------------------------------------

    def _safetensors(self, blob: _Blob) -> _Judged:
        with blob.open() as stream:
            try:
                check_safetensors(stream, blob.size)
            except MalformedSafetensors as exc:
                self.add(blob, Severity.UNSAFE, f"malformed safetensors header: {exc}")
        return _Judged("safetensors")

    def _pickle(self, blob: _Blob) -> _Judged:
        return self._pickles(blob, announced=True) or _Judged("pickle")

    def _npy(self, blob: _Blob) -> _Judged:
        import numpy as np
        from numpy.lib import format as npy

        with blob.open() as stream:
            try:
                version = npy.read_magic(stream)
                readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
                reader = readers.get(version)
                if reader is None:
                    self.add(blob, Severity.UNKNOWN, f"npy version {version} is not judged")
                    return _Judged("npy")
                shape, _, dtype = reader(stream)
            except (ValueError, SyntaxError, TypeError) as exc:
                self.add(blob, Severity.UNSAFE, f"malformed npy header: {_short(exc)}")
                return _Judged("npy")
            offset = stream.tell()
        if dtype.hasobject:
            judged = self._pickles(blob, announced=True, start=offset) or _Judged("")
            judged.format = "npy-object"
            return judged
        expected = math.prod(shape) * np.dtype(dtype).itemsize
        if blob.size - offset < expected:
            self.add(blob, Severity.UNSAFE, "the array data is shorter than its header says")
        elif blob.size - offset > expected:
            trailing = blob.size - offset - expected
            self.add(blob, Severity.NOTE, f"{trailing} bytes after the array data")
        return _Judged("npy")

    def _text(self, blob: _Blob) -> str:
        with blob.open() as stream:
            tail = b""
            while chunk := stream.read(1 << 20):
                if _YAML_PYTHON_TAG.search(tail + chunk):
                    self.add(
                        blob,
                        Severity.UNSAFE,
                        "a YAML python/ tag: PyYAML's unsafe loaders build Python objects from it",
                    )
                    break
                tail = chunk[-40:]
        if blob.size <= _JSON_LIMIT:
            with blob.open() as stream:
                data = stream.read(_JSON_LIMIT)
            if data.lstrip()[:1] in (b"{", b"["):
                return self._json(blob, data)
        return "python" if blob.name.endswith(".py") else "text"

    def _json(self, blob: _Blob, data: bytes) -> str:
        try:
            document = load_json(data, source=blob.label, hint="")
        except Exception:  # noqa: BLE001  (not JSON after all: it stays text)
            return "text"
        if isinstance(document, dict):
            for key in _CUSTOM_CODE_KEYS:
                if document.get(key):
                    self.add(blob, Severity.CUSTOM_CODE, f"{key} names custom code to load")
            if document.get("trust_remote_code") is True:
                self.add(blob, Severity.CUSTOM_CODE, "trust_remote_code is true")
        return "json"

    # -- archives and compressed streams ---------------------------------------------------

    def _zip(self, blob: _Blob) -> _Judged:
        judged = _Judged("zip")
        names: list[str] = []
        with blob.open() as stream:
            try:
                archive = zipfile.ZipFile(stream)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                self.add(blob, Severity.UNKNOWN, f"not a readable zip archive: {_short(exc)}")
                return judged
            with archive:
                # torch writes data.pkl before the storages it refers to: those are data.
                storages: set[str] = set()
                for index, info in enumerate(archive.infolist()):
                    if index >= self.limits.max_members:
                        self.add(blob, Severity.UNKNOWN, "more members than the scan opens")
                        break
                    if info.is_dir():
                        continue
                    names.append(info.filename)
                    inner = self._zip_member(blob, archive, info, storages)
                    judged.globals |= inner.globals
                    directory = info.filename.rpartition("/")[0]
                    storages |= {f"{directory}/data/{key}".lstrip("/") for key in inner.storages}
        judged.format = _archive_format(names)
        return judged

    def _zip_member(
        self, blob: _Blob, archive: zipfile.ZipFile, info: zipfile.ZipInfo, storages: set[str]
    ) -> _Judged:
        member = _Blob(
            f"{blob.label}!{info.filename}",
            info.filename,
            info.file_size,
            lambda: archive.open(info),
            blob.depth + 1,
            tensor_data=info.filename in storages,
        )
        if info.flag_bits & 0x1:
            self.add(member, Severity.UNKNOWN, "an encrypted member cannot be judged")
            return _Judged("encrypted")
        if info.compress_type != zipfile.ZIP_STORED and not self._spend(member, info.file_size):
            return _Judged("unknown")
        try:
            return self.judge(member)
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError) as exc:
            self.add(member, Severity.UNKNOWN, f"cannot read the member: {_short(exc)}")
            return _Judged("unknown")

    def _tar(self, blob: _Blob) -> _Judged:
        judged = _Judged("tar")
        with blob.open() as stream:
            try:
                archive = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115
            except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
                self.add(blob, Severity.UNKNOWN, f"not a readable tar archive: {_short(exc)}")
                return judged
            with archive:
                for index, info in enumerate(_tar_members(archive, blob, self)):
                    if index >= self.limits.max_members:
                        self.add(blob, Severity.UNKNOWN, "more members than the scan opens")
                        break
                    label = f"{blob.label}!{info.name}"
                    if not info.isfile():
                        if not info.isdir():
                            self.findings.append(
                                Finding(label, Severity.NOTE, "not a regular file; not opened")
                            )
                        continue
                    member = _Blob(
                        label, info.name, info.size, tar_opener(archive, info), blob.depth + 1
                    )
                    judged.globals |= self.judge(member).globals
        return judged

    def _compressed(self, blob: _Blob) -> _Judged:
        kind = sniff(_head(blob), blob.size)
        budget = self.limits.max_unpacked_bytes - self.unpacked
        spool = tempfile.SpooledTemporaryFile(max_size=self.limits.spool_memory)  # noqa: SIM115
        with spool:
            try:
                with blob.open() as stream:
                    size = decompress(kind, stream, spool, budget)
            except TooLarge:
                self.add(blob, Severity.UNKNOWN, "decompresses past the scan's byte budget")
                return _Judged(kind.value)
            except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
                self.add(blob, Severity.UNKNOWN, f"cannot decompress: {_short(exc)}")
                return _Judged(kind.value)
            self.unpacked += size
            inner = _Blob(
                f"{blob.label}!{kind.value}",
                blob.name.removesuffix(f".{kind.value}"),
                size,
                spool_opener(spool),
                blob.depth + 1,
            )
            judged = self.judge(inner)
        judged.format = f"{kind.value}:{judged.format}"
        return judged

    def _spend(self, blob: _Blob, size: int) -> bool:
        if self.unpacked + size > self.limits.max_unpacked_bytes:
            self.add(blob, Severity.UNKNOWN, "decompresses past the scan's byte budget")
            return False
        self.unpacked += size
        return True


_HANDLERS: dict[Sniffed, Callable[[_Scan, _Blob], _Judged]] = {
    Sniffed.SAFETENSORS: _Scan._safetensors,
    Sniffed.PICKLE: _Scan._pickle,
    Sniffed.NPY: _Scan._npy,
    Sniffed.ZIP: _Scan._zip,
    Sniffed.TAR: _Scan._tar,
    **dict.fromkeys(
        (Sniffed.GZIP, Sniffed.BZ2, Sniffed.XZ, Sniffed.LZMA, Sniffed.ZLIB), _Scan._compressed
    ),
}


def _tar_members(archive: tarfile.TarFile, blob: _Blob, scan: _Scan) -> Iterator[tarfile.TarInfo]:
    try:
        yield from archive
    except (tarfile.TarError, OSError, EOFError) as exc:
        scan.add(blob, Severity.UNKNOWN, f"the tar archive breaks off: {_short(exc)}")


def _head(blob: _Blob) -> bytes:
    with blob.open() as stream:
        return stream.read(HEAD_BYTES)


def _archive_format(names: list[str]) -> str:
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return "torch-zip"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    return "zip"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160]
    return text or type(exc).__name__


# -- walking a path --------------------------------------------------------------------------


def scan_path(
    path: Path,
    *,
    policy: ScanPolicy | None = None,
    limits: ScanLimits | None = None,
    digests: bool = True,
) -> ScanReport:
    """Scan the file or directory ``path``.

    Args:
        path: a model file, or a directory of them (walked; directory links not followed).
        policy: what the verdict admits besides the allowlist (default: nothing).
        limits: bounds on archives and decompression.
        digests: give every file its sha256 (evidence for a gate); without, ``""``: the
            scan itself reads only what it judges (a safetensors file: its header).

    Returns:
        Every file with its format, digest and pickle globals, and every finding.

    Raises:
        OperationalError: ``path`` does not exist or cannot be read.
    """
    policy = policy or ScanPolicy()
    scan = _Scan(policy, limits or ScanLimits())
    if not path.exists() and not path.is_symlink():
        raise OperationalError(f"{path} not found", hint="check the path to scan")
    files = list(_files(path, scan))
    sha256 = sha256_files([target for _, target in files], None) if digests else {}
    scanned: list[ScannedFile] = []
    for label, target in files:
        size = target.stat().st_size
        blob = _Blob(label, target.name, size, _file_opener(target))
        judged = scan.judge(blob)
        scanned.append(
            ScannedFile(
                label, judged.format, size, sha256.get(target, ""), tuple(sorted(judged.globals))
            )
        )
    return ScanReport(
        root=str(path),
        files=tuple(sorted(scanned, key=lambda f: f.path)),
        findings=tuple(scan.findings),
        policy=policy,
    )


def _file_opener(path: Path) -> Opener:
    @contextlib.contextmanager
    def opened() -> Iterator[BinaryIO]:
        with open_regular(path, follow_symlinks=True) as handle:
            yield handle

    return opened


def _files(root: Path, scan: _Scan) -> Iterator[tuple[str, Path]]:
    """(label, path) of every regular file to scan; what is skipped becomes a finding."""
    if not root.is_dir() or root.is_symlink():
        yield from _regular(root.name, root, scan)
        return
    for directory, dirs, names in os.walk(root):
        base = Path(directory)
        for name in sorted(dirs):
            if (base / name).is_symlink():
                label = (base / name).relative_to(root).as_posix()
                scan.findings.append(
                    Finding(label, Severity.UNKNOWN, "a link to a directory; not followed")
                )
        dirs[:] = sorted(d for d in dirs if not (base / d).is_symlink())
        for name in sorted(names):
            yield from _regular((base / name).relative_to(root).as_posix(), base / name, scan)


def _regular(label: str, path: Path, scan: _Scan) -> Iterator[tuple[str, Path]]:
    try:
        with open_regular(path, follow_symlinks=True):
            pass
    except NotRegularFile:
        scan.findings.append(Finding(label, Severity.UNKNOWN, "not a regular file; not opened"))
        return
    except OperationalError as exc:
        if path.is_symlink():
            scan.findings.append(Finding(label, Severity.UNKNOWN, "a broken symbolic link"))
            return
        raise OperationalError(exc.message, hint=exc.hint) from None
    if path.is_symlink():
        scan.findings.append(
            Finding(label, Severity.NOTE, f"a link to {os.path.realpath(path)}; its target judged")
        )
    yield label, path
