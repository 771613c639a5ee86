"""dvc.lock parsing: what DVC last ran and hashed, read back as locked stages."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bitwright.errors import OperationalError, UsageError
from bitwright.pipeline import LockedFile, load_lock, parse_lock

LOCK = """\
schema: '2.0'
stages:
  copy:
    cmd: cp in.txt out/copy.txt
    deps:
    - path: in.txt
      hash: md5
      md5: 0cbc6611f5540bd0809a388dc95a615b
      size: 4
    params:
      params.yaml:
        factor: 2
        group:
          a: 1
    outs:
    - path: out
      hash: md5
      md5: 1f8ac10f23c5b5bc1167bda84b833e5c.dir
      size: 4
      nfiles: 1
"""


def test_lock_text_gives_locked_stages() -> None:
    locked = parse_lock(LOCK)
    assert list(locked) == ["copy"]
    copy = locked["copy"]
    assert copy.cmd == "cp in.txt out/copy.txt"
    assert copy.dep("in.txt") == LockedFile(
        path="in.txt", md5="0cbc6611f5540bd0809a388dc95a615b", size=4, hash="md5"
    )
    out = copy.out("out")
    assert out is not None and out.md5.endswith(".dir") and out.nfiles == 1
    assert copy.params == {"params.yaml": {"factor": 2, "group": {"a": 1}}}
    assert copy.dep("missing") is None


def test_missing_lock_is_empty(tmp_path: Path) -> None:
    assert load_lock(tmp_path) == {}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("schema: '2.0'\nstages: [\n", "malformed YAML"),
        ("copy:\n  cmd: x\n", "not a DVC 3 lock file"),
        ("schema: '2.0'\nstages:\n  a:\n    deps: []\n", "'cmd' is missing"),
        ("schema: '2.0'\nstages:\n  a:\n    cmd: x\n    deps: [{md5: y}]\n", "has no 'path'"),
        ("schema: '2.0'\nstages:\n  a:\n    cmd: x\n    outs: {path: y}\n", "must be a list"),
        ("schema: '2.0'\nstages:\n  a:\n    cmd: x\n    params: [1]\n", "'params' must map"),
    ],
)
def test_malformed_lock_is_operational(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "dvc.lock").write_text(text)
    with pytest.raises(OperationalError, match=match) as caught:
        load_lock(tmp_path)
    assert caught.value.message.startswith("dvc.lock")
    assert "dvc repro" in caught.value.hint


def test_list_cmd_in_lock_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="list 'cmd'"):
        parse_lock("schema: '2.0'\nstages:\n  a:\n    cmd: [echo a, echo b]\n")


@pytest.mark.integration
def test_lock_written_by_dvc_reads_back(tmp_path: Path) -> None:
    """A real `dvc repro` writes the lock; its hashes are the md5 of the files."""
    (tmp_path / "in.txt").write_text("abc\n")
    (tmp_path / "params.yaml").write_text("factor: 2\nother: 3\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  copy:\n    cmd: mkdir -p out && cp in.txt out/copy.txt\n"
        "    deps: [in.txt]\n    params: [factor]\n    outs: [out]\n"
    )
    env = {
        "DVC_NO_ANALYTICS": "1",
        "HOME": str(tmp_path),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
    }
    for argv in (["init", "--no-scm", "-q"], ["repro", "-q"]):
        subprocess.run([sys.executable, "-m", "dvc", *argv], cwd=tmp_path, check=True, env=env)
    copy = load_lock(tmp_path)["copy"]
    assert copy.cmd == "mkdir -p out && cp in.txt out/copy.txt"
    dep = copy.dep("in.txt")
    assert dep is not None
    assert dep.md5 == hashlib.md5(b"abc\n").hexdigest()  # noqa: S324 - DVC's hash
    assert dep.size == 4 and dep.hash == "md5"
    out = copy.out("out")
    assert out is not None and out.md5.endswith(".dir") and out.nfiles == 1
    assert copy.params == {"params.yaml": {"factor": 2}}
