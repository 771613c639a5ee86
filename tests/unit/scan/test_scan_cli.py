"""``bitwright scan`` as a user runs it: exit codes, one line per finding, --json."""

from __future__ import annotations

import collections
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

BITWRIGHT = Path(sys.executable).parent / "bitwright"


def bitwright(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BITWRIGHT), *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "state.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))
    (folder / "card.md").write_text("# card\n")
    return folder


def test_clean_model_exits_0_and_json_lists_every_file(model: Path) -> None:
    done = bitwright("scan", model, "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["clean"] is True
    assert [f["path"] for f in report["files"]] == ["card.md", "state.pkl"]
    assert "clean: 2 file(s)" in done.stderr


def test_a_payload_exits_1_naming_file_and_callable(model: Path) -> None:
    (model / "extra.bin").write_bytes(b"cposix\nsystem\n(Vid\ntR.")

    done = bitwright("scan", model)

    assert done.returncode == 1
    assert "extra.bin: unsafe: imports posix.system" in done.stderr
    assert "Traceback" not in done.stderr


def test_custom_code_exits_1_unless_allowed(model: Path) -> None:
    (model / "modeling.py").write_text("import os\n")

    assert bitwright("scan", model).returncode == 1
    assert bitwright("scan", model, "--allow-custom-code").returncode == 0


def test_a_narrower_allowlist_refuses_more(model: Path) -> None:
    (model / "state.pkl").write_bytes(pickle.dumps(collections.OrderedDict(a=1), protocol=4))

    assert bitwright("scan", model, "--allow", "torch").returncode == 0
    assert bitwright("scan", model, "--allow", "numpy").returncode == 1


def test_a_missing_path_exits_3_and_an_unknown_family_2(tmp_path: Path) -> None:
    missing = bitwright("scan", tmp_path / "nothing")
    family = bitwright("scan", tmp_path, "--allow", "tensorflow")

    assert missing.returncode == 3 and "not found" in missing.stderr
    assert family.returncode == 2 and "unknown allowlist family" in family.stderr


def test_external_evidence_is_shown_and_changes_nothing(model: Path) -> None:
    done = bitwright("scan", model, "--external", "--json")

    assert done.returncode == 0, done.stderr
    tools = {e["tool"]: e["verdict"] for e in json.loads(done.stdout)["external"]}
    assert tools["picklescan"] == "clean"
    assert "picklescan" in done.stderr
