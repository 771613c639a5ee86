"""Variations the runner applies to a stage run, reprotest-style, and what this machine allows.

The catalog (:data:`CATALOG`) names every variation a nightly rebuild knows; :func:`plan`
turns names into concrete :class:`~bitwright.model.variation.Variation` values for this
machine (:class:`Machine`), or says why one cannot be applied here. The runner applies a
variation's changes to a stage: :func:`vary_environment` (variables), :func:`vary_sandbox`
(host name) and :func:`umask_of` (the child's umask); the builder applies declared-setting
changes (:func:`bitwright.builder.context.vary_settings`) and the caller picks the workspace
(build path, and :func:`disordered` for the file system order).

Environment variations change what the pins claim does not matter; knob variations change a
declared determinism setting on purpose. A variable that the declared settings pin is never
varied as noise: only a knob variation changes it, through the declaration.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bitwright.errors import OperationalError, ToolError, UsageError
from bitwright.model.pins import DeterminismSettings
from bitwright.model.run import SandboxKind
from bitwright.model.variation import Change, ChangeKind, Variation, VariationKind
from bitwright.runner._base import Sandbox
from bitwright.runner._bubblewrap import BubblewrapSandbox

__all__ = [
    "CATALOG",
    "DEFAULT",
    "FS_ORDER",
    "Machine",
    "PlannedVariation",
    "disordered",
    "plan",
    "probe_machine",
    "umask_of",
    "vary_environment",
    "vary_sandbox",
]

FS_ORDER = "fs_order"
"""The variation whose workspace lists directories in a shuffled order (disorderfs)."""

CATALOG: dict[str, str] = {
    "build_path": "the repository at another, deeper path",
    "time_zone": "another time zone (TZ)",
    "locale": "another locale (LANG, LC_ALL)",
    "umask": "another umask",
    "hostname": "another host name (UTS namespace)",
    "env_noise": "unrelated variables in the environment",
    FS_ORDER: "directory entries listed in a shuffled order (disorderfs)",
    "threads": "another thread count (declared threads)",
    "cpu_isa": "a narrower CPU instruction set for MKL and ATen dispatch",
    "mkl_cbwr": "MKL's conditional bitwise reproducibility off (declared mkl_cbwr)",
    "pythonhashseed": "another hash seed (declared pythonhashseed)",
}
"""Every variation's name and what it changes."""

DEFAULT = (
    "build_path",
    "time_zone",
    "locale",
    "umask",
    "hostname",
    "env_noise",
    FS_ORDER,
    "threads",
    "cpu_isa",
)
"""What ``bitwright nightly`` varies unless told otherwise: everything the pins claim does not
change the bits. Thread counts are a declared knob, but ``mkl_cbwr`` pins the results of MKL
against them, so a pipeline whose bits follow the thread count has a bug worth a nightly."""

_ZONE = "Pacific/Kiritimati"
_POSIX_ZONE = "<+14>-14"
_DECIMAL_COMMA = ("de_DE", "fr_FR", "nl_NL", "it_IT", "es_ES", "ru_RU")
_NOISE = {
    "CAPTURE_ENVIRONMENT": "i_capture_the_environment",
    "USER": "nightly",
    "LOGNAME": "nightly",
    "SHELL": "/bin/false",
    "BITWRIGHT_NOISE": "a variable no stage may depend on",
}
_HOSTNAME = "nightly-variation"
_ZONEINFO = Path("/usr/share/zoneinfo")


@dataclass(frozen=True)
class Machine:
    """What the plan depends on here (see :func:`probe_machine`).

    Attributes:
        sandbox: the sandbox stages run in.
        uts_namespace: whether that sandbox gives a stage its own host name.
        locales: the installed locales (``locale -a``).
        zoneinfo: whether the time zone database is installed.
        cpu_flags: the CPU's feature flags.
        umask: this process's umask (what stages get without a variation).
        disorderfs: why directory order cannot be shuffled here, "" when it can.
    """

    sandbox: SandboxKind
    uts_namespace: bool
    locales: tuple[str, ...]
    zoneinfo: bool
    cpu_flags: frozenset[str]
    umask: int
    disorderfs: str


@dataclass(frozen=True)
class PlannedVariation:
    """One variation as planned for this machine: applied, or not and why."""

    name: str
    description: str
    variation: Variation | None
    reason: str = ""

    @property
    def applied(self) -> bool:
        """Whether this machine can apply it."""
        return self.variation is not None


def probe_machine(sandbox: Sandbox) -> Machine:
    """Look at this machine once: sandbox, locales, zone database, CPU, umask, FUSE."""
    try:
        done = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False)
        locales = tuple(done.stdout.split())
    except OSError:
        locales = ()
    current = os.umask(0o022)
    os.umask(current)
    return Machine(
        sandbox=sandbox.kind,
        uts_namespace=isinstance(sandbox, BubblewrapSandbox)
        and "--unshare-uts" in sandbox.isolation,
        locales=locales,
        zoneinfo=(_ZONEINFO / _ZONE).is_file(),
        cpu_flags=_cpu_flags(),
        umask=current,
        disorderfs=_disorderfs_missing(),
    )


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in {"flags", "features"}:
            return frozenset(value.split())
    return frozenset()


def _disorderfs_missing() -> str:
    if shutil.which("disorderfs") is None:
        return "disorderfs is not installed (apt-get install disorderfs)"
    if shutil.which("fusermount") is None and shutil.which("fusermount3") is None:
        return "fusermount is not installed (apt-get install fuse3)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is missing or not usable here (a container without FUSE)"
    return ""


def plan(
    names: Sequence[str], machine: Machine, settings: DeterminismSettings
) -> tuple[PlannedVariation, ...]:
    """Turn variation names into variations for this machine, in the order given.

    Args:
        names: names from :data:`CATALOG`.
        machine: what this machine offers (:func:`probe_machine`).
        settings: the declared determinism settings (knobs vary away from them, and the
            variables they pin are never varied as noise).

    Raises:
        UsageError: a name is not in the catalog.
    """
    unknown = [n for n in names if n not in CATALOG]
    if unknown:
        raise UsageError(
            f"unknown variation {unknown[0]!r}", hint=f"variations are: {', '.join(CATALOG)}"
        )
    pinned = settings.environment()
    planned: list[PlannedVariation] = []
    for name in dict.fromkeys(names):
        variation, reason = _make(name, machine, settings)
        if variation is not None:
            variation, reason = _unpinned(variation, pinned)
        planned.append(PlannedVariation(name, CATALOG[name], variation, reason))
    return tuple(planned)


def _unpinned(variation: Variation, pinned: Mapping[str, str]) -> tuple[Variation | None, str]:
    """Drop noise on variables the declaration pins; nothing left means not applicable."""
    kept = tuple(
        c for c in variation.changes if not (c.kind is ChangeKind.ENV and c.name in pinned)
    )
    if kept == variation.changes:
        return variation, ""
    dropped = sorted({c.name for c in variation.changes} - {c.name for c in kept})
    note = f"{', '.join(dropped)} pinned by the declared determinism settings, not varied"
    if not kept:
        return None, f"{note} (a knob variation changes them through the declaration)"
    return Variation(variation.name, variation.kind, kept, _join(variation.note, note)), ""


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _env(name: str, pairs: Mapping[str, str], note: str = "") -> Variation:
    changes = tuple(Change(ChangeKind.ENV, k, v) for k, v in pairs.items())
    return Variation(name, VariationKind.ENVIRONMENT, changes, note)


def _knob(name: str, setting: str, value: object) -> Variation:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return Variation(name, VariationKind.KNOB, (Change(ChangeKind.SETTING, setting, text),))


def _make(
    name: str, machine: Machine, settings: DeterminismSettings
) -> tuple[Variation | None, str]:
    """The variation ``name`` on ``machine``, or None and why it cannot be applied."""
    if name == "build_path":
        change = Change(ChangeKind.BUILD_PATH, "", "a/much/deeper/build-path")
        return Variation(name, VariationKind.ENVIRONMENT, (change,)), ""
    if name == "time_zone":
        zone = _ZONE if machine.zoneinfo else _POSIX_ZONE
        note = "" if machine.zoneinfo else "no zone database: a POSIX TZ string of UTC+14"
        return _env(name, {"TZ": zone}, note), ""
    if name == "locale":
        return _locale(machine), ""
    if name == "umask":
        other = "0022" if machine.umask == 0o002 else "0002"
        return Variation(
            name, VariationKind.ENVIRONMENT, (Change(ChangeKind.UMASK, "", other),)
        ), ""
    if name == "hostname":
        if not machine.uts_namespace:
            return None, f"the {machine.sandbox.value} sandbox gives a stage no UTS namespace"
        change = Change(ChangeKind.HOSTNAME, "", _HOSTNAME)
        return Variation(name, VariationKind.ENVIRONMENT, (change,)), ""
    if name == "env_noise":
        return _env(name, _NOISE), ""
    if name == FS_ORDER:
        if machine.disorderfs:
            return None, machine.disorderfs
        change = Change(ChangeKind.FS_ORDER, "", "disorderfs --shuffle-dirents=yes")
        return Variation(name, VariationKind.ENVIRONMENT, (change,)), ""
    if name == "threads":
        return _knob(name, "threads", 2 if settings.threads == 1 else 1), ""
    if name == "cpu_isa":
        return _cpu_isa(machine)
    if name == "mkl_cbwr":
        return _knob(
            name, "mkl_cbwr", "COMPATIBLE" if settings.mkl_cbwr != "COMPATIBLE" else "AUTO"
        ), ""
    if name == "pythonhashseed":
        return _knob(name, "pythonhashseed", settings.pythonhashseed + 1), ""
    raise AssertionError(f"variation {name} has no recipe")  # plan() checked the name


def _locale(machine: Machine) -> Variation:
    comma = [
        loc
        for loc in machine.locales
        if loc.split(".")[0] in _DECIMAL_COMMA and loc.lower().endswith(("utf8", "utf-8"))
    ]
    if comma:
        return _env("locale", {"LANG": comma[0], "LC_ALL": comma[0]})
    note = (
        "only the C and POSIX locales are installed: C.UTF-8 -> C "
        "(apt-get install locales-all for a decimal-comma locale)"
    )
    return _env("locale", {"LANG": "C", "LC_ALL": "C"}, note)


def _cpu_isa(machine: Machine) -> tuple[Variation | None, str]:
    flags = machine.cpu_flags
    if "avx512f" in flags:
        pairs = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    elif "avx2" in flags:
        pairs = {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ATEN_CPU_CAPABILITY": "default"}
    else:
        return None, "the CPU has neither AVX-512 nor AVX2: no narrower instruction path to pick"
    return _env("cpu_isa", pairs, "emulates an older CPU for MKL and ATen dispatch"), ""


def vary_environment(
    env: Mapping[str, str], variation: Variation | None, settings: DeterminismSettings
) -> dict[str, str]:
    """Return the sealed environment ``env`` with the variation's variables set.

    Raises:
        UsageError: the variation sets a variable the declared settings pin (a knob must
            change the declaration instead, or the receipts would contradict it).
    """
    if variation is None:
        return dict(env)
    pinned = settings.environment()
    varied = dict(env)
    for change in variation.of(ChangeKind.ENV):
        if change.name in pinned and pinned[change.name] != change.value:
            raise UsageError(
                f"variation {variation.name} sets {change.name}, which the declared "
                "determinism settings pin",
                hint="vary the setting itself (a knob variation), not its variable",
            )
        varied[change.name] = change.value
    return dict(sorted(varied.items()))


def vary_sandbox(sandbox: Sandbox, variation: Variation | None) -> Sandbox:
    """Return ``sandbox`` giving the stage the variation's host name (bubblewrap only).

    Raises:
        OperationalError: the variation names a host name and the sandbox has no UTS
            namespace to give it.
    """
    hostname = variation.last(ChangeKind.HOSTNAME) if variation else None
    if hostname is None:
        return sandbox
    if not isinstance(sandbox, BubblewrapSandbox) or "--unshare-uts" not in sandbox.isolation:
        raise OperationalError(
            f"the {sandbox.kind.value} sandbox cannot give a stage another host name",
            hint="drop the hostname variation, or install bubblewrap",
        )
    return BubblewrapSandbox(sandbox.executable, sandbox.isolation, hostname=hostname)


def umask_of(variation: Variation | None) -> int | None:
    """The umask a varied stage starts with, or None to inherit this process's."""
    value = variation.last(ChangeKind.UMASK) if variation else None
    return None if value is None else int(value, 8)


@contextlib.contextmanager
def disordered(path: Path) -> Iterator[Path]:
    """Show the empty directory ``path`` through disorderfs, entries in shuffled order.

    Everything written to ``path`` lands in a hidden sibling directory; the mount is removed
    on exit (and that directory with it).

    Raises:
        OperationalError: disorderfs is missing, or the mount failed.
    """
    missing = _disorderfs_missing()
    if missing:
        raise OperationalError(f"cannot shuffle directory order: {missing}", hint=missing)
    path.mkdir(parents=True, exist_ok=True)
    backing = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    argv = ["disorderfs", "--quiet", "--shuffle-dirents=yes", "--multi-user=no"]
    done = subprocess.run(
        [*argv, str(backing), str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        shutil.rmtree(backing, ignore_errors=True)
        raise ToolError(
            f"disorderfs could not mount {path}: {done.stderr.strip() or done.returncode}",
            hint="check that FUSE works here (/dev/fuse, fusermount)",
        )
    try:
        yield path
    finally:
        unmount = shutil.which("fusermount") or shutil.which("fusermount3") or "fusermount"
        subprocess.run([unmount, "-u", "-z", str(path)], capture_output=True, check=False)
        shutil.rmtree(backing, ignore_errors=True)
