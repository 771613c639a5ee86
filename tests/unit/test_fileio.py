"""Reading hostile files, and atomic writes that leave no trace when they fail."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitwright.errors import OperationalError, VerificationFailed
from bitwright.fileio import (
    NotRegularFile,
    json_depth,
    load_json,
    open_atomic,
    read_json_object,
    read_regular,
    write_atomic,
    write_text_atomic,
)


def test_write_atomic_replaces_the_file_with_the_given_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "key.pem"
    write_atomic(target, b"old")
    write_atomic(target, b"secret", mode=0o600)
    assert target.read_bytes() == b"secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["key.pem"]


def test_an_exception_in_the_block_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "report.md"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), open_atomic(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_an_unwritable_directory_is_one_operational_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OperationalError, match="cannot write"):
        write_atomic(blocker / "inside", b"x")


# -- reading hostile files -------------------------------------------------------------------


def test_a_fifo_is_refused_at_once_instead_of_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "x.link"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile, match="a FIFO"):
        read_regular(fifo)


def test_a_symlink_is_never_followed(tmp_path: Path) -> None:
    link = tmp_path / "zero"
    link.symlink_to("/dev/zero")
    with pytest.raises(NotRegularFile, match="symbolic link"):
        read_regular(link)


def test_a_directory_leading_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text("{}")
    release = tmp_path / "release"
    release.mkdir()
    (release / "links").symlink_to(outside)
    with pytest.raises(NotRegularFile, match="leads outside"):
        read_regular(release / "links" / "secret.json", inside=release)
    assert read_regular(outside / "secret.json", inside=outside) == b"{}"


def test_a_file_over_the_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2048)
    with pytest.raises(OperationalError, match="more than the 1024 accepted"):
        read_regular(big, limit=1024)


def test_a_missing_file_is_an_operational_error(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match="not found"):
        read_regular(tmp_path / "absent")


def test_json_nested_a_thousand_deep_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_bytes(b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}")
    with pytest.raises(VerificationFailed, match="nested 1001 levels deep"):
        read_json_object(deep, "a DSSE envelope", hint="take it again")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = b'{"a": "[[[[{{{{", "b\\\\": "]]", "c": "\\"[["}'
    assert json_depth(text) == 1
    assert load_json(text, source="t", hint="h")["a"] == "[[[[{{{{"


def test_a_json_array_where_an_object_belongs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("[1, 2]")
    with pytest.raises(VerificationFailed, match="not an object"):
        read_json_object(path, "a sigstore bundle", hint="h")


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_fail_with_one_verification_error(data: bytes) -> None:
    with contextlib.suppress(VerificationFailed):
        load_json(data, source="fuzz", hint="h", max_depth=8)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=30,
    )
)
def test_the_depth_of_any_json_value_is_measured_exactly(value: object) -> None:
    def depth(v: object) -> int:
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        return 0

    assert json_depth(json.dumps(value).encode()) == depth(value)
