"""Any stage command: a shell stage and a Python stage that never imports bitwright.

The runner itself sets, records and confirms the process-level settings of every stage (the
runner receipt), and every Python process reports at exit (the Python receipt), so neither
stage needs bitwright in its code: both build, link, release and verify.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from tests.integration.project import BITWRIGHT, ROOT, commit_with_data, sh

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DVC_YAML = """\
stages:
  shout:
    cmd: bitwright stage run shout -- sh -c 'tr a-z A-Z < data/raw/words.txt > out/shout.txt'
    deps:
      - data/raw
    outs:
      - out/shout.txt
  count:
    cmd: bitwright stage run count -- python stages/count.py
    deps:
      - stages/count.py
      - out/shout.txt
    params:
      - count
    outs:
      - result
"""

COUNT = """\
import json, os, pathlib, yaml
params = yaml.safe_load(open("params.yaml"))["count"]
words = pathlib.Path("out/shout.txt").read_text().split()
pathlib.Path("result").mkdir(exist_ok=True)
report = {"words": len(words), "min_length": params["min_length"],
          "long": sum(len(w) >= params["min_length"] for w in words),
          "umask": oct(os.umask(0o022)), "tz": os.environ["TZ"]}
pathlib.Path("result/count.json").write_text(json.dumps(report, sort_keys=True) + "\\n")
"""


def _project(base: Path) -> Path:
    repo = base / "project"
    (repo / "stages").mkdir(parents=True)
    (repo / "data" / "raw").mkdir(parents=True)
    shutil.copytree(ROOT / "containers", repo / "containers")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "stages" / "count.py").write_text(COUNT)
    (repo / "params.yaml").write_text("count:\n  min_length: 5\n")
    (repo / "data" / "raw" / "words.txt").write_text("reproducible builds of any stage\n")
    (repo / ".gitignore").write_text(".bitwright/\n/result\n/dist\n")
    (repo / "out").mkdir()
    (repo / "out" / ".gitignore").write_text("/shout.txt\n")
    commit_with_data(repo, base / "remote")
    sh(BITWRIGHT, "keygen", cwd=repo)
    return repo


def _payload(link: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(link.read_text())["payload"]))


def test_a_shell_stage_and_a_python_stage_without_bitwright_build_and_release(
    tmp_path: Path,
) -> None:
    repo = _project(tmp_path)
    done = sh(BITWRIGHT, "build", cwd=repo, check=False)
    assert done.returncode == 0, done.stderr
    links = {
        p.name.split(".")[0]: _payload(p)
        for p in (repo / ".bitwright/attestations/links").glob("*.link")
    }
    shout = links["shout"]["byproducts"]["receipts"]
    assert shout["runner"]["umask"] == "0022" and shout["python"] == []
    assert shout["runner"]["env"]["ATEN_CPU_CAPABILITY"] == "avx2"
    count = links["count"]["byproducts"]["receipts"]
    assert [r["params"] for r in count["python"]] == [
        {"params.yaml": links["count"]["materials"]["params.yaml"]["sha256"]}
    ]
    assert count["python"][0]["torch"] is None and count["stagekit"] == []
    result = json.loads((repo / "result" / "count.json").read_text())
    assert result == {"long": 3, "min_length": 5, "tz": "UTC", "umask": "0o22", "words": 5}

    release = tmp_path / "release"
    sh(BITWRIGHT, "release", "--out", str(release), cwd=repo)
    assert (release / "artifacts" / "result" / "count.json").is_file()
    pub = repo / ".bitwright" / "keys" / "owner.pub"
    verified = sh(BITWRIGHT, "verify", str(release), "--key", str(pub), cwd=repo, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
