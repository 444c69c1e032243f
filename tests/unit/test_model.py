"""ReasoningModel: the estimator API, input checks, explanations, determinism and pickling."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from reasoning.jsonable import json_scalar
from reasoning.model import ColumnMismatchError, ReasoningModel
from reasoning.targets import teacher_logits
from tests.unit.test_families import (
    ALL_FAMILIES,
    FAST_PARAMS,
    N_TRAIN,
    approx_tolerance,
    make_task,
    mixed_frame,
    output_tolerance,
)

COLUMNS = ["age", "income", "member", "color", "signup"]


def _fit(
    family: str, task: str = "regression", n: int = 240, **params: float
) -> tuple[ReasoningModel, pd.DataFrame, np.ndarray]:
    X, y, kind = make_task(task, n=n)
    model = ReasoningModel(family, kind, {**FAST_PARAMS[family], **params}, random_state=3)
    return model.fit(X, y), X, y


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_fitting_is_deterministic(family: str) -> None:
    extra = {"subsample": 0.7, "colsample_bytree": 0.7} if family == "xgboost" else {}
    a, X, _ = _fit(family, "binary", **extra)
    b, _, _ = _fit(family, "binary", **extra)
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))
    np.testing.assert_array_equal(a.contributions(X)[1], b.contributions(X)[1])


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_pickle_round_trip(family: str) -> None:
    model, X, _ = _fit(family, "multiclass")
    back = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
    assert back.explain(X.head(5)) == model.explain(X.head(5))


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_unseen_category_and_missing_only_at_predict_time(family: str) -> None:
    X, signal = mixed_frame(240)
    complete = X.copy()
    for col in ["income", "age", "member", "signup", "color"]:  # no missing anywhere in training
        complete[col] = complete[col].fillna(complete[col].dropna().iloc[0])
    model = ReasoningModel(family, "regression", FAST_PARAMS[family]).fit(complete, signal)
    rows = pd.DataFrame(
        {
            "age": pd.array([None, 30], dtype="Int64"),
            "income": [np.nan, 55.0],
            "member": pd.array([None, True], dtype="boolean"),
            "color": pd.Series(["purple", None], dtype="str"),
            "signup": pd.to_datetime([None, "2030-01-01"]),
        }
    )
    pred = model.predict(rows)
    assert np.isfinite(pred).all()
    explained = model.explain(rows, top_k=None)
    assert len(explained) == len(pred) == 2
    for row, out in zip(explained, pred, strict=True):
        assert row["output"] == pytest.approx(out, **approx_tolerance(model.family))
        total = row["base_value"] + sum(r["contribution"] for r in row["reasons"])
        assert total == pytest.approx(row["output"], abs=1e-6)
    first = {r["column"]: r["value"] for r in explained[0]["reasons"]}
    assert first == {"age": None, "income": None, "member": None, "color": "purple", "signup": None}


def test_check_columns_names_missing_and_unexpected() -> None:
    model, X, _ = _fit("linear")
    bad = X.drop(columns=["age", "color"]).assign(zip_code=1, extra=2)
    with pytest.raises(ColumnMismatchError) as err:
        model.predict(bad)
    assert err.value.missing == ["age", "color"]
    assert err.value.unexpected == ["zip_code", "extra"]
    assert "age" in str(err.value) and "zip_code" in str(err.value)
    assert isinstance(err.value, ValueError)
    with pytest.raises(ValueError, match="unexpected columns: \\['label'\\]"):
        model.explain(X.assign(label=1.0))


def test_column_order_does_not_matter() -> None:
    model, X, _ = _fit("gam")
    shuffled = X[list(reversed(X.columns))]
    np.testing.assert_array_equal(model.predict(shuffled), model.predict(X))


def test_top_k() -> None:
    model, X, _ = _fit("xgboost")
    rows = X.head(4)
    all_reasons = model.explain(rows, top_k=None)
    assert len(all_reasons) == 4
    for full, two in zip(all_reasons, model.explain(rows, top_k=2), strict=True):
        sizes = [abs(r["contribution"]) for r in full["reasons"]]
        assert sizes == sorted(sizes, reverse=True)
        assert sorted(r["column"] for r in full["reasons"]) == sorted(COLUMNS)
        assert two["reasons"] == full["reasons"][:2]
    assert len(model.explain(rows)[0]["reasons"]) == 5
    assert model.explain(rows, top_k=0)[0]["reasons"] == []
    assert len(model.explain(rows, top_k=50)[0]["reasons"]) == 5
    with pytest.raises(ValueError, match="top_k"):
        model.explain(rows, top_k=-1)


def test_explain_values_are_json_safe() -> None:
    model, X, _ = _fit("linear", "binary")
    rows = model.explain(X, top_k=None)
    json.dumps(rows, allow_nan=False)
    by_col = {r["column"]: r["value"] for r in rows[0]["reasons"]}
    assert type(by_col["age"]) is int and type(by_col["income"]) is float
    assert type(by_col["member"]) is bool and type(by_col["color"]) is str
    assert by_col["signup"] == X["signup"].iloc[0].isoformat()
    assert rows[0]["class"] in ("no", "yes")
    missing_ages = np.flatnonzero(X["age"].isna().to_numpy())
    assert {r["column"]: r["value"] for r in rows[missing_ages[0]]["reasons"]}["age"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.int64(3), 3),
        (np.float32(1.5), 1.5),
        (np.bool_(True), True),
        (pd.NA, None),
        (pd.NaT, None),
        (np.nan, None),
        (float("inf"), None),
        (pd.Timestamp("2021-02-03 04:05"), "2021-02-03T04:05:00"),
        (np.datetime64("2021-02-03"), "2021-02-03T00:00:00"),
        ("x", "x"),
    ],
)
def test_json_scalar(value: object, expected: object) -> None:
    assert json_scalar(value) == expected


def test_output_shapes_and_labels() -> None:
    reg, X, _ = _fit("linear")
    assert reg.decision_function(X).shape == (len(X),)
    base, contrib = reg.contributions(X)
    assert base.shape == (1,) and contrib.shape == (len(X), 5, 1)
    assert reg.predict(X.iloc[:0]).shape == (0,)
    assert reg.n_features_in_ == 5 and list(reg.feature_names_in_) == COLUMNS
    assert [(f.name, f.dtype) for f in reg.features_] == [
        ("age", "integer"),
        ("income", "float"),
        ("member", "boolean"),
        ("color", "categorical"),
        ("signup", "timestamp"),
    ]
    with pytest.raises(ValueError, match="classification"):
        reg.predict_proba(X)
    clf, Xc, y = _fit("decision_tree", "multiclass")
    assert list(clf.classes_) == [1, 2, 3]
    assert clf.decision_function(Xc).shape == (len(Xc), 3)
    assert clf.contributions(Xc)[1].shape == (len(Xc), 5, 3)
    assert set(clf.predict(Xc)) <= {1, 2, 3}


def test_boolean_labels_keep_their_type() -> None:
    X, signal = mixed_frame(200)
    y = pd.Series(signal > 0, dtype="boolean")
    model = ReasoningModel("linear", "classification").fit(X, y)
    assert model.classes_.tolist() == [False, True]
    assert model.predict(X).dtype == bool
    row = model.explain(X.head(1))[0]
    assert type(row["class"]) is bool


def test_fit_errors() -> None:
    X, signal = mixed_frame(60)
    with pytest.raises(ValueError, match="valid families"):
        ReasoningModel("forest").fit(X, signal)
    with pytest.raises(ValueError, match="task_kind"):
        ReasoningModel("linear", "ranking").fit(X, signal)
    with pytest.raises(ValueError, match="missing labels"):
        ReasoningModel("linear").fit(X, np.where(signal > 0, np.nan, signal))
    with pytest.raises(ValueError, match="at least two classes"):
        ReasoningModel("linear", "classification").fit(X, np.ones(60))
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        ReasoningModel("gam", params={"depth": 3}).fit(X, signal)
    with pytest.raises(ValueError, match="not fitted"):
        ReasoningModel().predict(X)


def test_sklearn_api() -> None:
    model = ReasoningModel("gam", "regression", {"alpha": 2.0}, random_state=7)
    assert model.get_params() == {
        "family": "gam",
        "task_kind": "regression",
        "params": {"alpha": 2.0},
        "random_state": 7,
    }
    twin = clone(model)
    X, y, _ = make_task("regression", n=120)
    assert twin.fit(X, y).params_ == {"alpha": 2.0, "n_knots": 6, "n_pairs": 0}


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_global_explanation(task: str) -> None:
    model, X, _ = _fit("xgboost", task)
    g = model.global_explanation(X, max_rows=100, grid=5)
    json.dumps(g, allow_nan=False)
    assert set(g) == {"importance", "shapes"}
    assert set(g["importance"]) == set(COLUMNS) == set(g["shapes"])
    assert all(v >= 0 for v in g["importance"].values())
    assert list(g["importance"])[0] == "age"  # the strongest signal
    for shape in g["shapes"].values():
        assert len(shape["x"]) == len(shape["contribution"]) == len(shape["count"]) > 0
        assert sum(shape["count"]) <= 100
        if task == "multiclass":
            assert shape["classes"] == [1, 2, 3]
            assert [len(c) for c in shape["by_class"]] == [len(shape["x"])] * 3
    assert g["shapes"]["color"]["x"] == ["blue", "green", "red", None]
    assert sum(g["shapes"]["color"]["count"]) == 100
    assert g["shapes"]["member"]["x"] == [False, True, None]
    signups = g["shapes"]["signup"]["x"]
    assert signups and all(isinstance(v, str) for v in signups)
    ages = g["shapes"]["age"]["x"]
    assert len(ages) <= 5 and ages == sorted(ages)


def test_gam_shape_is_its_additive_term() -> None:
    model, X, _ = _fit("gam")
    # With a grid wider than the distinct values, every value is its own point.
    g = model.global_explanation(X, grid=100_000)
    shape = g["shapes"]["income"]
    probe = X.head(len(shape["x"])).copy()
    probe["income"] = shape["x"]
    _, contrib = model.contributions(probe)
    np.testing.assert_allclose(contrib[:, 1, 0], shape["contribution"], atol=1e-9)
    # Increasing in income, as the signal is.
    assert shape["contribution"][-1] > shape["contribution"][0]


def _step_frame() -> tuple[pd.DataFrame, np.ndarray]:
    n = 400
    rng = np.random.default_rng(5)
    age = np.arange(n) % 60 + 20
    color = rng.choice(["red", "green", "blue"], n)
    signup = pd.Timestamp("2020-06-01") + pd.to_timedelta(np.arange(n), unit="D")
    member = rng.random(n) < 0.5
    X = pd.DataFrame(
        {
            "age": pd.array(age, dtype="Int64"),
            "color": pd.Series(color, dtype="str"),
            "signup": signup,
            "member": member,
        }
    )
    y = 10.0 * (age > 40) + 5.0 * (color == "red")
    return X, y


def test_tree_rule_text() -> None:
    X, y = _step_frame()
    model = ReasoningModel("decision_tree", params={"max_depth": 2, "min_samples_leaf": 1})
    model.fit(X, y)
    rows = pd.DataFrame(
        {
            "age": pd.array([50, 30, None], dtype="Int64"),
            "color": ["red", "blue", "red"],
            "signup": pd.to_datetime(["2021-01-01"] * 3),
            "member": [True, False, True],
        }
    )
    rules = [r["rule"] for r in model.explain(rows)]
    assert rules[0] == "age > 40.5 and color = red"
    assert rules[1] == "age <= 40.5 and color != red"
    assert rules[2].startswith("age is missing and color")


def test_tree_rules_show_thresholds_without_float32_noise() -> None:
    """Features of tenths split between two float32s: the rule says 0.15, not 0.1500000022."""
    X = pd.DataFrame({"ratio": np.tile([0.1, 0.2], 20), "big": np.repeat([1e6, 3e6], 20)})
    y = 10.0 * (X["ratio"] > 0.15) + 1.0 * (X["big"] > 2e6)
    model = ReasoningModel("decision_tree", params={"max_depth": 2, "min_samples_leaf": 1})
    model.fit(X, y)
    rules = {r["rule"] for r in model.explain(X)}
    assert rules == {f"ratio {op} 0.15 and big {side} 2000000" for op, side in
                     [("<=", "<="), ("<=", ">"), (">", "<="), (">", ">")]}, rules


def test_tree_rule_text_for_timestamps_and_booleans() -> None:
    X, _ = _step_frame()
    y = 3.0 * (X["signup"] >= pd.Timestamp("2021-01-01")).to_numpy() + 1.0 * X["member"]
    model = ReasoningModel("decision_tree", params={"max_depth": 2, "min_samples_leaf": 1})
    model.fit(X, y)
    rule = model.explain(X.tail(1))[0]["rule"]
    assert rule.startswith("signup > 2020-12-31T12:00:00 and member = ")
    assert rule.endswith(str(bool(X["member"].iloc[-1])).lower())
    linear, X_lin, _ = _fit("linear")
    assert "rule" not in linear.explain(X_lin.head(1))[0]


def test_tree_rules_hold_for_their_rows() -> None:
    """Repeated splits on one column merge into one interval that contains the row's value."""
    X, _ = _step_frame()
    y = np.abs(X["age"].to_numpy(dtype=float) - 50.0)
    model = ReasoningModel("decision_tree", params={"max_depth": 3, "min_samples_leaf": 1})
    model.fit(X, y)
    pattern = re.compile(
        r"^(?:(?P<lo>[\d.]+) < age <= (?P<hi>[\d.]+)|age <= (?P<hi2>[\d.]+)"
        r"|age > (?P<lo2>[\d.]+))$"
    )
    for row, age in zip(model.explain(X), X["age"], strict=True):
        assert row["rule"].count("age") == 1
        m = pattern.match(row["rule"])
        assert m is not None, row["rule"]
        lo = float(m["lo"] or m["lo2"] or "-inf")
        hi = float(m["hi"] or m["hi2"] or "inf")
        assert lo < age <= hi


@pytest.mark.parametrize(("family", "task"), [("linear", "multiclass"), ("xgboost", "binary")])
def test_shape_is_the_mean_contribution_of_the_rows_at_x(family: str, task: str) -> None:
    """Recompute a shape curve through the public API: group rows by value, average."""
    model, X, _ = _fit(family, task, n=120)
    rows = X.head(40)
    g = model.global_explanation(rows, max_rows=40, grid=4)
    _, contrib = model.contributions(rows)
    pred = np.argmax(model.decision_function(rows), axis=1)
    col = COLUMNS.index("color")
    shape = g["shapes"]["color"]
    assert sum(shape["count"]) == len(rows) and len(shape["x"]) == len(shape["count"])
    for j, x in enumerate(shape["x"]):
        at_x = (rows["color"].isna() if x is None else rows["color"] == x).to_numpy(dtype=bool)
        assert shape["count"][j] == at_x.sum()
        if task == "binary":
            expected = contrib[at_x, col, 1].mean()
        else:
            expected = contrib[np.flatnonzero(at_x), col, pred[at_x]].mean()
            assert shape["by_class"][2][j] == pytest.approx(contrib[at_x, col, 2].mean())
        assert shape["contribution"][j] == pytest.approx(expected, abs=1e-9)


def test_integer_values_read_back_as_floats_stay_ints() -> None:
    model, X, _ = _fit("linear")
    as_json = X.head(3).astype({"age": "float64"})
    ages = [
        r["value"] for r in model.explain(as_json, top_k=None)[0]["reasons"] if r["column"] == "age"
    ]
    assert ages == [X["age"].iloc[0]] and type(ages[0]) is int


# ----- soft targets (distillation) -------------------------------------------------------------


def test_teacher_logits() -> None:
    p1 = np.array([0.0, 0.2, 0.5, 0.9, 1.0])
    binary = teacher_logits(np.column_stack([1 - p1, p1]))
    np.testing.assert_array_equal(binary, teacher_logits(p1))
    np.testing.assert_array_equal(binary[:, 0], -binary[:, 1])
    np.testing.assert_allclose(1 / (1 + np.exp(-binary[:, 1])), np.clip(p1, 1e-6, 1 - 1e-6))
    assert binary[2, 1] == 0.0 and np.isfinite(binary).all()
    assert teacher_logits(p1, eps=0.1)[-1, 1] == pytest.approx(np.log(9.0))
    proba = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]])
    multi = teacher_logits(proba)
    np.testing.assert_allclose(multi.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(multi[0] - multi[0, 0], np.log(proba[0] / 0.7))
    assert multi[1, 0] - multi[1, 1] == pytest.approx(np.log(1e-6 / 0.5))  # clipped, finite
    for bad in [np.ones((3, 1)), np.array([[0.5, 1.5]]), np.array([[np.nan, 1.0]])]:
        with pytest.raises(ValueError):
            teacher_logits(bad)
    with pytest.raises(ValueError, match="eps"):
        teacher_logits(proba, eps=0.0)


@pytest.fixture(scope="module")
def teachers() -> dict[str, tuple[ReasoningModel, pd.DataFrame]]:
    """An xgboost teacher per classification task, with all its rows."""
    out = {}
    for task in ("binary", "multiclass"):
        X, y, kind = make_task(task)
        out[task] = (ReasoningModel("xgboost", kind, {"n_estimators": 60}).fit(X, y), X)
    return out


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_soft_target_students(teachers, family: str, task: str) -> None:
    teacher, X = teachers[task]
    targets = teacher_logits(teacher.predict_proba(X))
    student = ReasoningModel(family, "classification", FAST_PARAMS[family], random_state=0)
    student.fit_soft(X.iloc[:N_TRAIN], targets[:N_TRAIN], teacher.classes_)
    held = X.iloc[N_TRAIN:]
    np.testing.assert_array_equal(student.classes_, teacher.classes_)
    raw = student.decision_function(held)
    proba = student.predict_proba(held)
    assert raw.shape == proba.shape == (len(held), len(teacher.classes_))
    if task == "binary":
        np.testing.assert_array_equal(raw[:, 0], -raw[:, 1])
        np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-raw[:, 1])), atol=1e-12)
    else:
        soft = np.exp(raw - raw.max(axis=1, keepdims=True))
        np.testing.assert_allclose(proba, soft / soft.sum(axis=1, keepdims=True), atol=1e-12)
    np.testing.assert_array_equal(student.predict(held), student.classes_[raw.argmax(axis=1)])
    base, contrib = student.contributions(held)
    tolerance = output_tolerance(family)
    np.testing.assert_allclose(base + contrib.sum(axis=1), raw, **tolerance)
    explained = student.explain(held.head(10), top_k=None)
    assert len(explained) == 10
    for row, out in zip(explained, raw.max(axis=1)[:10], strict=True):
        assert row["output"] == pytest.approx(out, **approx_tolerance(family))
        assert row["base_value"] + sum(r["contribution"] for r in row["reasons"]) == (
            pytest.approx(row["output"], abs=1e-6)
        )
    agreement = np.mean(student.predict(held) == teacher.predict(held))
    assert agreement > 0.75
    back = pickle.loads(pickle.dumps(student))
    np.testing.assert_array_equal(back.predict_proba(held), proba)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_linear_student_reproduces_a_linear_teacher(task: str) -> None:
    """Logits linear in the design are fitted exactly: same raw outputs, same probabilities."""
    X, y, kind = make_task(task)
    teacher = ReasoningModel("linear", kind).fit(X, y)
    student = ReasoningModel("linear", kind, {"alpha": 1e-8})
    student.fit_soft(X, teacher.decision_function(X), teacher.classes_)
    raw = teacher.decision_function(X)
    expected = raw if task == "binary" else raw - raw.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(student.decision_function(X), expected, atol=1e-5)
    np.testing.assert_allclose(student.predict_proba(X), teacher.predict_proba(X), atol=1e-6)


def test_soft_target_forms_and_class_order() -> None:
    X, y, kind = make_task("binary", n=160)
    teacher = ReasoningModel("linear", kind).fit(X, y)
    targets = teacher_logits(teacher.predict_proba(X))  # classes "no", "yes"
    a = ReasoningModel("gam", kind).fit_soft(X, targets, ["no", "yes"])
    b = ReasoningModel("gam", kind).fit_soft(X, targets[:, 1], ["no", "yes"])  # m alone
    c = ReasoningModel("gam", kind).fit_soft(X, targets[:, ::-1], ["yes", "no"])  # reordered
    d = ReasoningModel("gam", kind).fit_soft(X, -targets[:, 1], ["yes", "no"])  # m of "no"
    for other in (b, c, d):
        np.testing.assert_array_equal(other.classes_, ["no", "yes"])
        np.testing.assert_allclose(other.decision_function(X), a.decision_function(X), atol=1e-9)
    X3, y3, _ = make_task("multiclass", n=160)
    t3 = ReasoningModel("linear", kind).fit(X3, y3)
    logits = t3.decision_function(X3)
    e = ReasoningModel("linear", kind).fit_soft(X3, logits, [1, 2, 3])
    f = ReasoningModel("linear", kind).fit_soft(X3, logits[:, [2, 0, 1]] + 5.0, [3, 1, 2])
    np.testing.assert_array_equal(f.classes_, [1, 2, 3])
    np.testing.assert_allclose(f.decision_function(X3), e.decision_function(X3), atol=1e-9)


def test_soft_target_errors() -> None:
    X, y, kind = make_task("binary", n=80)
    good = teacher_logits(np.full(80, 0.3))
    with pytest.raises(ValueError, match="mirrored.*l1 - l0"):
        ReasoningModel("linear", kind).fit_soft(X, np.column_stack([good[:, 1], good[:, 1]]),
                                               ["a", "b"])
    with pytest.raises(ValueError, match="targets must have shape"):
        ReasoningModel("linear", kind).fit_soft(X, np.zeros((80, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="one row per input row"):
        ReasoningModel("linear", kind).fit_soft(X, good[:10], ["a", "b"])
    with pytest.raises(ValueError, match="finite"):
        ReasoningModel("linear", kind).fit_soft(X, np.full(80, np.inf), ["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        ReasoningModel("linear", kind).fit_soft(X, good, ["a", "a"])
    with pytest.raises(ValueError, match="classification students"):
        ReasoningModel("linear", "regression").fit_soft(X, good, ["a", "b"])


def test_distilled_student_agrees_with_its_teacher_on_breast_cancer() -> None:
    """The issue's quality bar: agreement >= 0.95 on held-out real rows."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target.map({0: "malignant", 1: "benign"}).to_numpy(dtype=object)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    train, test = order[:400], order[400:]
    teacher = ReasoningModel("random_forest", "classification", {"n_estimators": 60})
    teacher.fit(X.iloc[train], y[train])
    student = ReasoningModel("gam", "classification", {"n_knots": 5})
    student.fit_soft(X.iloc[train], teacher_logits(teacher.predict_proba(X.iloc[train])),
                     teacher.classes_)
    agreement = np.mean(student.predict(X.iloc[test]) == teacher.predict(X.iloc[test]))
    assert agreement >= 0.95
