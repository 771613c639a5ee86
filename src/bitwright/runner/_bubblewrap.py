"""The bubblewrap sandbox: no network, read-only repository, cleared environment, own PIDs.

The mount plan, in order (later mounts cover earlier ones)::

    /               read-only bind of the host (interpreter, installed packages, libraries)
    credentials     the caller's ~/.ssh, ~/.aws, ~/.netrc ... covered by empty read-only mounts
    /dev /proc /tmp fresh; GPU device nodes bound when present
    REPO            an empty tmpfs, then the visible paths bound read-only into it (every
                    entry but hidden paths in warn mode), hidden paths inside those covered
                    by an empty read-only tmpfs, then the tmpfs itself remounted read-only
    writable binds  scratch directories over the outs' parents, each refilled with the visible
                    part of the real directory (read-only); the run's private directory
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bitwright.errors import OperationalError
from bitwright.model.run import SandboxKind, SandboxReport
from bitwright.runner._base import Sandbox
from bitwright.runner.view import Bind, RepoView, child_toward, strictly_under

__all__ = ["BubblewrapSandbox", "probe_bubblewrap"]

_ISOLATION = ("--unshare-net", "--unshare-ipc", "--unshare-pid", "--unshare-uts")
_GPU_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps", "/dev/dri")
_HOSTNAME = "bitwright"
_CREDENTIALS = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".docker",
    ".kube",
    ".netrc",
    ".git-credentials",
    ".pypirc",
    ".bitwright",
)
"""Where the caller's home keeps secrets; the host is shown read-only, these never."""


@functools.cache
def probe_bubblewrap(executable: str = "bwrap") -> tuple[str, ...] | None:
    """Return the isolation flags bubblewrap really applies here, or None if it cannot run.

    The probe runs ``true`` with all namespaces, then with the network namespace only (some
    kernels refuse PID or IPC namespaces to unprivileged users); once per process.
    """
    path = shutil.which(executable)
    if path is None:
        return None
    for flags in (_ISOLATION, ("--unshare-net",)):
        argv = [path, "--die-with-parent", *flags, "--ro-bind", "/", "/", "--dev", "/dev"]
        argv += ["--proc", "/proc", "--", "true"]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=30, check=False, env={})
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0:
            return (path, *flags)
    return None


class BubblewrapSandbox(Sandbox):
    """Seals a stage with bubblewrap (``bwrap``), as root or as a plain user.

    Args:
        executable: the absolute path of ``bwrap``.
        isolation: the ``--unshare-*`` flags the probe found working.
        hostname: the stage's host name, in its own UTS namespace.
    """

    kind = SandboxKind.BUBBLEWRAP
    remaps = True
    status_channel = True

    def __init__(
        self, executable: str, isolation: Sequence[str], *, hostname: str = _HOSTNAME
    ) -> None:
        self.executable = executable
        self.isolation = tuple(isolation)
        self.hostname = hostname

    @classmethod
    def detect(cls) -> BubblewrapSandbox:
        """Return a bubblewrap sandbox that was seen to work here.

        Raises:
            OperationalError: ``bwrap`` is missing or cannot create namespaces.
        """
        probed = probe_bubblewrap()
        if probed is None:
            raise OperationalError(
                "bubblewrap (bwrap) is not installed or cannot create namespaces here",
                hint="apt-get install bubblewrap; in a container, allow user namespaces",
            )
        return cls(probed[0], probed[1:])

    def wrap(
        self,
        argv: Sequence[str],
        *,
        view: RepoView,
        writable: Sequence[Bind],
        env: Mapping[str, str],
        cwd: Path,
        status_fd: int | None = None,
    ) -> list[str]:
        """Return the ``bwrap`` command line that runs ``argv`` sealed (see the module doc)."""
        args = [self.executable, "--die-with-parent", "--new-session", *self.isolation]
        if "--unshare-uts" in self.isolation:
            args += ["--hostname", self.hostname]
        if os.geteuid() == 0:  # a root stage could otherwise remount the repository writable
            args += ["--cap-drop", "ALL"]
        if status_fd is not None:
            args += ["--json-status-fd", str(status_fd)]
        args += ["--ro-bind", "/", "/", "--dev", "/dev"]
        for pattern in _GPU_DEVICES:
            for node in sorted(glob.glob(pattern)):
                args += ["--dev-bind-try", node, node]
        args += ["--proc", "/proc", "--tmpfs", "/tmp", *_toolchain_in_tmp(view.root)]
        args += _hide_credentials(view.root)
        inside = [_repo_relative(view.root, b.target) for b in writable]
        scratch = [rel for rel in inside if rel is not None]
        cwd_rel = _repo_relative(view.root, cwd)
        later = [*scratch, *([cwd_rel] if cwd_rel not in (None, ".") else [])]
        args += _read_only_dir(view, ".", view.exposed_inside("."), later)
        for bind in writable:
            args += ["--bind", str(bind.source), str(bind.target)]
            rel = _repo_relative(view.root, bind.target)
            if rel is not None:
                args += _fill_scratch(view, rel, scratch)
        args.append("--clearenv")
        for name, value in sorted(env.items()):
            args += ["--setenv", name, value]
        args += ["--chdir", str(cwd), "--", *argv]
        return args

    def report(self, *, strict: bool) -> SandboxReport:
        """Bubblewrap enforces everything; undeclared files are hidden in strict mode."""
        return SandboxReport(
            kind=self.kind,
            network_cut="--unshare-net" in self.isolation,
            repo_read_only=True,
            undeclared_hidden=strict,
            env_cleared=True,
        )


def _toolchain_in_tmp(repo: Path) -> list[str]:
    """Bind back, read-only, the interpreter and bitwright that the private ``/tmp`` hides.

    A virtual environment or an editable checkout may live under ``/tmp`` (a fresh clone in a
    temporary directory); without this the stage could not even find ``python``. Paths inside
    the repository are the repository view's business.
    """
    package_root = Path(__file__).resolve().parents[2]  # src/ of an editable install
    candidates = (sys.prefix, sys.base_prefix, sys.exec_prefix, str(package_root))
    args: list[str] = []
    seen: set[Path] = set()
    for candidate in candidates:
        path = Path(candidate).resolve()
        if path in seen or not path.is_relative_to("/tmp") or path.is_relative_to(repo.resolve()):
            continue
        seen.add(path)
        args += ["--ro-bind", str(path), str(path)]
    return args


def _hide_credentials(repo: Path) -> list[str]:
    """Cover the caller's credential files and directories (those that exist).

    Those inside the repository (a home directory as repository) follow its view instead.
    """
    args: list[str] = []
    home = Path.home()
    for name in _CREDENTIALS:
        path = home / name
        if path.is_relative_to(repo):
            continue
        if path.is_dir() and not path.is_symlink():
            args += ["--tmpfs", str(path), "--remount-ro", str(path)]
        elif path.exists():
            args += ["--ro-bind", "/dev/null", str(path)]
    return args


def _read_only_dir(
    view: RepoView, rel: str, exposed: Sequence[str], later: Sequence[str]
) -> list[str]:
    """Mount ``rel`` as an empty read-only directory holding only ``exposed`` (read-only).

    Directories for ``later`` mounts are made before it turns read-only.
    """
    args = ["--tmpfs", _abs(view, rel)]
    for path in exposed:  # a dangling symlink is left out
        args += ["--ro-bind-try", _abs(view, path), _abs(view, path)]
    args += _hide(view, view.hidden_inside(exposed))
    for path in later:
        if strictly_under(path, rel):
            args += ["--dir", _abs(view, path)]
    return [*args, "--remount-ro", _abs(view, rel)]


def _fill_scratch(view: RepoView, parent: str, scratch: Sequence[str]) -> list[str]:
    """Mount the visible part of ``parent`` into the writable scratch directory over it.

    Entries directly inside are bound read-only; deeper visible paths and deeper scratch
    directories get a read-only directory around them, so only the scratch's top level
    takes new files.
    """
    args: list[str] = []
    deeper = [p for p in scratch if strictly_under(p, parent)]
    groups: dict[str, list[str]] = {}
    direct: set[str] = set()
    for path in view.exposed_inside(parent):
        child = child_toward(parent, path)
        if child == path:
            direct.add(path)
            args += ["--ro-bind-try", _abs(view, path), _abs(view, path)]
            args += _hide(view, view.hidden_inside([path]))
        else:
            groups.setdefault(child, []).append(path)
    for path in deeper:  # a scratch inside a bound real directory finds its mount point there
        child = child_toward(parent, path)
        if child != path and child not in direct:
            groups.setdefault(child, [])
    for child, paths in sorted(groups.items()):
        inner = [p for p in deeper if strictly_under(p, child)]
        args += _read_only_dir(view, child, paths, inner)
    return args


def _hide(view: RepoView, hidden: Sequence[str]) -> list[str]:
    args: list[str] = []
    for rel in hidden:
        args += ["--tmpfs", _abs(view, rel), "--remount-ro", _abs(view, rel)]
    return args


def _abs(view: RepoView, rel: str) -> str:
    return str(view.root) if rel == "." else str(view.root / rel)


def _repo_relative(root: Path, path: Path) -> str | None:
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    return rel.as_posix()
