import re
from pathlib import Path

import pytest

from bitwright.errors import OperationalError
from bitwright.rebuild import first_difference


def _pair(tmp_path: Path, a: bytes, b: bytes) -> tuple[Path, Path]:
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    return tmp_path / "a", tmp_path / "b"


@pytest.mark.parametrize("chunk", [1, 3, 8, 1 << 20])
def test_offset_of_the_first_differing_byte(tmp_path: Path, chunk: int) -> None:
    data = bytes(range(256)) * 40
    changed = bytearray(data)
    changed[5000] ^= 0x01
    changed[9000] ^= 0xFF
    a, b = _pair(tmp_path, data, bytes(changed))
    assert first_difference(a, b, chunk_bytes=chunk) == 5000


def test_identical_files_have_no_difference(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, b"same bytes" * 1000, b"same bytes" * 1000)
    assert first_difference(a, b, chunk_bytes=7) is None
    e, f = _pair(tmp_path, b"", b"")
    assert first_difference(e, f) is None


def test_a_prefix_differs_at_the_shorter_size(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, b"abcdef", b"abcdefgh")
    assert first_difference(a, b, chunk_bytes=4) == 6
    assert first_difference(b, a, chunk_bytes=4) == 6
    e, f = _pair(tmp_path, b"", b"x")
    assert first_difference(e, f) == 0


def test_difference_in_the_last_byte_of_a_chunk(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, b"\0" * 64, b"\0" * 63 + b"\1")
    assert first_difference(a, b, chunk_bytes=16) == 63


def test_missing_file_is_an_operational_error_naming_it(tmp_path: Path) -> None:
    a, _ = _pair(tmp_path, b"x", b"x")
    with pytest.raises(OperationalError, match="nope"):
        first_difference(a, tmp_path / "nope")
    with pytest.raises(OperationalError, match=re.escape(str(tmp_path))):
        first_difference(a, tmp_path)  # a directory


def test_chunk_size_must_be_positive(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, b"x", b"x")
    with pytest.raises(ValueError, match="chunk_bytes"):
        first_difference(a, b, chunk_bytes=0)
