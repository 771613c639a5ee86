"""Layout derivation, and what in-toto's own rule engine does with the rules we derive."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from attest_factories import sha
from in_toto.exceptions import RuleVerificationError
from in_toto.models.layout import Layout as InTotoLayout
from in_toto.models.link import Link as InTotoLink
from in_toto.verifylib import verify_all_item_rules

from bitwright.attest import Layout, build_layout, canonical_json, read_layout, write_layout
from bitwright.attest.keys import Signer
from bitwright.errors import UsageError, VerificationFailed
from bitwright.model import Pipeline, StageSpec

LATER = datetime.now(UTC) + timedelta(days=30)

PIPELINE = Pipeline(
    stages=(
        StageSpec(
            name="prepare",
            cmd="bitwright stage run prepare -- python pipelines/prepare.py --split 'a b'",
            deps=("pipelines/prepare.py", "data/raw"),
            outs=("data/prepared",),
            params=(("params.yaml", "prepare.split"),),
        ),
        StageSpec(
            name="train",
            cmd="bitwright stage run train -- python pipelines/train.py",
            deps=("pipelines/train.py", "data/prepared"),
            outs=("models/model.pt",),
            params=(("params.yaml", "train.lr"),),
        ),
        StageSpec(
            name="evaluate",
            cmd="python pipelines/evaluate.py",
            deps=("pipelines/evaluate.py", "models/model.pt", "data/prepared/test.csv"),
            outs=("results/metrics.json",),
        ),
        StageSpec(
            name="report",
            cmd="python pipelines/report.py",
            deps=("results", "data/[raw]"),
            outs=("report.md",),
        ),
    )
)


def _layout(owner: Signer, pipeline: Pipeline = PIPELINE) -> Layout:
    return build_layout(pipeline, [owner.public_key], expires=LATER, readme="test chain")


def test_one_step_per_stage_with_the_functionary_key(owner: Signer) -> None:
    layout = _layout(owner).to_json()

    assert layout["_type"] == "layout"
    assert [s["name"] for s in layout["steps"]] == ["prepare", "train", "evaluate", "report"]
    assert list(layout["keys"]) == [owner.public_key.keyid]
    assert all(s["pubkeys"] == [owner.public_key.keyid] for s in layout["steps"])
    assert all(s["threshold"] == 1 for s in layout["steps"])
    assert layout["inspect"] == []
    assert layout["steps"][0]["expected_command"] == [
        "python",
        "pipelines/prepare.py",
        "--split",
        "a b",
    ]
    # in-toto's own model accepts the payload (keys, rules, expiry format).
    assert InTotoLayout.read(json.loads(canonical_json(layout))).get_step_name_list()[1] == "train"


def test_rules_match_upstream_products_and_allow_sources(owner: Signer) -> None:
    train = _layout(owner).steps[1]

    assert train.expected_materials == [
        ["MATCH", "data/prepared", "WITH", "PRODUCTS", "FROM", "prepare"],
        ["MATCH", "data/prepared/*", "WITH", "PRODUCTS", "FROM", "prepare"],
        ["DISALLOW", "data/prepared"],
        ["DISALLOW", "data/prepared/*"],
        ["ALLOW", "pipelines/train.py"],
        ["ALLOW", "pipelines/train.py/*"],
        ["ALLOW", "params.yaml"],
        ["ALLOW", "params.yaml/*"],
        ["DISALLOW", "*"],
    ]
    assert train.expected_products == [
        ["CREATE", "models/model.pt"],
        ["CREATE", "models/model.pt/*"],
        ["DISALLOW", "*"],
    ]


def test_expiry_is_utc_zulu_and_must_be_aware_and_in_the_future(owner: Signer) -> None:
    expires = datetime(2999, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert build_layout(PIPELINE, [owner.public_key], expires=expires).expires == (
        "2999-01-02T03:04:05Z"
    )
    with pytest.raises(UsageError, match="no time zone"):
        build_layout(PIPELINE, [owner.public_key], expires=datetime(2999, 1, 1))  # noqa: DTZ001
    with pytest.raises(UsageError, match="in the past"):
        build_layout(PIPELINE, [owner.public_key], expires=datetime(2000, 1, 1, tzinfo=UTC))
    with pytest.raises(UsageError, match="functionary key"):
        build_layout(PIPELINE, [], expires=LATER)


def test_unsplittable_cmd_is_a_usage_error(owner: Signer) -> None:
    broken = Pipeline(stages=(StageSpec(name="s", cmd="python 'unclosed", deps=(), outs=()),))
    with pytest.raises(UsageError, match="stage 's': cannot split its cmd"):
        _layout(owner, broken)


def test_signed_layout_reads_back_only_with_the_owner_key(
    tmp_path: Path, owner: Signer, stranger: Signer
) -> None:
    layout = _layout(owner)
    path = write_layout(layout, owner, tmp_path / "root.layout")

    assert read_layout(path, [owner.public_key]) == layout
    with pytest.raises(VerificationFailed, match="signature check failed"):
        read_layout(path, [stranger.public_key])


# What in-toto's rule engine (the code in-toto-verify runs) makes of these rules.

FILES = {
    "pipelines/prepare.py": sha("prep"),
    "pipelines/train.py": sha("train"),
    "pipelines/evaluate.py": sha("eval"),
    "pipelines/report.py": sha("report"),
    "params.yaml": sha("params"),
    "data/raw/a.csv": sha("a"),
    "data/prepared/train.csv": sha("train rows"),
    "data/prepared/test.csv": sha("test rows"),
    "models/model.pt": sha("weights"),
    "results/metrics.json": sha("metrics"),
    "results/notes.md": sha("notes"),
    "data/[raw]/odd.txt": sha("odd"),
    "report.md": sha("report"),
}

CHAIN = {
    "prepare": (
        ["pipelines/prepare.py", "data/raw/a.csv", "params.yaml"],
        ["data/prepared/train.csv", "data/prepared/test.csv"],
    ),
    "train": (
        ["pipelines/train.py", "data/prepared/train.csv", "data/prepared/test.csv", "params.yaml"],
        ["models/model.pt"],
    ),
    "evaluate": (
        ["pipelines/evaluate.py", "models/model.pt", "data/prepared/test.csv"],
        ["results/metrics.json"],
    ),
    "report": (["results/metrics.json", "results/notes.md", "data/[raw]/odd.txt"], ["report.md"]),
}


def _check(
    owner: Signer,
    *,
    materials: dict[str, dict[str, dict[str, str]]] | None = None,
    products: dict[str, dict[str, dict[str, str]]] | None = None,
) -> None:
    """Run in-toto's verify_all_item_rules over the chain, with some artifacts replaced."""
    layout = InTotoLayout.read(json.loads(canonical_json(_layout(owner).to_json())))
    links = {}
    for name, (mats, prods) in CHAIN.items():
        m = {p: {"sha256": FILES[p]} for p in mats} | (materials or {}).get(name, {})
        p = {q: {"sha256": FILES[q]} for q in prods} | (products or {}).get(name, {})
        links[name] = InTotoLink(name=name, materials=m, products=p)
    verify_all_item_rules(layout.steps, links)


def _digest(text: str) -> dict[str, str]:
    return {"sha256": sha(text)}


def test_in_toto_accepts_the_honest_chain(owner: Signer) -> None:
    _check(owner)


@pytest.mark.parametrize(
    ("stage", "path"),
    [
        ("train", "data/prepared/train.csv"),  # a file inside an upstream output directory
        ("evaluate", "models/model.pt"),  # an upstream output file
        ("report", "results/metrics.json"),  # upstream file inside a dep directory also ALLOWed
    ],
)
def test_in_toto_rejects_a_material_that_differs_from_upstream(
    owner: Signer, stage: str, path: str
) -> None:
    with pytest.raises(RuleVerificationError, match="DISALLOW"):
        _check(owner, materials={stage: {path: _digest("swapped")}})


def test_in_toto_rejects_undeclared_materials_and_products(owner: Signer) -> None:
    with pytest.raises(RuleVerificationError, match="src/secret.py"):
        _check(owner, materials={"train": {"src/secret.py": _digest("x")}})
    with pytest.raises(RuleVerificationError, match="models/extra.bin"):
        _check(owner, products={"train": {"models/extra.bin": _digest("x")}})


def test_glob_characters_in_paths_are_literal(owner: Signer) -> None:
    # "data/[raw]" must not act as the character class [raw] and allow "data/r/...".
    with pytest.raises(RuleVerificationError, match="data/r/odd.txt"):
        _check(owner, materials={"report": {"data/r/odd.txt": _digest("odd")}})
