"""Hostile and broken inputs: FIFOs, links, bombs, deep nesting, code, unknown formats."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest

from bitwright.errors import OperationalError
from bitwright.scan import ScanLimits, ScanPolicy, Severity, scan_path


def _severities(path: Path, **kwargs: object) -> list[tuple[str, Severity]]:
    return [(f.path, f.severity) for f in scan_path(path, **kwargs).findings]  # type: ignore[arg-type]


def test_a_fifo_is_reported_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "weights.bin")
    (tmp_path / "notes.txt").write_text("fine\n")

    assert _severities(tmp_path) == [("weights.bin", Severity.UNKNOWN)]
    assert _severities(tmp_path / "weights.bin") == [("weights.bin", Severity.UNKNOWN)]


def test_a_link_to_a_payload_outside_is_followed_and_judged(tmp_path: Path) -> None:
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(b"cbuiltins\nexec\n(Vprint(1)\ntR.")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").symlink_to(outside)

    found = scan_path(model).findings

    assert [(f.path, f.severity) for f in found] == [
        ("weights.bin", Severity.NOTE),
        ("weights.bin", Severity.UNSAFE),
    ]
    assert str(outside) in found[0].message


def test_directory_links_and_broken_links_are_not_followed(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "loop").symlink_to(model)
    (model / "gone.bin").symlink_to(tmp_path / "missing")

    assert sorted(_severities(model)) == [
        ("gone.bin", Severity.UNKNOWN),
        ("loop", Severity.UNKNOWN),
    ]


def test_a_missing_path_is_an_operational_error(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match="not found"):
        scan_path(tmp_path / "nothing")


def test_a_zip_bomb_stops_at_the_byte_budget(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"part{i}", b"x" * (4 << 20))
    limits = ScanLimits(max_unpacked_bytes=6 << 20)

    found = scan_path(tmp_path / "bomb.zip", limits=limits).findings

    assert [(f.path, f.message) for f in found] == [
        ("bomb.zip!part1", "decompresses past the scan's byte budget"),
        ("bomb.zip!part2", "decompresses past the scan's byte budget"),
    ]


def test_a_gzip_bomb_stops_at_the_byte_budget(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(gzip.compress(b"N" * (8 << 20) + b"."))

    found = scan_path(tmp_path / "model.pkl", limits=ScanLimits(max_unpacked_bytes=1 << 20))

    assert [f.message for f in found.findings] == ["decompresses past the scan's byte budget"]


def test_archives_nested_too_deep_are_not_opened(tmp_path: Path) -> None:
    data = pickle.dumps([1, 2])
    for level in range(6):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr(f"level{level}", data)
        data = buffer.getvalue()
    (tmp_path / "deep.zip").write_bytes(data)

    found = scan_path(tmp_path / "deep.zip", limits=ScanLimits(max_depth=3)).findings

    assert [f.message for f in found] == ["zip nested too deep to open"]
    assert found[0].path.count("!") == 3


def test_members_beyond_the_limit_are_reported(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "many.zip", "w") as zf:
        for i in range(5):
            zf.writestr(f"m{i}.txt", "text")

    found = scan_path(tmp_path / "many.zip", limits=ScanLimits(max_members=3)).findings

    assert [f.message for f in found] == ["more members than the scan opens"]


def test_deeply_nested_and_oversized_pickles_do_not_crash(tmp_path: Path) -> None:
    nested = b"\x80\x04" + b"]" * 200_000 + b"a" * 199_999 + b"."
    (tmp_path / "nested.pkl").write_bytes(nested)
    huge_length = b"\x80\x04\x8e" + (1 << 62).to_bytes(8, "little") + b"xx."
    (tmp_path / "huge.pkl").write_bytes(huge_length)
    (tmp_path / "longline.pkl").write_bytes(b"c" + b"a" * (2 << 20))

    report = scan_path(tmp_path)

    # longline.pkl is text: its one GLOBAL never ends, so it names nothing a loader imports
    assert [(f.path, f.severity) for f in report.findings] == [("huge.pkl", Severity.UNSAFE)]
    assert "malformed pickle" in report.findings[0].message
    assert {f.path: f.format for f in report.files}["nested.pkl"] == "pickle"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("config.json", b'{"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}}'),
        ("tokenizer_config.json", b'{"trust_remote_code": true}'),
        ("modeling_x.py", b"import os\n"),
        ("libkernel.bin", b"\x7fELF\x02\x01\x01" + b"\0" * 64),
    ],
)
def test_custom_code_is_reported_and_allowed_only_by_policy(
    tmp_path: Path, name: str, data: bytes
) -> None:
    (tmp_path / name).write_bytes(data)

    strict = scan_path(tmp_path)
    lenient = scan_path(tmp_path, policy=ScanPolicy(allow_custom_code=True))

    assert [f.severity for f in strict.findings] == [Severity.CUSTOM_CODE]
    assert not strict.clean
    assert lenient.clean


def test_unknown_formats_are_reported_and_allowed_only_by_policy(tmp_path: Path) -> None:
    (tmp_path / "weights.onnx").write_bytes(bytes(range(1, 256)) * 4)

    assert _severities(tmp_path) == [("weights.onnx", Severity.UNKNOWN)]
    assert scan_path(tmp_path, policy=ScanPolicy(allow_unknown_formats=True)).clean


def test_yaml_that_builds_python_objects_is_unsafe(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("model: !!python/object/apply:os.system ['id']\n")
    (tmp_path / "params.yaml").write_text("lr: 0.1\n")

    assert _severities(tmp_path) == [("config.yaml", Severity.UNSAFE)]


def test_text_json_and_empty_files_are_clean(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text('{"accuracy": 0.9}')
    (tmp_path / "MODEL_CARD.md").write_text("# card\n\ncontent\n")
    (tmp_path / "labels.csv").write_text("id,label\n1,cat\n")
    (tmp_path / "empty").write_bytes(b"")

    report = scan_path(tmp_path)

    assert report.clean and report.findings == ()
    assert {f.path: f.format for f in report.files} == {
        "MODEL_CARD.md": "text",
        "empty": "empty",
        "labels.csv": "text",
        "metrics.json": "json",
    }
