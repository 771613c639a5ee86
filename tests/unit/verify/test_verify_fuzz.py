"""Fuzzing what verify parses: envelopes, links, layouts, provenance, AI BOM, statements, model.sig.

Each parser gets arbitrary JSON, raw bytes, and mutations of the real document of an honest
release (a value replaced by arbitrary JSON, a key deleted, the text cut). Whatever comes
in, it may only answer with bitwright's own errors: a ``VerificationFailed`` (or for a key,
``KeyProblem``); any other exception is a crash of verify. 10,000 cases in all here;
``make fuzz`` runs 100,000 (``BITWRIGHT_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from release_factory import Release, payload_of

from bitwright.attest.dsse import parse_envelope
from bitwright.attest.provenance import parse_statement
from bitwright.attest.release_statement import parse_release_statement
from bitwright.errors import BitwrightError
from bitwright.release import check_model_bundle
from bitwright.verify.binding import source_facts
from bitwright.verify.checks_chain import parse_link
from bitwright.verify.checks_layout import parse_layout
from bitwright.verify.checks_release import parse_aibom

_TESTS = 16
EXAMPLES = max(1, int(os.environ.get("BITWRIGHT_FUZZ_EXAMPLES", "10000")) // _TESTS)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
DEPTH = 64

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=10,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


def _with(doc: Any, path: tuple[Any, ...], change: Callable[[Any, Any], Any]) -> Any:
    """A copy of ``doc`` whose container at ``path[:-1]`` went through ``change``.

    Only the containers along the path are copied: mutating a large document stays cheap.
    """
    if len(path) == 1:
        copy: Any = dict(doc) if isinstance(doc, dict) else list(doc)
        return change(copy, path[0])
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = _with(doc[path[0]], path[1:], change)
    return copy


class _Document:
    """A real document and every path into it, computed once."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.text = json.dumps(doc).encode()
        self.paths = _paths(doc)[1:]

    def mutated(self, data: st.DataObject) -> bytes:
        """The document with one part replaced, deleted, repeated or cut, as hostile bytes."""
        action = data.draw(st.sampled_from(["replace", "delete", "cut", "grow"]))
        if action == "cut":
            return self.text[: data.draw(st.integers(0, len(self.text)))]
        path = data.draw(st.sampled_from(self.paths))

        def change(parent: Any, key: Any) -> Any:
            if action == "delete" and isinstance(parent, dict):
                del parent[key]
            elif action == "grow":
                parent[key] = [parent[key]] * data.draw(st.integers(0, 3))
            else:
                parent[key] = data.draw(json_values)
            return parent

        return json.dumps(_with(self.doc, path, change)).encode()


def _only_own_errors(parse: Callable[[bytes], object], data: bytes) -> None:
    # A clear answer about the input is one of bitwright's errors; anything else is a crash.
    with contextlib.suppress(BitwrightError):
        parse(data)


def _hostile(data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["json", "bytes", "deep"]))
    if kind == "json":
        return json.dumps(data.draw(json_values)).encode()
    if kind == "bytes":
        return data.draw(st.binary(max_size=300))
    depth = data.draw(st.integers(1, 3000))
    return b'{"a":' * depth + b"1" + b"}" * data.draw(st.integers(0, depth))


# --- the parsers, as verify calls them ----------------------------------------------------


def _envelope(data: bytes) -> None:
    parse_envelope(data, source="fuzzed", max_depth=DEPTH)


def _link(data: bytes) -> None:
    parse_link(data, source="fuzzed", max_depth=DEPTH)


def _layout(data: bytes) -> None:
    parse_layout(data, max_depth=DEPTH)


def _provenance(data: bytes) -> None:
    source_facts(parse_statement(data, source="fuzzed"))


def _aibom(data: bytes) -> None:
    parse_aibom(data, max_depth=DEPTH)


def _statement(data: bytes) -> None:
    parse_release_statement(data, source="fuzzed")


def _documents(release: Release) -> dict[str, _Document]:
    layout = release.layout
    (link,) = layout.links.glob("train.*.link")
    documents = {
        "envelope": json.loads(layout.provenance.read_text()),
        "link": payload_of(link),
        "layout": payload_of(layout.layout),
        "provenance": payload_of(layout.provenance),
        "aibom": json.loads(layout.aibom.read_text()),
        "statement": payload_of(layout.statement),
        "model.sig": json.loads(layout.model_signature.read_text()),
    }
    return {kind: _Document(doc) for kind, doc in documents.items()}


PARSERS: dict[str, Callable[[bytes], None]] = {
    "envelope": _envelope,
    "link": _link,
    "layout": _layout,
    "provenance": _provenance,
    "aibom": _aibom,
    "statement": _statement,
}


@pytest.fixture(scope="module")
def documents(pristine: Release) -> dict[str, _Document]:
    return _documents(pristine)


@pytest.mark.parametrize("kind", list(PARSERS))
def test_hostile_bytes_get_only_clear_answers(kind: str) -> None:
    @FUZZ
    @given(st.data())
    def run(data: st.DataObject) -> None:
        _only_own_errors(PARSERS[kind], _hostile(data))

    run()


@pytest.mark.parametrize("kind", list(PARSERS))
def test_mutated_documents_get_only_clear_answers(
    kind: str, documents: dict[str, _Document]
) -> None:
    @FUZZ
    @given(st.data())
    def run(data: st.DataObject) -> None:
        _only_own_errors(PARSERS[kind], documents[kind].mutated(data))

    run()


def test_mutated_envelope_payloads_get_only_clear_answers(
    documents: dict[str, _Document],
) -> None:
    """The payload inside a well-formed envelope: each in-toto parser behind the envelope."""

    @FUZZ
    @given(st.data())
    def run(data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(["link", "layout", "provenance", "statement"]))
        payload = documents[kind].mutated(data)
        envelope = {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"keyid": "k", "sig": "AA=="}],
        }
        try:
            parsed = parse_envelope(json.dumps(envelope).encode(), source="x", max_depth=DEPTH)
        except BitwrightError:
            return
        _only_own_errors(PARSERS[kind], base64.b64decode(parsed["payload"]))

    run()


def test_mutated_model_signatures_get_only_clear_answers(
    documents: dict[str, _Document], pristine: Release
) -> None:
    pem = pristine.keys.owner.public_path.read_bytes()
    digests = {"release/model.safetensors": "00" * 32}

    @FUZZ
    @given(st.data())
    def run(data: st.DataObject) -> None:
        bundle = documents["model.sig"].mutated(data)
        _only_own_errors(
            lambda b: check_model_bundle(b, pem, digests, source="model.sig", key_name="k"),
            bundle,
        )

    run()
