"""The command-line contract, for every command: exit codes, one line per error, --json, help.

Most cases run the entry point in this process (``main``); start-up behaviour (what help
imports, ``--version``) runs the console script in a fresh interpreter.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bitwright.digest
from bitwright import __version__
from bitwright.cli.app import app
from bitwright.cli.commands import COMMAND_MODULES, COMMAND_SUMMARIES
from bitwright.cli.main import main

BITWRIGHT = Path(sys.executable).parent / "bitwright"
REPO_ROOT = Path(__file__).resolve().parents[3]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, [line for line in out.err.splitlines() if line.strip()]


def test_version_prints_the_version_and_imports_no_command() -> None:
    script = (
        "import sys; from bitwright.cli.main import main; code = main(['--version']); "
        "print([m for m in sys.modules if m.startswith(('typer', 'bitwright.cli.cmd_'))])"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)

    assert done.stdout.splitlines() == [f"bitwright {__version__}", "[]"]


def test_top_level_help_lists_every_command_without_importing_one() -> None:
    script = (
        "import sys; from bitwright.cli.main import main; main(['--help']); "
        "print([m for m in sys.modules if m.startswith('bitwright.cli.cmd_')])"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    for name in COMMAND_MODULES:
        assert f"  {name} " in done.stdout


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_the_summary_is_the_first_line_of_the_commands_help(name: str) -> None:
    importlib.import_module(f"bitwright.cli.{COMMAND_MODULES[name]}")
    docs = {i.name: (i.callback.__doc__ or "") for i in app.registered_commands if i.callback}
    groups = {g.name: str(g.typer_instance.info.help or "") for g in app.registered_groups}
    text = docs[name] if name in docs else groups[name]  # a group's summary is its help text
    assert text.strip().splitlines()[0] == COMMAND_SUMMARIES[name]


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_help_names_values_plainly(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, name, "--help")

    assert code == 0
    assert "<" not in out and "{" not in out, out
    assert "--help" in out


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_before_or_after_the_command_shows_the_traceback(
    where: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["verify", str(tmp_path), "--key", str(tmp_path / "missing.pub")]
    argv = ["--verbose", *argv] if where == "before" else [*argv, "--verbose"]

    code, _, lines = _run(capsys, *argv)
    quiet_code, _, quiet = _run(capsys, *argv[1:] if where == "before" else argv[:-1])

    assert code == quiet_code == 3
    assert "Traceback (most recent call last):" in lines
    assert lines[-1] == quiet[0] and len(quiet) == 1
    assert quiet[0].startswith("error: public key ") and "(hint: " in quiet[0]


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["nosuch"], 2, "No such command 'nosuch'"),
        (["verify"], 2, "Missing argument 'RELEASE'"),
        (["keygen", "--bogus"], 2, "No such option: --bogus"),
        (["verify", "r", "--max-json-depth", "zero"], 2, "Input should be a valid integer"),
        (["verify", "rel", "--key", "/no/such.pub"], 3, "public key /no/such.pub not found"),
        (["rebuild", "rel", "--key", "/no/such.pub"], 3, "public key /no/such.pub not found"),
        (["release", "--key", "/no/such.key", "--out", "x"], 3, "signing key /no/such.key"),
        (["verify", "rel", "--key", "k", "--commit", "abc123"], 2, "is not a full commit id"),
        (["verify", "rel", "--key", "k", "--not-before", "soon"], 2, "is not a date"),
        (
            ["rebuild", "rel", "--key", "k", "--spot-check", "3", "--stage", "train"],
            2,
            "--spot-check audits training segments; it cannot be combined with --stage",
        ),
    ],
)
def test_errors_are_one_line_with_the_contract_exit_code(
    argv: list[str],
    code: int,
    says: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "k").write_text("not a key")
    got, _, lines = _run(capsys, *argv)

    assert got == code
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and says in lines[0]


def test_json_failures_print_one_error_object(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, lines = _run(capsys, "digest", str(tmp_path / "missing"), "--json")
    usage, usage_out, _ = _run(capsys, "verify", "--json")

    assert code == 3 and len(lines) == 1
    error = json.loads(out)
    assert error == {
        "ok": False,
        "error": {
            "exit_code": 3,
            "kind": error["error"]["kind"],
            "message": lines[0].removeprefix("error: ").split(" (hint: ")[0],
            "hint": error["error"]["hint"],
        },
    }
    assert usage == 2 and json.loads(usage_out)["error"]["exit_code"] == 2


def test_an_unforeseen_failure_is_operational_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk said something new")

    monkeypatch.setattr(bitwright.digest, "sha256_files", broken)
    (tmp_path / "f").write_text("x")

    code, _, lines = _run(capsys, "digest", str(tmp_path / "f"))

    assert code == 3
    assert lines == [
        "error: unexpected RuntimeError: the disk said something new (hint: this is a bug in "
        "bitwright or a library it uses; run again with --verbose and report the traceback)"
    ]


def test_a_stale_params_file_is_an_operational_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copytree(REPO_ROOT / "configs", tmp_path / "configs")
    shutil.copyfile(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    train = tmp_path / "configs" / "train" / "default.yaml"
    train.write_text(train.read_text().replace("epochs:", "epochs: 1 #"))

    code, _, lines = _run(capsys, "params", "--repo", str(tmp_path))

    assert code == 3
    assert len(lines) == 1 and "stale" in lines[0]


def test_a_plain_digest_runs_without_typer_and_prints_what_the_command_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f").write_text("x")
    script = (
        "import sys; from bitwright.cli.main import main; code = main(sys.argv[1:]); "
        "print(code, 'typer' in sys.modules)"
    )
    fast = subprocess.run(
        [sys.executable, "-c", script, "digest", "--no-cache", "--", str(tmp_path / "f")],
        capture_output=True,
        text=True,
    )
    code, out, _ = _run(capsys, "digest", "--no-cache", str(tmp_path / "f"))

    assert fast.stdout.splitlines() == [*out.splitlines(), "0 False"]
    assert code == 0


@pytest.mark.parametrize("name", ["verify", "build"])
def test_help_is_the_same_whatever_the_hash_seed(name: str) -> None:
    """The help option's names reach click in an order that follows string hashing."""
    texts = set()
    for seed in ("0", "1", "2", "3"):
        done = subprocess.run(
            [str(BITWRIGHT), name, "--help"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": seed, "COLUMNS": "100"},
            check=True,
        )
        texts.add(done.stdout)
    assert len(texts) == 1
    assert "-h, --help" in texts.pop()
