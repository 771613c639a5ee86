"""The image's inputs: recipe, apt sources, wheels (unpacked by their bytes) and drift."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

from bitwright.digest import sha256_file
from bitwright.errors import OperationalError, UsageError, VerificationFailed
from bitwright.image.debian import apt_sources
from bitwright.image.recipe import RECIPE_PATH, read_recipe
from bitwright.image.wheels import WheelCache, check_drift, install_wheel, wheel_name_version
from bitwright.model.digests import Sha256
from bitwright.pins.container import PythonWheel

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "containers").mkdir()
    shutil.copy2(ROOT / RECIPE_PATH, tmp_path / RECIPE_PATH)
    return tmp_path


def test_the_projects_recipe_reads(repo: Path) -> None:
    recipe = read_recipe(repo)
    assert recipe.name == "localhost/bitwright-build:py3.11-bookworm"
    assert "python3" in recipe.include and "torch" in recipe.python_packages
    assert recipe.python_tag == "cp311"
    platforms = recipe.manylinux_platforms()
    assert platforms[0] == "manylinux_2_36_x86_64" and "manylinux_2_28_x86_64" in platforms
    assert platforms[-3:] == ("manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('variant = "minbase"', 'variant = "everything"', "debian.variant"),
        ('suite = "bookworm"', 'suite = "bookworm; rm -rf /"', "debian.suite"),
        ('"python-is-python3"', '"--force-yes"', "debian.include"),
        ('workdir = "/"', 'workdir = "relative"', "absolute"),
        ("source_date_epoch = 1735689600", "source_date_epoch = true", "source_date_epoch"),
        ('"PYTHONDONTWRITEBYTECODE=1"', '"NO EQUALS"', "image.env"),
        ('"numpy"', '"torch"', "twice"),
        ("schema = 1", "schema = 9", "unsupported schema"),
        ("[python]", "[pythons]", r"\[python\] is missing"),
    ],
)
def test_an_invalid_recipe_is_refused_naming_the_field(
    repo: Path, old: str, new: str, problem: str
) -> None:
    path = repo / RECIPE_PATH
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(UsageError, match=problem):
        read_recipe(repo)


def test_a_deeply_nested_or_non_toml_recipe_is_refused(repo: Path) -> None:
    path = repo / RECIPE_PATH
    path.write_text("x = " + "[" * 50_000 + "]" * 50_000)
    with pytest.raises(UsageError, match="nested too deeply"):
        read_recipe(repo)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(UsageError, match="not TOML"):
        read_recipe(repo)


def test_apt_sources_for_the_suite_come_from_both_formats(tmp_path: Path) -> None:
    listing = tmp_path / "sources.list"
    listing.write_text(
        "deb http://deb.debian.org/debian bookworm main # comment\n"
        "deb-src http://deb.debian.org/debian bookworm main\n"
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
    )
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://mirror/debian\nSuites: trixie\nComponents: main\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://disabled/debian\nSuites: bookworm\n"
        "Components: main\n"
    )
    assert apt_sources("bookworm", (listing, parts)) == [
        "deb http://deb.debian.org/debian bookworm main",
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://deb.debian.org/debian-security bookworm-security main",
    ]
    with pytest.raises(OperationalError, match="no apt source of this machine serves sid"):
        apt_sources("sid", (listing, parts))


def wheel(tmp_path: Path, members: dict[str, tuple[bytes, int]], name: str = "demo-1.0") -> Path:
    path = tmp_path / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, (data, mode) in members.items():
            info = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return path


def test_a_wheel_is_unpacked_by_scheme_with_fixed_modes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    old = os.umask(0o077)  # the caller's umask must not reach the image
    try:
        install_wheel(
            wheel(
                tmp_path,
                {
                    "demo/__init__.py": (b"x = 1\n", 0o100600),
                    "demo/_ext.so": (b"\x7fELF", 0o100700),
                    "demo-1.0.dist-info/METADATA": (b"Name: demo\n", 0o100644),
                    "demo-1.0.data/purelib/extra.py": (b"y = 2\n", 0o100644),
                    "demo-1.0.data/data/share/demo.txt": (b"data\n", 0o100644),
                    "demo-1.0.data/scripts/demo": (b"#!python\n", 0o100755),
                },
            ),
            root,
            "/usr/lib/site",
        )
    finally:
        os.umask(old)
    site = root / "usr/lib/site"
    assert (site / "demo/__init__.py").read_bytes() == b"x = 1\n"
    assert stat.S_IMODE((site / "demo/__init__.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((site / "demo/_ext.so").stat().st_mode) == 0o755
    assert stat.S_IMODE((site / "demo").stat().st_mode) == 0o755
    assert (site / "extra.py").is_file() and (root / "usr/local/share/demo.txt").is_file()
    assert (site / "demo-1.0.dist-info/INSTALLER").read_text() == "bitwright\n"
    assert not (root / "usr/local/bin").exists()  # scripts would carry the build's interpreter


@pytest.mark.parametrize(
    ("member", "mode", "problem"),
    [
        ("../../etc/passwd", 0o100644, "outside its install directory"),
        ("/etc/passwd", 0o100644, "outside its install directory"),
        ("demo/link", 0o120777, "symbolic link"),
    ],
)
def test_a_hostile_wheel_is_refused(tmp_path: Path, member: str, mode: int, problem: str) -> None:
    root = tmp_path / "root"
    with pytest.raises(VerificationFailed, match=problem):
        install_wheel(wheel(tmp_path, {member: (b"x", mode)}), root, "/usr/lib/site")
    assert not (tmp_path / "etc").exists()


def test_wheel_names_and_drift_against_the_project_lock() -> None:
    assert wheel_name_version("PyYAML-6.0.3-cp311-cp311-manylinux2014_x86_64.whl") == (
        "pyyaml",
        "6.0.3",
    )
    assert wheel_name_version("torch-2.13.0+cpu-1build-cp311-cp311-x.whl")[1] == "2.13.0+cpu"
    with pytest.raises(UsageError):
        wheel_name_version("not-a-wheel.zip")
    recipe = read_recipe(ROOT)
    locked = [
        PythonWheel(name, version, f"{name}-{version}-py3-none-any.whl", Sha256("0" * 64))
        for name, version in (("torch", "2.13.0+cpu"), ("numpy", "2.4.6"), ("pyyaml", "6.0.3"))
    ]
    drift = check_drift(recipe, locked, {"torch": "2.14.0", "numpy": "2.4.6"})
    assert drift == [
        "safetensors: the recipe asks for it, the image lock has no wheel of it",
        "torch: the project locks 2.14.0, the image lock has 2.13.0+cpu",
    ]


def test_an_index_serving_other_bytes_for_a_locked_wheel_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    index.mkdir()
    metadata = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
    served = wheel(
        index,
        {
            "demo/__init__.py": (b"x = 1\n", 0o100644),
            "demo-1.0.dist-info/METADATA": (metadata, 0o100644),
            "demo-1.0.dist-info/WHEEL": (b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n", 0o100644),
            "demo-1.0.dist-info/RECORD": (b"", 0o100644),
        },
    )
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip sees only this directory, no network
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.delenv("PIP_CONSTRAINT", raising=False)
    cache = WheelCache(tmp_path / "cache")
    recipe = read_recipe(ROOT)
    honest = PythonWheel("demo", "1.0", served.name, sha256_file(served))
    cache.fetch(recipe, [honest], tmp_path / "scratch", lambda _: None)
    assert cache.path(honest).read_bytes() == served.read_bytes()

    other = PythonWheel("demo", "1.0", served.name, Sha256("f" * 64))  # what the lock says
    with pytest.raises(VerificationFailed, match="the package index serve"):
        cache.fetch(recipe, [other], tmp_path / "scratch2", lambda _: None)
    assert not cache.path(other).exists()
