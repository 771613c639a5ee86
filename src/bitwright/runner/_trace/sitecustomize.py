"""The runner's start-up hook in every Python process of a sealed stage: reads and receipts.

bitwright's runner puts this directory first on the stage's ``PYTHONPATH``, so every Python
process of the stage (subprocesses and workers too) imports it at start-up, whether or not
the stage's code ever imports bitwright. It does two things, with the standard library only
and never raising into the stage:

* **Read tracing** (warn-only): an audit hook (PEP 578) appends each path opened for reading
  under ``$BITWRIGHT_TRACE_ROOT`` to ``$BITWRIGHT_TRACE``, NUL-terminated, except under the
  directories listed (``:``-separated) in ``$BITWRIGHT_TRACE_SKIP`` (the toolchain). The hook
  runs before the open, so an open that then fails (a file hidden by strict mode) is recorded
  too. Opens by native code that bypasses Python are not seen; strict mode hides those files.
* **The Python receipt**: at exit, one JSON line appended to ``$BITWRIGHT_RECEIPT``: process
  ids, ``sys.flags.hash_randomization``, the variables named in ``$BITWRIGHT_CONFIRM`` as the
  interpreter saw them at start-up, the numerical libraries it loaded, torch's settings
  when it loaded torch (read from the loaded module: nothing is imported for it), whether
  ``bitwright.stagekit.begin()`` ran, and the sha256 of every declared parameter file
  (``$BITWRIGHT_PARAMS``, ``:``-separated absolute paths) as the process opened it.
"""

from __future__ import annotations

import atexit
import os
import stat
import sys
from types import ModuleType

__all__: list[str] = []

_FRAMEWORKS = ("jax", "numpy", "numpy.random", "scipy", "sklearn", "tensorflow", "torch")
_CONFIRMED = [name for name in os.environ.get("BITWRIGHT_CONFIRM", "").split(":") if name]
_STARTUP_ENV = {name: os.environ[name] for name in _CONFIRMED if name in os.environ}
_PARAMS_MAX = 64 << 20
_params_seen: dict[str, str] = {}


def _reads(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return "r" in mode or "+" in mode
    if isinstance(flags, int):
        return flags & os.O_ACCMODE != os.O_WRONLY
    return True


def _opened_path(args: tuple[object, ...]) -> str | None:
    """The absolute path an ``open`` audit event reads, or None (a write, a descriptor)."""
    target = args[0]
    if not isinstance(target, str | bytes | os.PathLike) or not _reads(args[1], args[2]):
        return None
    return os.path.abspath(os.fsdecode(os.fspath(target)))


def _install_trace(params: dict[str, str]) -> None:
    trace = os.environ.get("BITWRIGHT_TRACE")
    root = os.environ.get("BITWRIGHT_TRACE_ROOT")
    if not (trace and root) and not params:
        return
    fd = -1
    if trace and root:
        try:
            fd = os.open(trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            fd = -1
    prefix = (root or "/").rstrip("/") + "/"
    skip = tuple(
        d.rstrip("/") + "/" for d in os.environ.get("BITWRIGHT_TRACE_SKIP", "").split(":") if d
    )
    seen: set[str] = set()
    busy = [False]

    def record(path: str) -> None:
        if fd >= 0 and path not in seen:
            seen.add(path)
            os.write(fd, os.fsencode(path) + b"\0")

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event != "open" or busy[0]:
            return
        busy[0] = True  # the hook's own opens must not come back here
        try:
            full = _opened_path(args)
            if full is None:
                return
            if full in params and full not in _params_seen:
                _params_seen[full] = _sha256_of(full)
            if not full.startswith(prefix) or full.startswith(skip):
                return
            record(full)
            real = os.path.realpath(full)
            if real != full and real.startswith(prefix):
                record(real)
        except Exception:  # a trace must never break the stage
            pass
        finally:
            busy[0] = False

    sys.addaudithook(hook)


def _sha256_of(path: str) -> str:
    """sha256 of the regular file ``path`` leads to (``not-a-regular-file`` otherwise)."""
    import hashlib

    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    fd = os.open(os.path.realpath(path), flags)  # what the stage's own open reads
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _PARAMS_MAX:
            return "not-a-regular-file"
        digest = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


def _torch_state(torch: ModuleType) -> dict[str, object]:
    """The settings of a loaded torch as the process ends (public API only)."""
    backends = torch.backends
    devices = ["cpu"]
    if torch.cuda.is_initialized():
        devices += [
            f"cuda:{i}"
            for i in range(torch.cuda.device_count())
            if torch.cuda.max_memory_allocated(i) > 0
        ]
    return {
        "version": str(torch.__version__),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "deterministic_warn_only": bool(torch.is_deterministic_algorithms_warn_only_enabled()),
        "cudnn_deterministic": bool(backends.cudnn.deterministic),
        "cudnn_benchmark": bool(backends.cudnn.benchmark),
        "allow_tf32_matmul": bool(backends.cuda.matmul.allow_tf32),
        "allow_tf32_cudnn": bool(backends.cudnn.allow_tf32),
        "threads": int(torch.get_num_threads()),
        "interop_threads": int(torch.get_num_interop_threads()),
        "cpu_capability": str(backends.cpu.get_cpu_capability()),
        "initial_seed": int(torch.initial_seed()),
        "devices": devices,
    }


def _receipt(root: str) -> dict[str, object]:
    """The Python receipt of this process, as it ends."""
    frameworks = [name for name in _FRAMEWORKS if name in sys.modules]
    torch_state = None
    if "torch" in sys.modules:
        try:
            torch_state = _torch_state(sys.modules["torch"])
        except Exception:  # half-imported torch: the receipt then lacks its part (fails closed)
            torch_state = None
    stagekit = sys.modules.get("bitwright.stagekit")
    prefix = root.rstrip("/") + "/"
    return {
        "kind": "python",
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "hash_randomization": sys.flags.hash_randomization,
        "env": _STARTUP_ENV,
        "frameworks": frameworks,
        "torch": torch_state,
        "params": {p.removeprefix(prefix): d for p, d in sorted(_params_seen.items())},
        "stagekit": bool(getattr(stagekit, "began", lambda: False)()),
    }


def _install_receipt() -> None:
    path = os.environ.get("BITWRIGHT_RECEIPT")
    if not path:
        return
    root = os.environ.get("BITWRIGHT_TRACE_ROOT", "/")

    def write() -> None:
        try:
            import json

            line = json.dumps(_receipt(root), sort_keys=True) + "\n"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except Exception:  # a missing receipt fails the stage closed; never crash the exit
            pass

    atexit.register(write)  # registered first, so it runs after the stage's own handlers


def _install() -> None:
    params = {p for p in os.environ.get("BITWRIGHT_PARAMS", "").split(":") if p}
    _install_trace(dict.fromkeys(params, ""))
    _install_receipt()


_install()
