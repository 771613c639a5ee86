from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from attest_factories import make_dirty_gpu_pins, make_pins, sha
from google.protobuf import json_format  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from in_toto_attestation.predicates.provenance.v1 import (  # type: ignore[import-untyped]
    provenance_pb2,
)
from in_toto_attestation.v1 import statement_pb2  # type: ignore[import-untyped]
from in_toto_attestation.v1.statement import (  # type: ignore[import-untyped]
    Statement as ReferenceStatement,
)

from bitwright.attest import canonical_json, sign_envelope
from bitwright.attest.keys import Signer
from bitwright.attest.provenance import (
    SANDBOX_KEY,
    ThirdParty,
    build_provenance,
    external_parameters,
    internal_parameters,
    parse_statement,
    provenance_envelope,
    read_provenance,
    write_provenance,
)
from bitwright.attest.statement import SandboxSummary, Statement, statement_bytes
from bitwright.errors import OperationalError, UsageError, VerificationFailed
from bitwright.model import BuildPins, SandboxKind, SandboxReport, Sha256, SourceSignature
from bitwright.pins import BUILD_TYPE, builder_id

GOLDEN = Path(__file__).parent / "golden"
SEALED = SandboxReport(SandboxKind.BUBBLEWRAP, True, True, True, True)
CONFIRMED: dict[str, Any] = {"seed": 0, "threads": 1, "torch_deterministic": True}


def _inputs(pins: BuildPins | None = None, **overrides: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "subjects": {
            "artifacts/model.safetensors": sha("weights"),
            "artifacts/metrics.json": sha("metrics"),
        },
        "pins": pins or make_pins(),
        "source_uri": "https://example.org/ml/model.git",
        "targets": ["dvc.yaml"],
        "params": {"params.yaml": sha("params")},
        "builder_id": builder_id("sandboxed-host"),
        "invocation_id": "5f0c6d2e-8a41-4c1b-9d7e-2b9a3c4d5e6f",
        "started_on": "2024-01-01T00:00:00Z",
        "finished_on": "2024-01-01T00:05:00Z",
        "links": {
            "prepare": ("prepare.1a2b3c4d.link", sha("prepare link")),
            "train": ("train.1a2b3c4d.link", sha("train link")),
        },
        "confirmed": {
            "prepare": {SANDBOX_KEY: SEALED},
            "train": {**CONFIRMED, SANDBOX_KEY: SEALED},
        },
        "layout_sha256": sha("layout"),
        "builder_version": {"bitwright": "0.1.0"},
    }
    inputs.update(overrides)
    return inputs


def _statement(pins: BuildPins | None = None, **overrides: Any) -> Statement:
    return build_provenance(**_inputs(pins, **overrides))


def _tampered(change: Callable[[dict[str, Any]], None]) -> bytes:
    data = _statement().to_json()
    change(data)
    return canonical_json(data)


def _check_golden(statement: Statement, name: str) -> None:
    """Compare with the golden file: its bytes are signed and their digest is published.

    Regenerate after an intended format change with
    ``BITWRIGHT_UPDATE_GOLDEN=1 pytest tests/unit/attest`` and review the diff.
    """
    golden = GOLDEN / name
    if os.environ.get("BITWRIGHT_UPDATE_GOLDEN") == "1":
        golden.write_bytes(statement_bytes(statement))
    assert statement_bytes(statement) == golden.read_bytes()


def test_provenance_bytes_are_stable() -> None:
    _check_golden(_statement(), "provenance.json")


def test_dirty_gpu_build_bytes_are_stable() -> None:
    third = ThirdParty("https://example.org/resnet18.pt", sha("resnet"), "model", "models/base.pt")
    _check_golden(
        _statement(make_dirty_gpu_pins(), third_party=[third]), "provenance_dirty_gpu.json"
    )


def test_statement_carries_what_a_verifier_needs() -> None:
    data = _statement().to_json()
    definition = data["predicate"]["buildDefinition"]
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}

    assert data["_type"] == "https://in-toto.io/Statement/v1"
    assert data["predicateType"] == "https://slsa.dev/provenance/v1"
    assert data["subject"][0] == {
        "name": "artifacts/metrics.json",
        "digest": {"sha256": sha("metrics")},
    }
    assert definition["buildType"] == BUILD_TYPE
    assert definition["externalParameters"] == {
        "repository": "https://example.org/ml/model.git",
        "commit": make_pins().git.commit,
        "targets": ["dvc.yaml"],
        "params": {"path": "params.yaml", "sha256": sha("params")},
        "builder": "https://bitwright.dev/builders/sandboxed-host/v1",
    }
    assert deps["source"]["uri"] == (
        "git+https://example.org/ml/model.git@0123456789abcdef0123456789abcdef01234567"
    )
    assert deps["data/raw"]["annotations"]["dvcMd5"] == "a1b2c3d4e5f60718293a4b5c6d7e8f90.dir"
    assert deps["data/raw"]["uri"] == "s3://bucket/dvc"
    assert deps["build-image"]["digest"] == {"sha256": sha("image")}
    assert deps["python-packages"]["annotations"]["packages"] == [
        "numpy==2.4.6",
        "torch==2.13.0",
    ]
    internal = definition["internalParameters"]
    assert internal["determinism"]["confirmed"] == {"train": CONFIRMED}  # prepare: no receipt
    assert internal["sandbox"]["kind"] == "bubblewrap"
    assert internal["dirty"] is False
    assert [b["name"] for b in data["predicate"]["runDetails"]["byproducts"]] == [
        "links/prepare.1a2b3c4d.link",
        "links/train.1a2b3c4d.link",
        "root.layout",
    ]


@pytest.mark.parametrize("golden", ["provenance.json", "provenance_dirty_gpu.json"])
def test_reference_in_toto_protos_accept_the_field_names(golden: str) -> None:
    """in-toto-attestation's own protos (unknown fields refused) read what we write.

    Only reading: writing through them would turn integers into floats (DESIGN pitfall).
    """
    text = (GOLDEN / golden).read_text(encoding="utf-8")
    statement = json_format.Parse(text, statement_pb2.Statement())
    ReferenceStatement.copy_from_pb(statement).validate()
    predicate = json.dumps(json.loads(text)["predicate"])
    provenance = json_format.Parse(predicate, provenance_pb2.Provenance())
    assert provenance.build_definition.build_type == BUILD_TYPE
    assert provenance.run_details.metadata.started_on.seconds == 1_704_067_200


def test_roundtrip_parses_back_to_the_same_statement_and_bytes() -> None:
    statement = _statement(make_dirty_gpu_pins())
    parsed = parse_statement(statement_bytes(statement))

    assert parsed == statement
    assert statement_bytes(parsed) == statement_bytes(statement)
    assert external_parameters(parsed).commit == make_pins().git.commit
    assert internal_parameters(parsed).dirty_paths == ["pipelines/train.py"]


def test_integers_stay_integers() -> None:
    payload = statement_bytes(_statement(make_dirty_gpu_pins()))
    parsed = parse_statement(payload)

    assert b'"nfiles":3,"size":123456}' in payload
    assert b'"memoryBytes":85520809984,' in payload
    data_dep = parsed.dependency("data/raw")
    assert data_dep is not None and data_dep.annotations is not None
    assert type(data_dep.annotations["nfiles"]) is int
    gpu = internal_parameters(parsed).environment.gpus[0]
    assert type(gpu.memory_bytes) is int
    assert type(internal_parameters(parsed).determinism.declared["seed"]) is int


def test_dirty_build_is_marked_not_rebuildable() -> None:
    internal = internal_parameters(_statement(make_dirty_gpu_pins()))
    assert internal.dirty is True
    assert internal.dirty_paths == ["pipelines/train.py"]
    assert internal_parameters(_statement()).dirty_paths is None


def test_sandbox_records_the_weakest_seal_of_any_stage() -> None:
    weak = SandboxReport(SandboxKind.UNSHARE, True, False, False, True)
    mixed = internal_parameters(
        _statement(confirmed={"prepare": {SANDBOX_KEY: weak}, "train": {SANDBOX_KEY: SEALED}})
    ).sandbox
    assert mixed.kind == "unshare"
    assert mixed.enforced.network_cut and mixed.enforced.env_cleared
    assert not mixed.enforced.repo_read_only

    unreported = internal_parameters(_statement(confirmed={"train": {SANDBOX_KEY: SEALED}}))
    assert unreported.sandbox.kind == "none"  # prepare has a link but no report: claims nothing
    assert not unreported.sandbox.enforced.network_cut


def test_sandbox_kinds_of_the_wire_model_are_the_runners_kinds() -> None:
    literal = SandboxSummary.model_fields["kind"].annotation
    assert set(literal.__args__) == {k.value for k in SandboxKind}  # type: ignore[union-attr]


def test_locations_become_uris_without_credentials() -> None:
    deps = {
        d.name: d.uri
        for d in _statement(
            make_dirty_gpu_pins(), source_uri="https://user:s3cret@example.org/ml/model.git"
        ).predicate.build_definition.resolved_dependencies
        or []
    }
    assert deps["source"] == f"git+https://example.org/ml/model.git@{make_pins().git.commit}"
    assert deps["data/raw"] == "file:///srv/dvc-store"
    assert deps["data/labels.csv"] is None  # no DVC remote
    scp = _statement(source_uri="git@github.com:org/model.git").dependency("source")
    assert scp is not None and scp.uri is not None
    assert scp.uri.startswith("git+ssh://git@github.com/org/model.git@")
    local = _statement(source_uri="/home/me/model").dependency("source")
    assert local is not None and local.uri == f"git+file:///home/me/model@{make_pins().git.commit}"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"subjects": {}}, "at least one subject"),
        ({"params": {}}, "exactly one params file"),
        ({"confirmed": {"ghost": {"seed": 0}}}, "'ghost' has confirmed settings but no link"),
        (
            {"links": {"train": ("other.1a2b3c4d.link", sha("x"))}, "confirmed": {}},
            "is not STAGE.KEYID8.link",
        ),
    ],
)
def test_inconsistent_inputs_are_usage_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _statement(**overrides)


def test_a_malformed_pin_cannot_be_signed() -> None:
    with pytest.raises(OperationalError, match=r"subject\.0\.digest.*lowercase hex"):
        _statement(subjects={"model.pt": Sha256("ABCDEF" * 10 + "ABCD")})
    with pytest.raises(UsageError, match="canonical JSON"):
        _statement(confirmed={"train": {"seed": 2**64}})


def test_third_party_pins_are_checked() -> None:
    with pytest.raises(UsageError, match="kind must be"):
        ThirdParty("https://example.org/x", sha("x"), "weights", "models/x")
    with pytest.raises(UsageError, match="not a sha256"):
        ThirdParty("https://example.org/x", Sha256("abc"), "model", "models/x")


def test_unknown_fields_are_refused() -> None:
    def top(d: dict[str, Any]) -> None:
        d["comment"] = "hi"

    def nested(d: dict[str, Any]) -> None:
        d["predicate"]["buildDefinition"]["resolvedDependencies"][0]["signedBy"] = "me"

    def external(d: dict[str, Any]) -> None:
        d["predicate"]["buildDefinition"]["externalParameters"]["extraArgs"] = ["--force"]

    for change, where in [(top, "comment"), (nested, "signedBy"), (external, "extraArgs")]:
        with pytest.raises(VerificationFailed, match=f"malformed statement: .*{where}"):
            parse_statement(_tampered(change))


def test_unknown_predicate_type_is_refused() -> None:
    def vsa(d: dict[str, Any]) -> None:
        d["predicateType"] = "https://slsa.dev/verification_summary/v1"

    with pytest.raises(VerificationFailed) as err:
        parse_statement(_tampered(vsa), source="provenance.intoto.json")
    assert err.value.message == (
        "provenance.intoto.json: unknown predicate type 'https://slsa.dev/verification_summary/v1'"
    )


def test_wrong_statement_type_and_build_type_are_refused() -> None:
    def legacy(d: dict[str, Any]) -> None:
        d["_type"] = "https://in-toto.io/Statement/v0.1"

    def other_build(d: dict[str, Any]) -> None:
        d["predicate"]["buildDefinition"]["buildType"] = "https://example.org/make/v1"

    with pytest.raises(VerificationFailed, match="malformed statement: _type is"):
        parse_statement(_tampered(legacy))
    with pytest.raises(VerificationFailed, match="unknown build type 'https://example.org/make"):
        parse_statement(_tampered(other_build))


@pytest.mark.parametrize(
    "digest",
    [sha("x").upper(), sha("x")[:63], sha("x") + "00", "z" * 64, ""],
    ids=["uppercase", "short", "long", "not-hex", "empty"],
)
def test_bad_digests_are_refused(digest: str) -> None:
    def bad(d: dict[str, Any]) -> None:
        d["subject"][0]["digest"]["sha256"] = digest

    with pytest.raises(VerificationFailed, match=r"malformed statement: subject\.0\.digest"):
        parse_statement(_tampered(bad))


def test_parts_that_contradict_each_other_are_refused() -> None:
    def other_commit(d: dict[str, Any]) -> None:
        d["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"] = (
            "f" * 40
        )

    def smuggled_package(d: dict[str, Any]) -> None:
        deps = d["predicate"]["buildDefinition"]["resolvedDependencies"]
        lock = next(x for x in deps if x["name"] == "python-packages")
        lock["annotations"]["packages"].append("evil==6.6.6")

    def other_builder(d: dict[str, Any]) -> None:
        d["predicate"]["runDetails"]["builder"]["id"] = builder_id("ci")

    for change, problem in [
        (other_commit, "gitCommit differs"),
        (smuggled_package, "not that of its package lines"),
        (other_builder, "builder.id differs"),
    ]:
        with pytest.raises(VerificationFailed, match=problem):
            parse_statement(_tampered(change))


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b'{"_type": 1, "_type": 2}', "duplicate key '_type'"),
        (b'{"seed": NaN}', "NaN is not JSON"),
        (b"[1]", "a JSON list, not an object"),
        (b"\xff\xfe{", "not JSON"),
    ],
)
def test_payloads_that_are_not_one_clean_object_are_refused(payload: bytes, problem: str) -> None:
    with pytest.raises(VerificationFailed, match=f"malformed statement: .*{problem}") as err:
        parse_statement(payload)
    assert "\n" not in err.value.message


def test_signed_envelope_verifies_with_the_key_and_fails_with_another(
    tmp_path: Path, owner: Signer, stranger: Signer
) -> None:
    statement = _statement()
    envelope = provenance_envelope(statement, lambda p, t: sign_envelope(p, t, owner))
    path = write_provenance(envelope, tmp_path / "attestations" / "provenance.intoto.json")

    assert path.read_bytes() == canonical_json(envelope)
    assert base64.b64decode(envelope["payload"]) == statement_bytes(statement)
    assert read_provenance(path, keys=[owner.public_key]) == statement
    with pytest.raises(VerificationFailed, match="signature check failed"):
        read_provenance(path, keys=[stranger.public_key])


def test_a_signer_that_signs_other_bytes_is_caught(owner: Signer) -> None:
    def sloppy(payload: bytes, payload_type: str) -> dict[str, Any]:
        return sign_envelope(
            json.dumps(json.loads(payload), indent=1).encode(), payload_type, owner
        )

    with pytest.raises(OperationalError, match="signer returned an envelope of other bytes"):
        provenance_envelope(_statement(), sloppy)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
_VALID = _statement().to_json()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


_PATHS = _paths(_VALID)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(_PATHS), value=_JSON)
def test_any_changed_value_is_parsed_or_refused_with_one_line(
    where: tuple[Any, ...], value: Any
) -> None:
    """Whatever one value of a valid statement becomes, parsing answers cleanly."""
    data = json.loads(json.dumps(_VALID))
    parent = data
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    try:
        parsed = parse_statement(canonical_json(data))
    except VerificationFailed as err:
        assert "\n" not in err.message
    else:
        assert parsed.to_json() == data  # accepted only if nothing was lost or added


def test_a_signed_source_commit_is_recorded_and_read_back() -> None:
    pins = make_pins()
    signature = SourceSignature("ssh", "SHA256:abc", base64.b64encode(b"tree 0\n").decode())
    signed = replace(pins, git=replace(pins.git, signature=signature))

    internal = internal_parameters(parse_statement(statement_bytes(_statement(signed))))

    assert internal.source_signature is not None
    assert (internal.source_signature.kind, internal.source_signature.signer) == (
        "ssh",
        "SHA256:abc",
    )
    assert internal_parameters(_statement(pins)).source_signature is None
