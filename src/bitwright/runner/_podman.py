"""The podman sandbox: a stage runs inside the build image, started by its manifest digest.

Each stage is one ``podman run`` of ``NAME@sha256:DIGEST`` (never a tag; ``--pull=never``,
so an image podman does not hold under that digest is refused, not fetched) with runc,
``--network=none``, a read-only root, no capabilities, no new privileges, its own user
namespace (as root: the container's root is an unprivileged host uid; as a plain user:
podman's own mapping), the sealed environment and nothing else (``--unsetenv-all``).

The repository is shown as bubblewrap shows it (:mod:`.view`): an empty read-only
directory holding the visible paths read-only (everything but hidden paths in warn mode),
hidden paths covered, a writable scratch directory over each outs' parent refilled with the
visible part of the real one, and the run's private directory at ``/tmp/bitwright``. Podman
orders mounts by depth, so the plan is written as a set of mounts none of which another at
the same place would cover. bitwright's own package (``stagekit`` and the trace hook's
home) is mounted read-only at ``/opt/bitwright``; everything else a stage runs comes from
the image.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import resource
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import bitwright
from bitwright.errors import OperationalError, UsageError
from bitwright.model.run import SandboxKind, SandboxReport
from bitwright.runner._base import Sandbox
from bitwright.runner.environment import SYSTEM_PATH
from bitwright.runner.receipt import shim_argv
from bitwright.runner.view import Bind, RepoView, child_toward, is_under, strictly_under

__all__ = [
    "BITWRIGHT_IN_IMAGE",
    "PODMAN_GLOBAL_FLAGS",
    "PodmanSandbox",
    "image_reference",
    "podman_command",
    "probe_podman",
]

PODMAN_GLOBAL_FLAGS = ("--runtime=runc", "--cgroup-manager=cgroupfs", "--events-backend=file")
"""How bitwright runs podman on any machine: runc (crun fails on hybrid cgroups), cgroupfs (no
systemd needed), events in a file (no journald needed)."""

BITWRIGHT_IN_IMAGE = "/opt/bitwright"
IMAGE_PYTHON = "/usr/bin/python3"
"""The image's interpreter, which runs the runner-receipt shim in a container stage."""
_HOSTNAME = "bitwright"
_RECEIPT_FD_INSIDE = 3  # podman --preserve-fds=1 passes exactly descriptor 3
# `python -I -S -c _MOVE_FD FROM TO ARGV...`: descriptor FROM becomes TO, then ARGV runs.
_MOVE_FD = (
    "import os, sys; f, t = int(sys.argv[1]), int(sys.argv[2]); "
    "os.dup2(f, t) if f != t else os.set_inheritable(t, True); os.execvp(sys.argv[3], sys.argv[3:])"
)
"""Where bitwright's own package is mounted read-only in the container (on PYTHONPATH)."""

_MAPPED_ROOT = 1_000_000
"""The host uid (and gid) a root-run container's root maps to: nobody on the host."""
_MAPPED_RANGE = 65536
_MAX_NOFILE = 20000
_MAX_NPROC = 32768
_GPU_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps/*", "/dev/dri/*")
_HOST_VARS = (
    "HOME",
    "PATH",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "CONTAINERS_CONF",
    "CONTAINERS_STORAGE_CONF",
    "CONTAINERS_REGISTRIES_CONF",
)
"""What podman itself needs of the caller's environment (the stage gets none of it)."""


@functools.cache
def probe_podman(executable: str = "podman") -> str | None:
    """Return the path of a podman that answers here, or None; once per process."""
    path = shutil.which(executable)
    if path is None:
        return None
    try:
        done = subprocess.run(
            [path, "version", "--format", "{{.Client.Version}}"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if done.returncode == 0 else None


def podman_command(executable: str | None = None) -> list[str]:
    """Return ``podman`` with bitwright's global flags, in the caller's own environment.

    Raises:
        OperationalError: podman is not installed or does not run here.
    """
    path = executable or _require_podman()
    host = [f"{name}={os.environ[name]}" for name in _HOST_VARS if name in os.environ]
    return ["/usr/bin/env", "-i", *host, path, *PODMAN_GLOBAL_FLAGS]


def image_reference(name: str, digest: str) -> str:
    """``name@digest``, any tag of ``name`` left out: how podman is asked for an image."""
    base = name.rsplit("@", 1)[0]
    if ":" in base.rsplit("/", 1)[-1]:
        base = base.rsplit(":", 1)[0]
    return f"{base}@{digest}"


def _require_podman() -> str:
    path = probe_podman()
    if path is None:
        raise OperationalError(
            "podman is not installed or does not run here",
            hint="install it: `make podman` (root, apt) or apt-get install podman runc",
        )
    return path


@dataclass(frozen=True)
class _Mount:
    destination: str
    kind: str  # "bind", "rw-bind" or "tmpfs" (all but rw-bind read-only)
    source: str = ""

    def flag(self) -> str:
        for path in (self.source, self.destination):
            if any(c in path for c in ",\n\"'="):
                raise UsageError(
                    f"{path!r} cannot be mounted into a container (it holds , = or a quote)",
                    hint="rename it; podman's --mount takes comma-separated key=value fields",
                )
        if self.kind == "tmpfs":
            # notmpcopyup: runc would otherwise copy what the tmpfs covers (keys!) into it
            fields = [f"type=tmpfs,destination={self.destination},ro=true,tmpfs-mode=0755"]
            fields.append("notmpcopyup")
        else:
            fields = ["type=bind", f"source={self.source}", f"destination={self.destination}"]
            fields.append("ro=false" if self.kind == "rw-bind" else "ro=true")
        return "--mount=" + ",".join(fields)


class PodmanSandbox(Sandbox):
    """Runs a stage in the container image ``image@digest`` (see the module doc).

    Args:
        image: the image name (``localhost/name:tag``); the tag is dropped, the digest kept.
        digest: its manifest digest (``sha256:...``).
        executable: the absolute path of ``podman``.
    """

    kind = SandboxKind.PODMAN
    remaps = True

    def __init__(self, image: str, digest: str, executable: str) -> None:
        self.image = image
        self.digest = digest
        self.executable = executable
        self.mapped_root = _MAPPED_ROOT if os.geteuid() == 0 else None
        self._container = ""
        self._receipt_fd: int | None = None

    @classmethod
    def detect(cls, image: str, digest: str) -> PodmanSandbox:
        """Return a podman sandbox for the image, once podman was seen to answer here.

        Raises:
            OperationalError: podman is missing or broken.
            UsageError: the digest is not a sha256 manifest digest.
        """
        if not digest.startswith("sha256:") or len(digest) != 71 or digest == "sha256:" + "0" * 64:
            raise UsageError(
                f"{digest!r} is no image digest",
                hint="build and lock the image: `bitwright image build`",
            )
        return cls(image, digest, _require_podman())

    @property
    def reference(self) -> str:
        """The image by digest: ``name@sha256:...`` (a tag in ``image`` is left out)."""
        return image_reference(self.image, self.digest)

    def adapt_environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The image's programs first, bitwright's package on ``PYTHONPATH`` after the hook."""
        adapted = dict(env)
        adapted["PATH"] = ":".join(SYSTEM_PATH)
        adapted["HOSTNAME"] = _HOSTNAME  # podman sets it from --hostname: declared, not a surprise
        hook = env.get("PYTHONPATH", "")
        adapted["PYTHONPATH"] = f"{hook}:{BITWRIGHT_IN_IMAGE}" if hook else BITWRIGHT_IN_IMAGE
        return dict(sorted(adapted.items()))

    def shim(self, argv: Sequence[str], receipt_fd: int) -> list[str]:
        """The shim runs on the image's Python and writes on descriptor 3 in the container.

        ``wrap`` passes the runner's descriptor ``receipt_fd`` down as that descriptor
        (``--preserve-fds``), so the receipt is still an unnamed file nothing reaches by path.
        """
        self._receipt_fd = receipt_fd
        return shim_argv(argv, _RECEIPT_FD_INSIDE, python=IMAGE_PYTHON)

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
        """Return the ``podman run`` command line that runs ``argv`` in the image."""
        self._container = f"bitwright-{uuid.uuid4().hex[:12]}"
        args = [*podman_command(self.executable), "run", "--rm", "--pull=never"]
        args += [f"--name={self._container}", "--log-driver=none", "--network=none"]
        args += ["--read-only", "--cap-drop=all", "--security-opt=no-new-privileges"]
        args += [f"--hostname={_HOSTNAME}", "--unsetenv-all", *_ulimits(), *self._userns()]
        for pattern in _GPU_DEVICES:
            args += [f"--device={node}" for node in sorted(glob.glob(pattern))]
        args += [m.flag() for m in plan_mounts(view, writable)]
        package = Path(bitwright.__file__).resolve().parent
        args.append(_Mount(f"{BITWRIGHT_IN_IMAGE}/bitwright", "bind", str(package)).flag())
        for name, value in sorted(env.items()):
            if "\n" in value or "\0" in value:
                raise UsageError(
                    f"environment variable {name} holds a line break",
                    hint="a stage's environment is passed to podman on its command line",
                )
            args.append(f"--env={name}={value}")
        if self._receipt_fd is None:
            args += [f"--workdir={cwd}", self.reference, *argv]
            return args
        args += ["--preserve-fds=1", f"--workdir={cwd}", self.reference, *argv]
        # podman hands its descriptor 3 on to the container: make it the receipt's (a shell's
        # redirection cannot: dash takes no descriptor above 9)
        move = [sys.executable, "-I", "-S", "-c", _MOVE_FD, str(self._receipt_fd)]
        return [*move, str(_RECEIPT_FD_INSIDE), *args]

    @contextlib.contextmanager
    def running(self, writable: Sequence[Bind]) -> Iterator[None]:
        """Hand the writable directories to the container's root, and back after the run.

        A run that is interrupted has its container removed at once.
        """
        if self.mapped_root is not None:
            for bind in writable:
                _chown_tree(bind.source, self.mapped_root, self.mapped_root)
        try:
            yield
        except BaseException:
            if self._container:
                subprocess.run(
                    [
                        *podman_command(self.executable),
                        "rm",
                        "--force",
                        "--time=0",
                        self._container,
                    ],
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
            raise
        finally:
            if self.mapped_root is not None:
                for bind in writable:
                    _chown_tree(bind.source, os.getuid(), os.getgid())

    def report(self, *, strict: bool) -> SandboxReport:
        """Everything is enforced, inside the image named by its digest."""
        return SandboxReport(
            kind=self.kind,
            network_cut=True,
            repo_read_only=True,
            undeclared_hidden=strict,
            env_cleared=True,
            container_digest=self.digest,
        )

    def _userns(self) -> list[str]:
        if self.mapped_root is None:
            return []  # rootless podman: already a user namespace, the caller's uid as root
        spec = f"0:{self.mapped_root}:{_MAPPED_RANGE}"
        return [f"--uidmap={spec}", f"--gidmap={spec}"]


def _ulimits() -> list[str]:
    """Limits within this process's own: podman's defaults exceed what these machines allow."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)
    flags = []
    for name, (soft, hard), cap in (("nofile", nofile, _MAX_NOFILE), ("nproc", nproc, _MAX_NPROC)):
        top = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
        low = top if soft == resource.RLIM_INFINITY else min(soft, top)
        flags.append(f"--ulimit={name}={low}:{top}")
    return flags


def plan_mounts(view: RepoView, writable: Sequence[Bind]) -> list[_Mount]:
    """The mounts that show ``view`` with ``writable`` (see the module doc), by destination.

    No two mounts share a destination, and none lies inside another that is mounted later
    in bubblewrap's order, so podman's depth-first ordering gives the same view.
    """
    root = view.root
    inside = {_relative(root, b.target): b for b in writable}
    scratch = {rel: b for rel, b in inside.items() if rel is not None}
    plan: dict[str, _Mount] = {}

    def add(rel: str, kind: str, source: Path | None = None) -> None:
        destination = str(root if rel == "." else root / rel)
        plan.setdefault(destination, _Mount(destination, kind, str(source or destination)))

    exposed: list[str] = []
    if "." not in scratch:
        if view.covers("."):
            add(".", "bind")
            exposed.append(".")
        else:
            add(".", "tmpfs")
            tops = [v for v in view.visible if not any(strictly_under(v, o) for o in view.visible)]
            for path in tops:
                if not any(is_under(path, s) for s in scratch):
                    add(path, "bind")
                    exposed.append(path)
    for rel in sorted(scratch, key=lambda p: (0 if p == "." else p.count("/") + 1, p)):
        add(rel, "rw-bind", scratch[rel].source)
        deeper = [p for p in scratch if strictly_under(p, rel)]
        for path in view.exposed_inside(rel):
            if any(is_under(path, d) for d in deeper):
                continue  # shown by the deeper scratch directory
            child = child_toward(rel, path)
            if child != path:
                add(child, "tmpfs")  # read-only: only the scratch's top level takes new files
            add(path, "bind")
            exposed.append(path)
        for path in deeper:
            child = child_toward(rel, path)
            if child != path and child not in scratch:
                add(child, "tmpfs")
    for hidden in view.hidden_inside(exposed):
        if (root / hidden).is_dir() and not (root / hidden).is_symlink():
            add(hidden, "tmpfs")
        else:
            add(hidden, "bind", Path(os.devnull))
    for bind in writable:
        if _relative(root, bind.target) is None:
            plan.setdefault(str(bind.target), _Mount(str(bind.target), "rw-bind", str(bind.source)))
    return [plan[d] for d in sorted(plan, key=lambda d: (d.count("/"), d))]


def _relative(root: Path, path: Path) -> str | None:
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        return None
    return rel or "."


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    """Give ``top`` and everything below it (links themselves, never followed) to uid:gid."""
    os.lchown(top, uid, gid)
    for directory, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(directory, name), uid, gid)
