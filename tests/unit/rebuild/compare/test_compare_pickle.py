"""Pickled and joblib models compared value by value, and hostile pickles never executed."""

import pickle
import struct
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from bitwright.rebuild import Tolerance, Verdict, compare_files
from bitwright.rebuild.compare import _pickle_data
from bitwright.rebuild.compare._pickle_data import PickleRefused, read_pickle_data
from bitwright.rebuild.compare._pickle_values import flatten

EXACT = Tolerance()
RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


def _forest(seed: int, trees: int = 5) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=trees, max_depth=3, random_state=seed).fit(X, Y)


def _dump(path: Path, model: object, *, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    path.write_bytes(pickle.dumps(model, protocol=protocol))
    return path


def test_forests_trained_differently_are_compared_tree_by_tree(tmp_path: Path) -> None:
    a = _dump(tmp_path / "a.pkl", _forest(1))
    b = _dump(tmp_path / "b.pkl", _forest(2))
    result = compare_files(a, b, path="models/model.pkl", tolerance=EXACT)
    assert (result.kind, result.verdict) == ("pickle", Verdict.DIFFERENT)
    names = {t.name for t in result.tensors}
    assert "estimators_.0.tree_.nodes.threshold" in names
    threshold = next(t for t in result.tensors if t.name == "estimators_.0.tree_.nodes.threshold")
    assert threshold.differing > 0 and threshold.max_abs > 0 and threshold.dtype == "f8"
    assert result.summary is not None and result.summary.numeric_differing > 0
    assert result.detail.startswith(f"{len(result.tensors)} of ")
    assert "arrays differ" in result.detail and "max |Δ|" in result.detail


def test_a_changed_hyperparameter_is_named_as_a_value(tmp_path: Path) -> None:
    a = _dump(tmp_path / "a.pkl", LogisticRegression(C=1.0).fit(X, Y))
    b = _dump(tmp_path / "b.pkl", LogisticRegression(C=1.0 + 1e-9).fit(X, Y))
    result = compare_files(a, b, path="m.pkl", tolerance=Tolerance(atol=1e-6))
    assert [f.path for f in result.fields] == ["C"]
    assert result.fields[0].original == 1.0 and result.fields[0].within_tolerance
    assert result.verdict is Verdict.REPRODUCED_WITHIN_TOLERANCE


def test_the_same_model_in_other_pickle_bytes_has_identical_values(tmp_path: Path) -> None:
    model = Pipeline([("scale", StandardScaler()), ("fit", LogisticRegression())]).fit(X, Y)
    a = _dump(tmp_path / "a.pkl", model, protocol=2)
    b = _dump(tmp_path / "b.pkl", model, protocol=5)
    result = compare_files(a, b, path="m.pkl", tolerance=EXACT)
    assert (result.kind, result.verdict) == ("pickle", Verdict.DIFFERENT)
    assert result.detail == "values identical; the pickle's bytes differ"


@pytest.mark.parametrize("compress", [False, 3, ("gzip", 3)])
def test_joblib_files_are_read_like_pickles(tmp_path: Path, compress: object) -> None:
    model = _forest(3)
    joblib.dump(model, tmp_path / "m.joblib", compress=compress)
    from_joblib = dict(flatten(read_pickle_data(tmp_path / "m.joblib")))
    from_pickle = dict(flatten(read_pickle_data(_dump(tmp_path / "m.pkl", model))))
    assert from_joblib.keys() == from_pickle.keys()
    for name, value in from_pickle.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, from_joblib[name]), name
        else:
            assert value == from_joblib[name], name
    other = tmp_path / "other.joblib"
    joblib.dump(_forest(4), other, compress=compress)
    result = compare_files(tmp_path / "m.joblib", other, path="m.joblib", tolerance=EXACT)
    assert result.kind == "pickle" and result.tensors


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_a_command_is_compared_as_bytes_and_never_run(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pwned"
    a = _dump(tmp_path / "a.pkl", {"model": _Payload(marker)})
    b = _dump(tmp_path / "b.pkl", {"model": _Payload(tmp_path / "other")})
    result = compare_files(a, b, path="m.pkl", tolerance=EXACT)
    assert result.kind == "bytes" and result.verdict is Verdict.DIFFERENT
    assert "posix.system, which is not on the allowlist" in result.detail
    assert "never executed" in result.detail
    assert not marker.exists() and not (tmp_path / "other").exists()


def _raw(path: Path, body: bytes) -> Path:
    path.write_bytes(b"\x80\x04" + body + b".")
    return path


def _unicode(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        # STACK_GLOBAL of builtins.eval, its name taken from the memo
        (_unicode("builtins") + b"\x94" + _unicode("eval") + b"\x94" + b"h\x00h\x01\x93",
         "builtins.eval, which is not on the allowlist"),
        # protocol-0 style INST of os.system
        (b"(V1\ninos\nsystem\n", "os.system, which is not on the allowlist"),
        # a persistent id
        (_unicode("x") + b"Q", "BINPERSID is not modelled"),
        # the extension registry
        (b"\x82\x01", "EXT1 is not modelled"),
        # 2**60 bytes declared, a few present
        (b"\x8e" + struct.pack("<Q", 1 << 60) + b"abc", "bytes where"),
        # a mark where a value belongs
        (b"(\x85", "inconsistent pickle stream"),
        # REDUCE of a plain value
        (b"K\x01)R", "REDUCE of something that is not an allowed global"),
    ],
)  # fmt: skip
def test_hostile_pickles_are_refused(tmp_path: Path, body: bytes, reason: str) -> None:
    with pytest.raises(PickleRefused, match=reason):
        read_pickle_data(_raw(tmp_path / "evil.pkl", body))


def test_data_nested_too_deeply_is_refused_not_a_crash(tmp_path: Path) -> None:
    body = b"]" * 5000 + b"a" * 4999  # EMPTY_LIST 5000 times, each appended to the one below
    value = read_pickle_data(_raw(tmp_path / "deep.pkl", body))
    with pytest.raises(PickleRefused, match="nested more than 100 deep"):
        dict(flatten(value))


def test_operations_and_inflated_size_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_pickle_data, "MAX_OPERATIONS", 100)
    with pytest.raises(PickleRefused, match="more than 100 operations"):
        read_pickle_data(_raw(tmp_path / "long.pkl", b"N0" * 200))
    monkeypatch.setattr(_pickle_data, "_MAX_INFLATED", 1000)
    joblib.dump(np.zeros(10_000), tmp_path / "bomb.joblib", compress=9)
    with pytest.raises(PickleRefused, match="decompresses to more than 1000 bytes"):
        read_pickle_data(tmp_path / "bomb.joblib")


def test_an_array_whose_data_does_not_fit_its_shape_is_refused(tmp_path: Path) -> None:
    data = np.arange(4, dtype="<i8").tobytes()
    good = pickle.dumps(np.arange(4, dtype="<i8"), protocol=4)
    short = b"C\x18" + data[:24]  # SHORT_BINBYTES of 24 bytes instead of 32
    evil = good.replace(b"C\x20" + data, short)
    assert evil != good
    path = tmp_path / "a.pkl"
    path.write_bytes(evil)
    with pytest.raises(PickleRefused, match="an array of 4 elements with 24 bytes of data"):
        read_pickle_data(path)
