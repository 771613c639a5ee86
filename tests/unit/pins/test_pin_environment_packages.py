"""installed_packages: the metadata header read directly gives what the email parser gives."""

from __future__ import annotations

import email
import importlib.metadata
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bitwright.pins import environment
from bitwright.pins.environment import installed_packages


def reference_installed_packages() -> tuple[str, ...]:
    """The previous algorithm: every distribution's metadata through the email parser."""
    seen: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            seen.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
    return tuple(sorted(f"{name}=={version}" for name, version in seen.items()))


def test_same_packages_as_the_email_parser_over_this_environment() -> None:
    assert installed_packages() == reference_installed_packages()


def test_unusual_metadata_falls_back_to_the_email_parser() -> None:
    folded = "Metadata-Version: 2.1\nName: folded\n  -name\nVersion: 1.0\n"
    assert environment._header_name_version(folded) is None
    assert environment._header_name_version("Name: crlf\r\nVersion: 1\r\n") is None


def _email_fields(text: str) -> tuple[str | None, str | None]:
    message = email.message_from_string(text)
    return message["Name"], message["Version"]


_VALUE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
_FIELD = st.sampled_from(
    ["Name", "name", "NAME", "Version", "version", "Summary", "Metadata-Version", "", "X y"]
)
_LINE = st.one_of(
    st.builds(
        lambda field, sep, value: f"{field}:{sep}{value}",
        _FIELD,
        st.sampled_from(["", " ", "\t", "  "]),
        _VALUE,
    ),
    st.builds(lambda ws, value: ws + value, st.sampled_from([" ", "\t", "        "]), _VALUE),
    st.sampled_from(["", "From someone", "not a header", "Description: text"]),
    _VALUE,
)


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(_LINE, max_size=8), body=_VALUE, ending=st.sampled_from(["", "\n", "\r\n"]))
def test_header_reading_agrees_with_the_email_parser(
    lines: list[str], body: str, ending: str
) -> None:
    text = "\n".join(lines) + ending + body
    fields = environment._header_name_version(text)
    if fields is not None:  # None: the caller asks the email parser itself
        assert fields == _email_fields(text)


def test_plain_metadata_is_read_without_the_email_parser() -> None:
    text = (
        "Metadata-Version: 2.1\nName: Some_Package\nVersion: 1.2.3 \nSummary: s\n"
        "Name: second\n\nVersion: in the body\n"
    )
    assert environment._header_name_version(text) == ("Some_Package", "1.2.3 ")
    assert environment._header_name_version(text) == _email_fields(text)
