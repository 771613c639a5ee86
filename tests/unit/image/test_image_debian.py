"""Locked Debian versions the machine's apt lists do not serve: named, with the lock, and a way on.

These need Debian's apt (``apt-get``, ``apt-cache``) and no network: a version the package
lists do not hold is refused before anything is fetched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bitwright.errors import ExitCode, OperationalError, ToolError
from bitwright.image.debian import DebCache, _run, unserved
from bitwright.image.recipe import RECIPE_PATH
from bitwright.model.digests import Sha256
from bitwright.pins.container import (
    LOCK_PATH,
    DebianPackage,
    ImageLock,
    recipe_sha256,
    write_image_lock,
)

BITWRIGHT = Path(sys.executable).parent / "bitwright"

needs_apt = pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("apt-cache") is None,
    reason="Debian's apt (apt-get, apt-cache) is not installed here",
)


def absent(package: str, version: str = "0~bitwright.absent") -> DebianPackage:
    """A package at a version no Debian archive has ever served."""
    return DebianPackage(package, version, "amd64", Sha256("e" * 64))


def served_version(package: str) -> str:
    """A version of ``package`` that an index in the machine's apt lists holds, read by apt."""
    shown = subprocess.run(
        ["apt-cache", "show", package],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
        check=False,
    ).stdout
    for stanza in shown.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
        if "Filename" in fields:  # from a Packages index, not only dpkg's status
            return fields["Version"]
    pytest.skip(f"this machine's apt lists hold no {package} (run apt-get update)")


@needs_apt
def test_only_versions_the_apt_lists_lack_are_named_unserved() -> None:
    version = served_version("base-files")
    held = DebianPackage("base-files", version, "amd64", Sha256("e" * 64))
    missing = [absent("base-files"), absent("bitwright-no-such-package")]
    assert unserved([held, *missing]) == missing
    assert unserved([held]) == []


@needs_apt
def test_a_locked_version_the_apt_sources_do_not_serve_is_named_with_the_lock(
    tmp_path: Path,
) -> None:
    cache = DebCache(tmp_path / "debs")
    lock_file = tmp_path / LOCK_PATH
    locked = [absent("base-files"), *(absent(f"bitwright-absent-{n}", "1.0-1") for n in range(6))]
    with pytest.raises(OperationalError) as raised:
        cache.fetch(locked, tmp_path / "scratch", lambda _: None, lock_file=lock_file)
    error = raised.value
    assert error.message == (
        f"{lock_file}: the apt sources here do not serve the locked base-files=0~bitwright.absent,"
        " bitwright-absent-0=1.0-1, bitwright-absent-1=1.0-1, bitwright-absent-2=1.0-1,"
        " bitwright-absent-3=1.0-1 and 2 more"
    )
    assert "`apt-get update`" in error.hint and "`bitwright image build --update`" in error.hint
    assert "digest then changes" in error.hint
    assert error.exit_code == ExitCode.OPERATIONAL
    assert not cache.directory.exists() or not any(cache.directory.iterdir())


def test_a_failed_tool_is_reported_by_apts_first_errors_not_its_last_words(tmp_path: Path) -> None:
    script = "echo 'I: working'; echo 'E: Failed to fetch X  Temporary failure resolving'; "
    script += "echo 'E: Some index files failed'; echo 'E: and then'; echo 'I: cleaned up'; exit 25"
    with pytest.raises(ToolError) as raised:
        _run(["sh", "-c", f"exec >&2; {script}"], cwd=tmp_path, what="mmdebstrap")
    assert raised.value.message == (
        "mmdebstrap failed (exit 25): E: Failed to fetch X  Temporary failure resolving"
        " / E: Some index files failed"
    )
    with pytest.raises(ToolError, match=r"failed \(exit 3\): one / two / three$"):
        _run(
            ["sh", "-c", "printf 'zero\\none\\ntwo\\nthree\\n' >&2; exit 3"], cwd=tmp_path, what="t"
        )


RECIPE = """\
schema = 1

[image]
name = "localhost/bitwright-test-absent:1"
source_date_epoch = 1735689600
env = []
workdir = "/"

[debian]
suite = "bookworm"
variant = "essential"
include = []

[python]
packages = []
version = "3.11"
glibc = "2.36"
site_packages = "/usr/local/lib/python3.11/dist-packages"
"""


@needs_apt
@pytest.mark.skipif(os.geteuid() != 0, reason="bitwright image build runs only as root")
def test_image_build_of_a_lock_naming_an_unserved_version_exits_3_in_one_line(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    (repo / "containers").mkdir(parents=True)
    (repo / RECIPE_PATH).write_text(RECIPE)
    write_image_lock(
        repo,
        ImageLock(
            name="localhost/bitwright-test-absent:1",
            digest="sha256:" + "1" * 64,
            recipe=RECIPE_PATH,
            recipe_sha256=recipe_sha256(repo, RECIPE_PATH),
            archive_sha256=Sha256("2" * 64),
            archive_md5="3" * 32,
            archive_size=1,
            debian=(absent("base-files"),),
            python=(),
        ),
    )
    locked = (repo / LOCK_PATH).read_bytes()
    done = subprocess.run(
        [str(BITWRIGHT), "image", "build", "--no-load"],
        cwd=repo,
        env={**os.environ, "BITWRIGHT_IMAGE_STORE": str(tmp_path / "store")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert f"{repo / LOCK_PATH}: the apt sources here do not serve the locked " in errors[0]
    assert "base-files=0~bitwright.absent" in errors[0]
    assert "run `apt-get update`" in errors[0] and "image build --update`" in errors[0]
    assert (repo / LOCK_PATH).read_bytes() == locked  # the lock is left as it was
