"""Metrics documents summed up in numbers, CSV/TSV tables column by column, hostile inputs."""

import json
from pathlib import Path

import pytest

from bitwright.rebuild import Tolerance, Verdict, compare_files
from bitwright.rebuild.compare.documents import MAX_VALUES, load_document

EXACT = Tolerance()


def _metrics(n: int, nudge: dict[int, float]) -> dict[str, object]:
    return {
        "model": "forest",
        "per_sample": [{"p": 0.5 + i / 1000 + nudge.get(i, 0.0)} for i in range(n)],
    }


def test_a_large_metrics_diff_is_summed_up_with_the_worst_ten(tmp_path: Path) -> None:
    nudges = {i: 1e-6 * (i + 1) for i in range(0, 3300, 100)}  # 33 fields, worst is the last
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_metrics(3300, {})))
    b.write_text(json.dumps(_metrics(3300, nudges)))
    result = compare_files(a, b, path="eval/metrics.json", tolerance=EXACT)
    assert result.summary is not None
    assert (result.summary.compared, result.summary.differing) == (3301, 33)
    assert result.summary.numeric_differing == 33
    assert result.summary.max_abs == pytest.approx(3.201e-3, rel=1e-3)
    assert len(result.fields) == 10
    assert result.fields[0].path == "per_sample.3200.p"
    assert result.detail.startswith("33 of 3301 fields differ (33 number(s): max |Δ| 0.0032")
    assert "worst: per_sample.3200.p, per_sample.3100.p, per_sample.3000.p and 7 more" in (
        result.detail
    )


def test_yaml_metrics_are_compared_like_json(tmp_path: Path) -> None:
    a, b = tmp_path / "m.yaml", tmp_path / "r.yaml"
    a.write_text("loss: 0.25\nlabels: [a, b]\nwhen: 2024-01-01\n")
    b.write_text("loss: 0.2500001\nlabels: [a, c]\nwhen: 2024-01-01\n")
    result = compare_files(a, b, path="metrics.yaml", tolerance=Tolerance(atol=1e-3))
    assert result.kind == "yaml" and result.verdict is Verdict.DIFFERENT
    assert [f.path for f in result.fields] == ["loss", "labels.1"]
    assert result.fields[0].within_tolerance and not result.fields[1].within_tolerance


def test_a_yaml_alias_bomb_is_compared_as_bytes(tmp_path: Path) -> None:
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 8):
        prev = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("\n".join(lines) + "\n")
    b.write_text("\n".join(lines) + "\nz: 1\n")
    with pytest.raises(ValueError, match=f"more than {MAX_VALUES} values"):
        load_document(a, "yaml")
    result = compare_files(a, b, path="bomb.yaml", tolerance=EXACT)
    assert result.kind == "bytes" and "not YAML (more than" in result.detail


def test_deeply_nested_documents_are_compared_as_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("[" * 5000 + "]" * 5000)
    b.write_text("[" * 5001 + "]" * 5001)
    result = compare_files(a, b, path="deep.yaml", tolerance=EXACT)
    assert result.kind == "bytes" and "not YAML" in result.detail
    c, d = tmp_path / "c.json", tmp_path / "d.json"
    c.write_text("[" * 100_000 + "]" * 100_000)
    d.write_text("[" * 100_001 + "]" * 100_001)
    result = compare_files(c, d, path="deep.json", tolerance=EXACT)
    assert result.kind == "bytes" and "nested 100000 levels deep" in result.detail


PREDICTIONS = "cultivar,predicted,p0\n0,0,0.9\n1,1,0.2\n2,2,0.1\n"


def test_predictions_differ_by_column_with_numbers_measured(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(PREDICTIONS)
    b.write_text(PREDICTIONS.replace("0.2", "0.2000001").replace("2,2,", "2,1,"))
    result = compare_files(a, b, path="eval/predictions.csv", tolerance=Tolerance(atol=1e-3))
    assert result.kind == "csv" and result.verdict is Verdict.DIFFERENT
    columns = {c.name: c for c in result.columns}
    assert set(columns) == {"predicted", "p0"}
    assert columns["p0"].kind == "number" and columns["p0"].differing == 1
    assert columns["p0"].max_abs == pytest.approx(1e-7) and columns["p0"].within_tolerance
    assert columns["predicted"].differing == 1 and not columns["predicted"].within_tolerance
    assert "2 column(s) differ: predicted, p0" in result.detail


def test_tsv_plots_within_tolerance_and_rows_added(tmp_path: Path) -> None:
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    a.write_text("step\taccuracy\n0\t0.5\n1\t0.75\n")
    b.write_text("step\taccuracy\n0\t0.5\n1\t0.7500001\n")
    within = compare_files(a, b, path="dvclive/plots/acc.tsv", tolerance=Tolerance(atol=1e-6))
    assert within.verdict is Verdict.REPRODUCED_WITHIN_TOLERANCE
    assert [c.name for c in within.columns] == ["accuracy"]
    b.write_text("step\taccuracy\n0\t0.5\n1\t0.75\n2\t0.8\n")
    longer = compare_files(a, b, path="dvclive/plots/acc.tsv", tolerance=Tolerance(atol=1e-6))
    assert longer.verdict is Verdict.DIFFERENT
    assert longer.detail.startswith("2 rows in the original, 3 in the rebuild")


def test_a_table_that_is_not_text_is_compared_as_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_bytes(b"a,b\n\xff\xfe\n")
    b.write_bytes(b"a,b\n\xff\xff\n")
    result = compare_files(a, b, path="x.csv", tolerance=EXACT)
    assert result.kind == "bytes" and "not CSV (not UTF-8 text)" in result.detail
