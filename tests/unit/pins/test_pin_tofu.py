"""TOFU pins: local paths, http(s) on loopback, hf:// through huggingface_hub's offline cache.

The http tests serve files with the standard library's ``http.server`` on 127.0.0.1. The
hf tests never touch the network: they fill a Hugging Face cache the way huggingface_hub
lays it out (``models--ORG--NAME/refs/main`` naming a commit, ``snapshots/COMMIT/...``) and
fetch with ``local_files_only``; an upstream change is a new commit that ``refs/main``
moves to, exactly what a re-download would bring.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bitwright.errors import CheckFailed, OperationalError, UsageError
from bitwright.model import Pipeline, StageSpec
from bitwright.pins.tofu import (
    PINS_FILE,
    add_pin,
    check_local,
    check_pins,
    pins_read_by,
    read_pins,
    unpinned_inputs,
)


@pytest.fixture
def repo(make_repo: Callable[..., Path]) -> Path:
    return make_repo({"README.md": "x\n", ".gitignore": "third_party/\n"})


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    folder = tmp_path / "upstream" / "tiny-bert"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden": 8}')
    (folder / "tokenizer" / "vocab.txt").write_text("[CLS]\n[SEP]\n")
    return folder


def _lines(repo: Path) -> list[str]:
    return [c.line() for c in check_pins(repo)]


# -- local paths -----------------------------------------------------------------------------


def test_a_local_tree_is_copied_and_every_file_pinned(repo: Path, upstream: Path) -> None:
    pinned = add_pin(repo, str(upstream))

    assert pinned.path == "third_party/tiny-bert"
    assert (repo / "third_party/tiny-bert/tokenizer/vocab.txt").read_text() == "[CLS]\n[SEP]\n"
    written = json.loads((repo / PINS_FILE).read_text())
    entry = written["pins"]["third_party/tiny-bert"]
    assert sorted(entry["files"]) == ["config.json", "tokenizer/vocab.txt"]
    assert entry["files"]["config.json"]["size"] == 13
    assert entry["kind"] == "model" and entry["revision"] == ""
    assert read_pins(repo).pins["third_party/tiny-bert"] == pinned
    assert _lines(repo) == []


def test_check_names_each_file_changed_added_or_missing(repo: Path, upstream: Path) -> None:
    add_pin(repo, str(upstream))
    (upstream / "config.json").write_text('{"hidden": 9}')
    (repo / "third_party/tiny-bert/tokenizer/vocab.txt").unlink()
    (repo / "third_party/tiny-bert/extra.py").write_text("import os\n")

    lines = _lines(repo)

    assert lines[0].startswith("third_party/tiny-bert/extra.py: added in the local")
    assert lines[1].startswith("third_party/tiny-bert/tokenizer/vocab.txt: missing in the local")
    assert lines[2].startswith("third_party/tiny-bert/config.json: changed in the source")
    assert len(lines) == 3
    assert {c.where for c in check_pins(repo, fetch_sources=False)} == {"local"}


def test_a_path_inside_the_repository_is_pinned_in_place(repo: Path) -> None:
    (repo / "weights.bin").write_bytes(b"\x01\x02")

    pinned = add_pin(repo, str(repo / "weights.bin"), kind="dataset")

    assert (pinned.path, pinned.kind, list(pinned.files)) == ("weights.bin", "dataset", [""])
    assert pinned.uri == (repo / "weights.bin").resolve().as_uri()


def test_pinning_twice_needs_replace(repo: Path, upstream: Path) -> None:
    add_pin(repo, str(upstream))
    (upstream / "config.json").write_text("{}")

    with pytest.raises(UsageError, match="already pinned"):
        add_pin(repo, str(upstream))
    add_pin(repo, str(upstream), replace=True)
    assert _lines(repo) == []


def test_a_link_out_of_the_source_tree_is_refused(repo: Path, upstream: Path) -> None:
    (upstream / "escape").symlink_to("/etc/hostname")

    with pytest.raises(OperationalError):
        add_pin(repo, str(upstream))
    assert not (repo / PINS_FILE).exists()


# -- http(s) on loopback ---------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "model.safetensors").write_bytes(b"weights v1")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_a_url_is_downloaded_and_pinned_with_its_etag_or_date(
    repo: Path, served: tuple[str, Path]
) -> None:
    base, _ = served

    pinned = add_pin(repo, f"{base}/model.safetensors")

    assert pinned.path == "third_party/model.safetensors"
    assert (repo / pinned.path).read_bytes() == b"weights v1"
    assert pinned.revision  # SimpleHTTPRequestHandler sends Last-Modified
    assert pinned.uri == f"{base}/model.safetensors"
    assert _lines(repo) == []


def test_a_changed_download_is_named(repo: Path, served: tuple[str, Path]) -> None:
    base, root = served
    add_pin(repo, f"{base}/model.safetensors")
    (root / "model.safetensors").write_bytes(b"weights v2, poisoned")

    (line,) = _lines(repo)

    assert line.startswith("third_party/model.safetensors: changed in the source (sha256 ")


def test_a_missing_url_is_an_operational_error(repo: Path, served: tuple[str, Path]) -> None:
    base, _ = served

    with pytest.raises(OperationalError, match="HTTP 404"):
        add_pin(repo, f"{base}/nothing.bin")


# -- hf:// through huggingface_hub's local cache ------------------------------------------------


def _hub_commit(cache: Path, repo_id: str, commit: str, files: dict[str, bytes]) -> None:
    """Lay out one commit of a Hub repository in huggingface_hub's cache and point main at it."""
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    for rel, data in files.items():
        blob = folder / "blobs" / f"{commit[:8]}-{rel.replace('/', '_')}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = folder / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _hub_commit(cache, "org/tiny", "a" * 40, {"config.json": b"{}", "model.safetensors": b"w1"})
    return cache


def test_a_hub_model_is_pinned_at_the_commit_its_branch_names(repo: Path, hub_cache: Path) -> None:
    pinned = add_pin(repo, "hf://org/tiny@main", offline=True)

    assert pinned.path == "third_party/org/tiny"
    assert pinned.revision == "a" * 40
    assert sorted(pinned.files) == ["config.json", "model.safetensors"]
    assert not (repo / pinned.path / "config.json").is_symlink()
    assert check_pins(repo, offline=True) == []


def test_an_upstream_change_behind_the_same_branch_is_caught(repo: Path, hub_cache: Path) -> None:
    add_pin(repo, "hf://org/tiny@main", offline=True)
    _hub_commit(hub_cache, "org/tiny", "b" * 40, {"config.json": b"{}", "model.safetensors": b"w2"})

    (change,) = check_pins(repo, offline=True)

    assert (change.file, change.what, change.where) == (
        "third_party/org/tiny/model.safetensors",
        "changed",
        "source",
    )


def test_a_hub_model_not_in_the_cache_is_an_operational_error(repo: Path, hub_cache: Path) -> None:
    with pytest.raises(OperationalError, match="local Hugging Face cache"):
        add_pin(repo, "hf://org/absent@main", offline=True)


@pytest.mark.parametrize("text", ["hf://justaname", "hf://org/name@", "s3://bucket/key"])
def test_malformed_sources_are_usage_errors(repo: Path, text: str) -> None:
    with pytest.raises(UsageError):
        add_pin(repo, text)


# -- the pins file is hostile input too ---------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ('{"version": 1, "pins": {}, "extra": 1}', UsageError),
        ('{"version": 2, "pins": {}}', UsageError),
        ('{"version": 1, "pins": {"../etc": {}}}', UsageError),
        ("[" * 100 + "]" * 100, Exception),
        ("not json", Exception),
    ],
)
def test_a_malformed_pins_file_is_refused(repo: Path, content: str, error: type[Exception]) -> None:
    (repo / PINS_FILE).write_text(content)

    with pytest.raises(error):
        read_pins(repo)


def test_a_pin_whose_digest_is_not_its_files_is_refused(repo: Path, upstream: Path) -> None:
    add_pin(repo, str(upstream))
    data = json.loads((repo / PINS_FILE).read_text())
    data["pins"]["third_party/tiny-bert"]["files"]["config.json"]["sha256"] = "0" * 64
    (repo / PINS_FILE).write_text(json.dumps(data))

    with pytest.raises(UsageError, match="not the digest of its files"):
        read_pins(repo)


def test_a_pins_file_that_is_a_fifo_or_a_link_out_is_refused(repo: Path, tmp_path: Path) -> None:
    os.mkfifo(repo / PINS_FILE)
    with pytest.raises(OperationalError, match="not a regular file"):
        read_pins(repo)
    (repo / PINS_FILE).unlink()
    (tmp_path / "elsewhere.json").write_text('{"version": 1, "pins": {}}')
    (repo / PINS_FILE).symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(OperationalError, match="symbolic link"):
        read_pins(repo)


# -- what a build reads -------------------------------------------------------------------------


def _pipeline(*deps: str) -> Pipeline:
    return Pipeline(
        stages=(
            StageSpec("fetch", "python fetch.py", ("fetch.py",), ("prepared",)),
            StageSpec("train", "python train.py", ("train.py", "prepared", *deps), ("model",)),
        )
    )


def test_stages_reading_unpinned_third_party_files_are_named(repo: Path, upstream: Path) -> None:
    (repo / "third_party/manual").mkdir(parents=True)
    (repo / "third_party/manual/weights.bin").write_bytes(b"who knows")
    add_pin(repo, str(upstream))
    pipeline = _pipeline("third_party/manual", "third_party/tiny-bert", "README.md")

    found = unpinned_inputs(repo, pipeline, read_pins(repo), tracked_elsewhere=["data/raw"])

    assert found == {"train": ("third_party/manual/weights.bin",)}
    assert [p.path for p in pins_read_by(pipeline, read_pins(repo))] == ["third_party/tiny-bert"]


def test_a_build_refuses_pinned_files_that_changed(repo: Path, upstream: Path) -> None:
    pinned = add_pin(repo, str(upstream))
    check_local(repo, [pinned], None)
    (repo / "third_party/tiny-bert/config.json").write_text('{"hidden": 666}')

    with pytest.raises(CheckFailed, match="tiny-bert/config.json: changed in the local"):
        check_local(repo, [pinned], None)


# -- the commands ----------------------------------------------------------------------------


def test_pin_commands_exit_0_then_1_on_change_then_3_when_the_source_is_gone(
    repo: Path, upstream: Path
) -> None:
    import subprocess
    import sys

    def bitwright(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "bitwright"), *args]
        return subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=120)

    added = bitwright("pin", "add", str(upstream), "--to", "models/base", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["path"] == "models/base"

    (upstream / "config.json").write_text("{}")
    changed = bitwright("pin", "check", "--json")
    assert changed.returncode == 1
    assert json.loads(changed.stdout)["changes"][0]["file"] == "models/base/config.json"
    assert "models/base/config.json: changed in the source" in changed.stderr

    (upstream / "config.json").unlink()
    (upstream / "tokenizer" / "vocab.txt").unlink()
    (upstream / "tokenizer").rmdir()
    upstream.rmdir()
    gone = bitwright("pin", "check")
    assert gone.returncode == 3 and "not found" in gone.stderr
