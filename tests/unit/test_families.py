"""Families and encoding: every family x task explains itself exactly and predicts sensibly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from reasoning.encoding import MISSING_LEVEL, Feature, TableEncoder, infer_dtype
from reasoning.families import (
    FAMILIES,
    REASONING_FAMILIES,
    SAME_SERVER_FAMILIES,
    get_family,
    is_differentiable,
)
from reasoning.families.decision_tree import TreeCore, clipped_log_odds
from reasoning.families.mlp import MlpCore, hidden_layers
from reasoning.families.random_forest import ForestCore
from reasoning.model import ReasoningModel
from tune_configs import search_space

TASKS = ("regression", "binary", "multiclass")
N_TRAIN = 240
ALL_FAMILIES: tuple[str, ...] = REASONING_FAMILIES + SAME_SERVER_FAMILIES
FAST_PARAMS: dict[str, dict[str, float]] = {
    "linear": {},
    "gam": {},
    "decision_tree": {},
    "xgboost": {"n_estimators": 60},
    "random_forest": {"n_estimators": 30},
    "mlp": {"max_iter": 200},
}


def mixed_frame(n: int = 320, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Integer, float, boolean, string and timestamp columns with ~5% missing in each.

    Returns the frame and a noiseless signal that every column moves (missing adds nothing).
    """
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = rng.normal(50.0, 15.0, n)
    member = rng.random(n) < 0.4
    color = rng.choice(["red", "green", "blue"], n)
    days = rng.integers(0, 1000, n)
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D")
    X = pd.DataFrame(
        {
            "age": pd.array(age, dtype="Int64"),
            "income": income,
            "member": pd.array(member, dtype="boolean"),
            "color": pd.Series(color, dtype="str"),
            "signup": pd.Series(signup),
        }
    )
    holes = {c: rng.random(n) < 0.05 for c in X.columns}
    for c, mask in holes.items():
        X[c] = X[c].mask(mask)
    signal = (
        np.where(holes["age"], 0.0, 0.08 * (age - 50))
        + np.where(holes["color"], 0.0, 1.5 * (color == "red") - 1.0 * (color == "blue"))
        + np.where(holes["member"], 0.0, 1.0 * member)
        + np.where(holes["signup"], 0.0, 0.002 * (days - 500))
        + np.where(holes["income"], 0.0, 0.03 * (income - 50))
    )
    return X, signal


def output_tolerance(family: str) -> dict[str, float]:
    """How closely decision_function matches base + sum of contributions: exactly, except for
    xgboost, whose own margin is float32 (its explanations use the float64 sum)."""
    return {"rtol": 1e-6, "atol": 1e-5} if family == "xgboost" else {"rtol": 0, "atol": 1e-6}


def approx_tolerance(family: str) -> dict[str, float]:
    """output_tolerance in pytest.approx's words."""
    tolerance = output_tolerance(family)
    return {"rel": tolerance["rtol"], "abs": tolerance["atol"]}


def make_task(task: str, n: int = 320, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, str]:
    """(X, y, task_kind) for "regression", "binary" (string labels) or "multiclass" (ints)."""
    X, signal = mixed_frame(n, seed)
    noisy = signal + np.random.default_rng(seed + 1).normal(0.0, 0.3, n)
    if task == "regression":
        return X, noisy, "regression"
    if task == "binary":
        return X, np.where(noisy > 0.0, "yes", "no"), "classification"
    cuts = np.quantile(noisy, [1 / 3, 2 / 3])
    return X, np.digitize(noisy, cuts) + 1, "classification"


@pytest.fixture(scope="module")
def fitted() -> dict[tuple[str, str], tuple[ReasoningModel, pd.DataFrame, np.ndarray]]:
    """One fitted model per family x task, with its held-out rows and labels."""
    out = {}
    for task in TASKS:
        X, y, kind = make_task(task)
        for family in ALL_FAMILIES:
            model = ReasoningModel(family, kind, FAST_PARAMS[family], random_state=0)
            model.fit(X.iloc[:N_TRAIN], y[:N_TRAIN])
            out[(family, task)] = (model, X.iloc[N_TRAIN:], y[N_TRAIN:])
    return out


CASES = [(f, t) for f in ALL_FAMILIES for t in TASKS]


@pytest.mark.parametrize(("family", "task"), CASES)
def test_reasons_sum_to_output(fitted, family: str, task: str) -> None:
    model, X, _ = fitted[(family, task)]
    raw = model.decision_function(X)
    raw2 = raw[:, None] if raw.ndim == 1 else raw
    base, contrib = model.contributions(X)
    assert contrib.shape == (len(X), 5, raw2.shape[1])
    tolerance = output_tolerance(family)
    np.testing.assert_allclose(base + contrib.sum(axis=1), raw2, **tolerance)
    pred_idx = np.argmax(raw2, axis=1)
    for i, row in enumerate(model.explain(X, top_k=None)):
        assert len(row["reasons"]) == 5
        total = row["base_value"] + sum(r["contribution"] for r in row["reasons"])
        assert abs(total - row["output"]) < 1e-6
        assert row["output"] == pytest.approx(raw2[i, pred_idx[i]], **approx_tolerance(family))


@pytest.mark.parametrize(("family", "task"), CASES)
def test_predictions_beat_a_constant(fitted, family: str, task: str) -> None:
    model, X, y = fitted[(family, task)]
    pred = model.predict(X)
    if task == "regression":
        rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
        assert rmse < 0.7 * float(np.std(y))
    else:
        majority = pd.Series(y).value_counts(normalize=True).iloc[0]
        assert np.mean(pred == y) > majority + 0.15


@pytest.mark.parametrize(("family", "task"), [c for c in CASES if c[1] != "regression"])
def test_probabilities_agree_with_outputs(fitted, family: str, task: str) -> None:
    model, X, _ = fitted[(family, task)]
    proba = model.predict_proba(X)
    raw = model.decision_function(X)
    assert proba.shape == raw.shape == (len(X), len(model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(model.classes_[np.argmax(proba, axis=1)], model.predict(X))
    if task == "binary":
        np.testing.assert_allclose(raw[:, 0], -raw[:, 1], atol=0)
        if family not in ("decision_tree", "random_forest"):  # trees: leaf fractions
            np.testing.assert_allclose(proba[:, 1], expit(raw[:, 1]), atol=1e-12)


def test_linear_core_matches_sklearn(fitted) -> None:
    model, X, _ = fitted[("linear", "multiclass")]
    Z = model.encoder_.transform(X)
    np.testing.assert_allclose(
        model.decision_function(X), model.core_.estimator.decision_function(Z), atol=1e-9
    )
    reg, Xr, _ = fitted[("gam", "regression")]
    Zr = reg.encoder_.transform(Xr)
    np.testing.assert_allclose(reg.predict(Xr), reg.core_.estimator.predict(Zr), atol=1e-9)


def test_tree_outputs_are_leaf_values(fitted) -> None:
    reg, X, _ = fitted[("decision_tree", "regression")]
    Z = reg.encoder_.transform(X)
    np.testing.assert_allclose(reg.predict(X), reg.core_.estimator.predict(Z), atol=1e-12)
    clf, Xc, _ = fitted[("decision_tree", "multiclass")]
    Zc = clf.encoder_.transform(Xc)
    leaf_p = clf.core_.estimator.predict_proba(Zc)
    np.testing.assert_allclose(clf.predict_proba(Xc), leaf_p)
    q = np.clip(leaf_p, 1e-6, 1 - 1e-6)
    np.testing.assert_allclose(clf.decision_function(Xc), np.log(q / (1 - q)), atol=1e-9)


@pytest.mark.parametrize("task", TASKS)
def test_xgboost_output_is_its_margin_in_float64(fitted, task: str) -> None:
    model, X, _ = fitted[("xgboost", task)]
    Z = model.encoder_.transform(X)
    margin = model.core_.estimator.predict(Z, output_margin=True)
    raw = model.decision_function(X)
    mine = raw if task == "regression" else raw[:, 1] if task == "binary" else raw
    np.testing.assert_allclose(mine, margin, atol=1e-4)
    assert raw.dtype == np.float64


def test_registry() -> None:
    assert set(REASONING_FAMILIES) <= set(FAMILIES)
    assert [is_differentiable(f) for f in REASONING_FAMILIES] == [True, True, False, False]
    assert set(FAMILIES) == set(REASONING_FAMILIES) | {"random_forest", "mlp"}
    assert not set(SAME_SERVER_FAMILIES) & set(REASONING_FAMILIES)
    assert not is_differentiable("random_forest") and is_differentiable("mlp")
    with pytest.raises(ValueError, match="valid families.*decision_tree.*gam.*linear.*xgboost"):
        get_family("random_tree")


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_params_defaults_and_unknown_names(family: str) -> None:
    fam = get_family(family)
    assert fam.resolve_params({}) == dict(fam.defaults)
    assert fam.resolve_params(None) == dict(fam.defaults)
    with pytest.raises(ValueError, match="unknown hyperparameters.*bogus"):
        fam.resolve_params({"bogus": 1})


def test_params_are_cast_and_checked() -> None:
    xgb = get_family("xgboost")
    params = xgb.resolve_params({"n_estimators": np.int64(70), "max_depth": 3.0})
    assert params["n_estimators"] == 70 and type(params["n_estimators"]) is int
    assert type(params["max_depth"]) is int
    with pytest.raises(ValueError, match="max_depth"):
        xgb.resolve_params({"max_depth": 2.5})
    with pytest.raises(ValueError, match="alpha"):
        get_family("linear").resolve_params({"alpha": 0})
    with pytest.raises(ValueError, match="subsample"):
        xgb.resolve_params({"subsample": 1.5})


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (pd.Series([1, 2, None], dtype="Int64"), "integer"),
        (pd.Series([1, 2, 3]), "integer"),
        (pd.Series([1.5, np.nan]), "float"),
        (pd.Series([1.5, None], dtype="Float64"), "float"),
        (pd.Series([True, False]), "boolean"),
        (pd.Series([True, None], dtype="boolean"), "boolean"),
        (pd.Series(["a", None], dtype="str"), "categorical"),
        (pd.Series(["a", None], dtype=object), "categorical"),
        (pd.Series(["a", "b"], dtype="category"), "categorical"),
        (pd.Series(pd.to_datetime(["2021-01-01", None])), "timestamp"),
        (pd.Series(pd.to_datetime(["2021-01-01"]).tz_localize("Europe/Paris")), "timestamp"),
        (pd.Series(pd.to_datetime(["2021-01-01"]).astype("datetime64[s]")), "timestamp"),
        (pd.Series([True, None], dtype=object), "boolean"),
        (pd.Series([1, None, 3], dtype=object), "integer"),
    ],
)
def test_infer_dtype(values: pd.Series, expected: str) -> None:
    assert infer_dtype(values) == expected


def test_feature_rejects_unknown_dtype() -> None:
    with pytest.raises(ValueError, match="dtype"):
        Feature("x", "text")


def _edge_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "const": [3.0] * 6,
            "empty": [np.nan] * 6,
            "flag": pd.array([True, False, None, True, False, True], dtype="boolean"),
            "cat": pd.Series(["a", "b", None, "a", "c", "a"], dtype="str"),
            "when": pd.to_datetime(
                ["2021-01-01", None, "2021-03-01", "2021-04-01", "2021-05-01", "2021-06-01"]
            ),
        }
    )


@pytest.mark.parametrize("mode", ["raw", "standard", "spline"])
def test_encoder_groups_and_edge_columns(mode: str) -> None:
    X = _edge_frame()
    enc = TableEncoder(numeric=mode, n_knots=4).fit(X)
    Z = enc.transform(X)
    assert Z.dtype == np.float64 and Z.shape == (6, enc.n_design)
    assert len(enc.column_names_) == len(enc.groups_) == Z.shape[1]
    assert sorted(set(enc.groups_.tolist())) == list(range(6))
    assert [c for c in enc.column_names_ if c.startswith("cat=")] == [
        "cat=<missing>",
        "cat=a",
        "cat=b",
        "cat=c",
    ]
    if mode == "raw":
        assert np.isnan(Z[2, enc.design_indices("x")[0]])
        assert np.isnan(Z[:, enc.design_indices("empty")]).all()
    else:
        assert not np.isnan(Z).any()
        assert "x__missing" in enc.column_names_ and "const__missing" not in enc.column_names_
        indicator = Z[:, enc.column_names_.index("x__missing")]
        np.testing.assert_array_equal(indicator, X["x"].isna().to_numpy(dtype=float))
    if mode == "spline":
        assert len(enc.design_indices("x")) > 2  # spline basis + indicator
        assert len(enc.design_indices("const")) == 1  # too few levels: a straight line


@pytest.mark.parametrize("mode", ["raw", "standard", "spline"])
def test_encoder_unseen_levels_and_new_missing(mode: str) -> None:
    X = _edge_frame().drop(columns=["empty"])
    X["when"] = X["when"].fillna(pd.Timestamp("2021-02-01"))
    enc = TableEncoder(numeric=mode).fit(X)
    new = pd.DataFrame(
        {
            "x": [np.nan],
            "const": [np.nan],
            "flag": pd.array([None], dtype="boolean"),
            "cat": ["zzz"],
            "when": [None],  # missing only at predict time
        }
    )
    Z = enc.transform(new)
    assert Z.shape == (1, enc.n_design)
    assert (Z[0, enc.design_indices("cat")] == 0).all()
    if mode != "raw":
        assert np.isfinite(Z).all()


def test_encoder_reads_json_like_values() -> None:
    X = _edge_frame()
    enc = TableEncoder(numeric="raw").fit(X)
    as_json = pd.DataFrame(
        {
            "x": ["4"],
            "const": [3],
            "empty": [None],
            "flag": ["true"],
            "cat": ["b"],
            "when": ["2021-04-01T00:00:00"],
        },
        dtype=object,
    )
    np.testing.assert_allclose(
        enc.transform(as_json),
        enc.transform(X.iloc[[3]].assign(x=4.0, flag=pd.array([True], dtype="boolean"), cat="b")),
        equal_nan=True,
    )


def test_encoder_timestamps_ignore_unit_and_timezone() -> None:
    naive = pd.DataFrame({"t": pd.to_datetime(["1970-01-02", "1970-01-11"])})
    enc = TableEncoder(numeric="raw").fit(naive)
    np.testing.assert_allclose(enc.transform(naive)[:, 0], [1.0, 10.0])
    seconds = naive.astype({"t": "datetime64[s]"})
    np.testing.assert_allclose(enc.transform(seconds)[:, 0], [1.0, 10.0])
    aware = pd.DataFrame({"t": naive["t"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")})
    np.testing.assert_allclose(enc.transform(aware)[:, 0], [1.0, 10.0])


def test_encoder_caps_levels() -> None:
    X = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d", None]})
    enc = TableEncoder(numeric="raw", max_levels=2).fit(X)
    assert enc.levels("c") == ["a", "b"]
    assert MISSING_LEVEL not in enc.levels("c")
    assert enc.transform(pd.DataFrame({"c": ["d"]})).sum() == 0


def test_xgboost_reasons_add_up_at_large_scale() -> None:
    """float32 SHAP sums drift by ~1e-2 on targets near 1e6; the explained output (their
    float64 sum) must not, and stays within float32 rounding of xgboost's own prediction."""
    X, y, _ = make_task("regression")
    model = ReasoningModel("xgboost", "regression", {"n_estimators": 40}).fit(X, 1e6 * y + 5e6)
    base, contrib = model.contributions(X)
    summed = base + contrib.sum(axis=1)[:, 0]
    np.testing.assert_allclose(summed, model.predict(X), rtol=1e-6)
    head = X.head(20)
    for row, pred in zip(model.explain(head, top_k=None), model.predict(head), strict=True):
        assert row["output"] == pytest.approx(pred, rel=1e-6)
        total = row["base_value"] + sum(r["contribution"] for r in row["reasons"])
        assert abs(total - row["output"]) < 1e-6


def test_tree_path_contributions_go_to_the_split_columns() -> None:
    rng = np.random.default_rng(2)
    n = 300
    X = pd.DataFrame(
        {
            "age": rng.integers(20, 80, n),
            "color": rng.choice(["red", "blue"], n),
            "noise": rng.normal(size=n),
        }
    )
    y = 10.0 * (X["age"] > 40) + 5.0 * (X["color"] == "red")
    model = ReasoningModel("decision_tree", params={"max_depth": 2, "min_samples_leaf": 1})
    model.fit(X, y)
    rows = pd.DataFrame({"age": [60, 30], "color": ["blue", "red"], "noise": [0.0, 0.0]})
    base, contrib = model.contributions(rows)
    assert base[0] == pytest.approx(float(np.mean(y)))
    c = contrib[:, :, 0]
    assert (c[:, 2] == 0).all()  # never split on
    assert c[0, 0] > 0 > c[1, 0]  # age
    assert c[0, 1] < 0 < c[1, 1]  # color
    np.testing.assert_allclose(base[0] + c.sum(axis=1), [10.0, 5.0], atol=1e-9)


@pytest.mark.parametrize("task", TASKS)
def test_random_forest_outputs_are_the_forest_s(fitted, task: str) -> None:
    model, X, _ = fitted[("random_forest", task)]
    Z = model.encoder_.transform(X)
    forest = model.core_.estimator
    if task == "regression":
        np.testing.assert_allclose(model.predict(X), forest.predict(Z), atol=1e-12)
        return
    p = forest.predict_proba(Z)
    np.testing.assert_allclose(model.predict_proba(X), p, atol=0)
    raw = model.decision_function(X)
    expected = clipped_log_odds(p[:, 1]) if task == "binary" else clipped_log_odds(p)
    np.testing.assert_allclose(raw[:, 1] if task == "binary" else raw, expected, atol=1e-12)


def test_forest_of_one_tree_explains_like_the_tree() -> None:
    """The forest reuses the tree's Saabas map: one unbagged tree gives the same reasons."""
    X, y, _ = make_task("regression")
    params = {"n_estimators": 1, "max_features": 1.0, "max_depth": 4}
    model = ReasoningModel("random_forest", params=params, random_state=0).fit(X, y)
    forest = model.core_.estimator
    tree = TreeCore(model.task_, forest.estimators_[0])
    Z = model.encoder_.transform(X)
    bagged = ForestCore(model.task_, forest)
    np.testing.assert_allclose(bagged.base_value, tree.base_value, atol=1e-12)
    np.testing.assert_allclose(bagged.contributions(Z), tree.contributions(Z), atol=1e-12)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_forest_reasons_average_the_trees_and_skip_unused_columns(task: str) -> None:
    X, y, kind = make_task(task)
    X = X.assign(constant=1.0)  # never split on
    model = ReasoningModel("random_forest", kind, {"n_estimators": 8}, random_state=1).fit(X, y)
    base, contrib = model.contributions(X)
    assert (contrib[:, X.columns.get_loc("constant"), :] == 0).all()
    forest = model.core_.estimator
    Z = model.encoder_.transform(X)
    if task == "regression":
        # Average of the per-tree Saabas reasons (the trees are fitted on raw design columns).
        trees = [TreeCore(model.task_, t) for t in forest.estimators_]
        mean_design = np.mean([t.contributions(Z) for t in trees], axis=0)
        np.testing.assert_allclose(model._to_inputs(mean_design), contrib, atol=1e-9)
        assert base[0] == pytest.approx(np.mean([t.base_value[0] for t in trees]))
    else:
        # Averaged probability-space steps add up to the forest's probability; the log-odds
        # reasons are those steps times one positive factor per row and class.
        core = model.core_
        indicator, _ = forest.decision_path(Z)
        steps = (indicator @ core.step_matrix).toarray().reshape(len(Z), Z.shape[1], core.k)
        proba = forest.predict_proba(Z)[:, 1:] if task == "binary" else forest.predict_proba(Z)
        np.testing.assert_allclose(core.root_value + steps.sum(axis=1), proba, atol=1e-12)
        k = 1 if task == "binary" else 0
        design, p = core.contributions(Z)[:, :, k], steps[:, :, 0]
        moved = np.abs(p) > 1e-9
        ratio = np.where(moved, design / np.where(moved, p, 1.0), np.nan)
        assert (ratio[moved] > 0).all()
        rows = moved.sum(axis=1) > 0
        spread = np.nanmax(ratio[rows], axis=1) - np.nanmin(ratio[rows], axis=1)
        np.testing.assert_allclose(spread, 0.0, atol=1e-6 * np.nanmax(ratio))


def test_mlp_outputs_are_the_network_s(fitted) -> None:
    reg, X, _ = fitted[("mlp", "regression")]
    Z = reg.encoder_.transform(X)
    np.testing.assert_allclose(reg.predict(X), reg.core_.estimator.predict(Z), atol=1e-9)
    for task in ("binary", "multiclass"):
        clf, Xc, _ = fitted[("mlp", task)]
        Zc = clf.encoder_.transform(Xc)
        np.testing.assert_allclose(
            clf.predict_proba(Xc), clf.core_.estimator.predict_proba(Zc), atol=1e-9
        )


@pytest.mark.parametrize("activation", ["identity", "tanh", "relu"])
def test_integrated_gradients(activation: str) -> None:
    """Midpoint IG is exact for a linear network and nearly so otherwise; the fix is small."""
    X, y, _ = make_task("regression")
    model = ReasoningModel("mlp", params={"activation": activation, "max_iter": 200})
    model.fit(X, y)
    core: MlpCore = model.core_
    Z = model.encoder_.transform(X)
    raw = model.decision_function(X)
    ig = core.integrated_gradients(Z)[:, :, 0]
    gap = raw - core.base_value[0] - ig.sum(axis=1)
    spread = np.abs(raw - core.base_value[0])
    if activation == "identity":
        np.testing.assert_allclose(gap, 0.0, atol=1e-9)
    else:  # O(1/steps^2) where smooth; relu's kinks leave O(1/steps)
        assert np.median(np.abs(gap)) < (1e-4 if activation == "tanh" else 1e-2) * np.median(spread)
    contrib = core.contributions(Z)[:, :, 0]
    np.testing.assert_allclose(core.base_value[0] + contrib.sum(axis=1), raw, atol=1e-9)
    # The residual goes to the columns in proportion to |attribution|.
    moved = contrib - ig
    share = np.abs(ig) / np.abs(ig).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(moved, gap[:, None] * share, atol=1e-12)
    # The training mean is the baseline: it has no reasons.
    np.testing.assert_allclose(core.contributions(core.z_mean[None, :]), 0.0, atol=1e-12)


def test_mlp_params() -> None:
    mlp = get_family("mlp")
    assert mlp.resolve_params({"hidden_layer_sizes": [64, 32]})["hidden_layer_sizes"] == (64, 32)
    assert mlp.resolve_params({"hidden_layer_sizes": np.int64(16)})["hidden_layer_sizes"] == (16,)
    assert hidden_layers("64-32") == (64, 32) and hidden_layers((8.0,)) == (8,)
    for bad in [(), 0, 2.5, [32, -1], "wide", None]:
        with pytest.raises(ValueError, match="hidden_layer_sizes"):
            mlp.resolve_params({"hidden_layer_sizes": bad})
    with pytest.raises(ValueError, match="activation"):
        mlp.resolve_params({"activation": "gelu"})
    with pytest.raises(ValueError, match="max_features"):
        get_family("random_forest").resolve_params({"max_features": 0.0})
    X, y, _ = make_task("regression", n=120)
    model = ReasoningModel("mlp", params={"hidden_layer_sizes": [8, 4], "max_iter": 50}).fit(X, y)
    assert [w.shape[1] for w in model.core_.coefs] == [8, 4, 1]


@pytest.mark.parametrize("family", SAME_SERVER_FAMILIES)
def test_search_spaces_of_the_same_server_families(family: str) -> None:
    """Every sampled configuration is valid for the family (Tune hands over numpy scalars)."""
    space = search_space(family)
    assert set(space) <= set(get_family(family).defaults)
    rng = np.random.default_rng(0)
    for _ in range(20):
        config = {
            k: v.sample(random_state=rng) if hasattr(v, "sample") else v for k, v in space.items()
        }
        get_family(family).resolve_params(config)
