"""The provenance records what a project declared for release and every sandbox allowance."""

from __future__ import annotations

import json
from typing import Any

import pytest
from attest_factories import make_pins, sha
from test_provenance import _inputs

from bitwright.attest.provenance import (
    SANDBOX_KEY,
    build_provenance,
    external_parameters,
    internal_parameters,
    parse_statement,
)
from bitwright.attest.statement import statement_bytes
from bitwright.errors import VerificationFailed
from bitwright.model import SandboxAllowances, SandboxKind, SandboxReport
from bitwright.verify.checks_chain import SignedLink, _selected_product_problems

OPEN = SandboxReport(SandboxKind.BUBBLEWRAP, False, True, False, True)


def _statement(**overrides: Any) -> Any:
    inputs = _inputs(
        subjects={"models/model.pkl": sha("model"), "eval/metrics.json": sha("metrics")},
        links={
            "train": ("train.1a2b3c4d.link", sha("train link")),
            "evaluate": ("evaluate.1a2b3c4d.link", sha("evaluate link")),
        },
        confirmed={"train": {SANDBOX_KEY: OPEN}, "evaluate": {SANDBOX_KEY: OPEN}},
        release={"paths": ["models/model.pkl", "eval/metrics.json"], "exclude": []},
        allowances={
            "train": SandboxAllowances(env=("WANDB_MODE",), writable=(".dvc/tmp",)),
            "evaluate": SandboxAllowances(network=True),
        },
    )
    inputs.update(overrides)
    return build_provenance(**inputs)


def test_declared_release_paths_and_allowances_are_recorded_and_read_back() -> None:
    statement = parse_statement(statement_bytes(_statement()))
    release = external_parameters(statement).release
    assert release is not None and release.paths == ["models/model.pkl", "eval/metrics.json"]
    internal = internal_parameters(statement)
    assert internal.allowances is not None
    assert internal.allowances["train"].writable == [".dvc/tmp"]
    assert internal.allowances["train"].env == ["WANDB_MODE"]
    assert internal.allowances["evaluate"].network
    assert internal.hermetic is False  # a stage kept the network


def test_no_allowances_and_no_declaration_leave_the_old_shape() -> None:
    data = _statement(release=None, allowances={"train": SandboxAllowances()}).to_json()
    definition = data["predicate"]["buildDefinition"]
    assert "release" not in definition["externalParameters"]
    assert "allowances" not in definition["internalParameters"]
    assert "hermetic" not in definition["internalParameters"]


def test_an_unknown_field_in_the_recorded_allowances_is_refused() -> None:
    data = _statement().to_json()
    data["predicate"]["buildDefinition"]["internalParameters"]["allowances"]["train"]["sudo"] = 1
    with pytest.raises(VerificationFailed, match="malformed statement"):
        parse_statement(json.dumps(data).encode())


def _link(stage: str, products: dict[str, str]) -> SignedLink:
    payload = {"products": {p: {"sha256": d} for p, d in products.items()}}
    return SignedLink(f"{stage}.1a2b3c4d.link", stage, payload, make_pins())


def test_subjects_must_be_exactly_the_products_inside_the_release_paths() -> None:
    statement = _statement()
    release = external_parameters(statement).release
    assert release is not None
    honest = [
        _link("train", {"models/model.pkl": sha("model"), "dvclive/metrics.json": sha("x")}),
        _link("evaluate", {"eval/metrics.json": sha("metrics")}),
    ]
    assert _selected_product_problems(statement, honest, release) == []
    swapped = [honest[0], _link("evaluate", {"eval/metrics.json": sha("other")})]
    assert _selected_product_problems(statement, swapped, release) == [
        "subject eval/metrics.json differs from what stage evaluate produced"
    ]
    more = [*honest, _link("extra", {"models/scaler.pkl": sha("s")})]
    wider = _statement(release={"paths": ["models", "eval/metrics.json"], "exclude": []})
    wide = external_parameters(wider).release
    assert wide is not None
    assert _selected_product_problems(wider, more, wide) == [
        "stage extra produced models/scaler.pkl, inside the release paths, which is not a subject"
    ]
    narrow = _statement(release={"paths": ["eval/metrics.json"], "exclude": []})
    only = external_parameters(narrow).release
    assert only is not None
    assert _selected_product_problems(narrow, honest, only) == [
        "subject models/model.pkl is no product of a stage inside the release paths"
    ]
