"""dvc.yaml parsing: what bitwright seals and attests, and what it refuses."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bitwright.errors import BitwrightError, OperationalError, UsageError
from bitwright.pipeline import load_pipeline, parse_pipeline

REPO_ROOT = Path(__file__).resolve().parents[3]

GOOD = """\
stages:
  prepare:
    cmd: bitwright stage run prepare -- python src/prepare.py
    deps:
      - src/prepare.py
      - data/raw/
    params:
      - data.split
      - determinism.seed
    outs:
      - data/prepared
  train:
    cmd: bitwright stage run train -- python ../src/train.py
    wdir: work
    deps:
      - ../src/train.py
      - ../data/prepared
    params:
      - train
      - ../custom.yaml:
          - lr
          - batch
    outs:
      - model.bin:
          cache: false
    metrics:
      - metrics.json:
          cache: false
    plots:
      - loss.csv
metrics:
  - work/metrics.json
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "dvc.yaml").write_text(textwrap.dedent(text))
    return tmp_path


def stage(body: str) -> str:
    return "stages:\n  s:\n" + textwrap.indent(textwrap.dedent(body), "    ")


def test_good_file_gives_stages_in_order_with_repo_relative_paths(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, GOOD))
    assert pipeline.names == ("prepare", "train")
    prepare, train = pipeline.stages
    assert prepare.cmd == "bitwright stage run prepare -- python src/prepare.py"
    assert prepare.inner_cmd == "python src/prepare.py"
    assert prepare.deps == ("src/prepare.py", "data/raw")
    assert prepare.outs == ("data/prepared",)
    assert prepare.params == (("params.yaml", "data.split"), ("params.yaml", "determinism.seed"))
    assert prepare.wdir == "."
    assert train.wdir == "work"
    assert train.deps == ("src/train.py", "data/prepared")
    assert train.outs == ("work/model.bin", "work/metrics.json", "work/loss.csv")
    assert train.params == (
        ("work/params.yaml", "train"),
        ("custom.yaml", "lr"),
        ("custom.yaml", "batch"),
    )
    assert pipeline.upstream("train") == ("prepare",)
    assert pipeline.topological() == ("prepare", "train")


def test_reference_pipeline_parses() -> None:
    pipeline = load_pipeline(REPO_ROOT)
    assert pipeline.topological() == ("prepare", "train", "evaluate", "package")
    for spec in pipeline.stages:
        assert spec.cmd == f"bitwright stage run {spec.name} -- python pipelines/{spec.name}.py"
        assert f"pipelines/{spec.name}.py" in spec.deps
        assert "pipelines/common.py" in spec.deps
        assert spec.param_files == ("params.yaml",)
    assert pipeline.upstream("package") == ("train", "evaluate")


def test_reference_stage_code_reads_only_declared_modules() -> None:
    """Each stage imports from pipelines/ only the modules it declares as deps."""
    pipeline = load_pipeline(REPO_ROOT)
    for spec in pipeline.stages:
        code = (REPO_ROOT / "pipelines" / f"{spec.name}.py").read_text()
        imported = {
            f"pipelines/{name}.py"
            for name in re.findall(r"^from pipelines import (\w+)", code, re.M)
        }
        assert imported
        assert imported <= set(spec.deps), spec.name
        assert code.index("stagekit.begin()") < code.index("from pipelines import")


def test_list_cmd_is_refused(tmp_path: Path) -> None:
    write(tmp_path, stage("cmd:\n  - echo a\n  - echo b\n"))
    with pytest.raises(UsageError, match=r"dvc.yaml: stage 's': a list 'cmd' is not supported"):
        load_pipeline(tmp_path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "stages:\n  s:\n    foreach: [a, b]\n    do:\n      cmd: echo ${item}\n",
            "stage 's': foreach stages are not yet supported",
        ),
        (
            "stages:\n  s:\n    matrix:\n      x: [1, 2]\n    cmd: echo ${item.x}\n",
            "stage 's': matrix stages are not yet supported",
        ),
        ("vars:\n  - params.yaml\nstages: {}\n", "templating"),
        (stage("cmd: python ${script}\n"), "templating"),
    ],
)
def test_unsupported_features_are_refused(text: str, match: str) -> None:
    with pytest.raises(UsageError, match=match) as caught:
        parse_pipeline(text)
    assert caught.value.hint


def test_missing_file_is_operational(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match="dvc.yaml: missing") as caught:
        load_pipeline(tmp_path)
    assert caught.value.exit_code == 3


def test_malformed_yaml_names_the_file_line_and_stage(tmp_path: Path) -> None:
    write(tmp_path, "stages:\n  a:\n    cmd: echo a\n  b:\n    cmd: [echo\n    deps: x\n")
    with pytest.raises(UsageError) as caught:
        load_pipeline(tmp_path)
    assert caught.value.message.startswith("dvc.yaml: malformed YAML at line")
    assert "stage 'b'" in caught.value.message
    assert caught.value.exit_code == 2


def test_duplicate_stage_is_refused() -> None:
    text = "stages:\n  a:\n    cmd: echo 1\n  a:\n    cmd: echo 2\n"
    with pytest.raises(UsageError, match="duplicate key 'a'"):
        parse_pipeline(text)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("deps: [x]\n", "'cmd' must be a non-empty string"),
        ("cmd: echo\ndeps: x\n", "'deps' must be a list"),
        ("cmd: echo\nouts: [{a: null, b: null}]\n", "exactly one path"),
        ("cmd: echo\ndeps: [/etc/passwd]\n", "is absolute"),
        ("cmd: echo\ndeps: [../outside]\n", "outside the repository"),
        ("cmd: echo\ndeps: ['s3://bucket/x']\n", "not in the repository"),
        ("cmd: echo\ndeps: [a, ./a]\n", "lists 'a' twice"),
        ("cmd: echo\nparams: [{other.yaml: null}]\n", "must list the keys"),
        ("cmd: echo\nparams: [.bad]\n", "invalid params key"),
        ("cmd: echo\nretries: 3\n", "unknown key 'retries'"),
        ("cmd: echo\nouts: [a]\ndeps: [a/b]\n", "its own output"),
        ("cmd: echo\nouts: [a/b]\ndeps: [a]\n", "its own output"),
    ],
)
def test_malformed_stage_is_refused_naming_it(body: str, match: str) -> None:
    with pytest.raises(UsageError, match=match) as caught:
        parse_pipeline(stage(body))
    assert caught.value.message.startswith("dvc.yaml")
    assert "'s'" in caught.value.message or "stage" in caught.value.message


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("- a\n", "expected a mapping"),
        ("stages: [a]\n", "must be a mapping"),
        ("pipelines: {}\n", "unknown top-level key"),
        ("stages:\n  'a/b':\n    cmd: echo\n", "invalid stage name"),
        (
            "stages:\n  a:\n    cmd: x\n    outs: [out]\n  b:\n    cmd: y\n    outs: [out/sub]\n",
            "overlap",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    deps: [y]\n    outs: [x]\n"
            "  b:\n    cmd: y\n    deps: [x]\n    outs: [y]\n",
            "dependency cycle",
        ),
    ],
)
def test_malformed_pipeline_is_refused(text: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        parse_pipeline(text)


def test_empty_file_has_no_stages() -> None:
    assert parse_pipeline("").stages == ()
    assert parse_pipeline("plots:\n  - loss.csv\n").stages == ()


_names = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)
_paths = st.lists(_names, min_size=1, max_size=3).map("/".join)


@settings(max_examples=60, deadline=None)
@given(
    stages=st.dictionaries(
        _names,
        st.fixed_dictionaries(
            {
                "deps": st.lists(_paths, max_size=4, unique=True),
                "keys": st.lists(_names, max_size=3, unique=True),
            }
        ),
        min_size=1,
        max_size=5,
    )
)
def test_written_stages_read_back(stages: dict[str, dict[str, list[str]]]) -> None:
    document = {
        "stages": {
            name: {
                "cmd": f"bitwright stage run {name} -- python {name}.py",
                "deps": spec["deps"],
                "params": spec["keys"],
                "outs": [f"out/{name}"],
            }
            for name, spec in stages.items()
        }
    }
    pipeline = parse_pipeline(yaml.safe_dump(document, sort_keys=False))
    assert pipeline.names == tuple(stages)
    for spec in pipeline.stages:
        assert spec.deps == tuple(stages[spec.name]["deps"])
        assert spec.params == tuple(("params.yaml", k) for k in stages[spec.name]["keys"])
        assert spec.outs == (f"out/{spec.name}",)
        assert spec.inner_cmd == f"python {spec.name}.py"


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_parses_or_fails_with_a_bitwright_error(text: str) -> None:
    try:
        parse_pipeline(text)
    except BitwrightError as exc:
        assert exc.message.startswith("dvc.yaml")


@pytest.mark.integration
def test_paths_agree_with_dvc(tmp_path: Path) -> None:
    """DVC itself reads the same deps, outs and params from the same file."""
    write(tmp_path, GOOD)
    subprocess.run(
        [sys.executable, "-m", "dvc", "init", "--no-scm", "-q"],
        cwd=tmp_path,
        check=True,
        env={"DVC_NO_ANALYTICS": "1", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    probe = textwrap.dedent(
        """
        import json, os
        from dvc.repo import Repo
        root = os.getcwd()
        out = {}
        for s in Repo(".").index.stages:
            rel = lambda o: os.path.relpath(o.fs_path, root)
            params = sorted(
                (os.path.relpath(d.fs_path, root), k) for d in s.deps if hasattr(d, "params")
                for k in d.params
            )
            out[s.name] = {
                "deps": sorted(rel(d) for d in s.deps if not hasattr(d, "params")),
                "outs": sorted(rel(o) for o in s.outs),
                "params": params,
            }
        print(json.dumps(out))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
        env={"DVC_NO_ANALYTICS": "1", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    dvc_view = yaml.safe_load(result.stdout)
    ours = load_pipeline(tmp_path)
    for spec in ours.stages:
        assert dvc_view[spec.name]["deps"] == sorted(spec.deps)
        assert dvc_view[spec.name]["outs"] == sorted(spec.outs)
        assert dvc_view[spec.name]["params"] == sorted(map(list, spec.params))
