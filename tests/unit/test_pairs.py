"""Pairwise interaction terms in the gam family (GA²M): chosen from the data, exact reasons
split evenly, analytic Jacobians, the Sobolev fit, soft targets, and what a card shows."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from reasoning.distill import diffmodel_fit
from reasoning.encoding import PAIR_WIDTH
from reasoning.interactions import rank_pairs
from reasoning.model import ReasoningModel
from reasoning.schemas import Explanation, ReasoningFitRequest
from reasoning.targets import teacher_logits
from reasoning.teachers import TeacherAnswer
from reasoning.training import prepare
from reasoning.validation import design_problem

N, N_TRAIN = 1000, 700


def interacting(n: int = N, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Every dtype, some values missing; the target's one strong interaction is a × b."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "a": rng.uniform(-2, 2, n),
        "b": rng.uniform(-2, 2, n),
        "c": rng.normal(size=n),
        "seg": rng.choice(["north", "south", "east"], n),
        "flag": rng.random(n) < 0.4,
        "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
    })
    X.loc[rng.random(n) < 0.05, "c"] = np.nan
    X.loc[rng.random(n) < 0.03, "seg"] = None
    signal = (np.sin(X["a"]) + 0.5 * X["c"].fillna(0.0) + 0.6 * (X["seg"] == "south")
              + 2.0 * X["a"] * X["b"])
    return X, signal.to_numpy() + rng.normal(0.0, 0.3, n)


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    return float(1.0 - ((y - pred) ** 2).mean() / y.var())


def labels(task: str, y: np.ndarray) -> tuple[str, np.ndarray]:
    if task == "regression":
        return "regression", y
    if task == "binary":
        return "classification", np.where(y > 0, "up", "down")
    return "classification", np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    return interacting()


@pytest.fixture(scope="module")
def models(data) -> dict[str, ReasoningModel]:
    X, y = data
    out = {}
    for task in ("regression", "binary", "multiclass"):
        kind, target = labels(task, y)
        out[task] = ReasoningModel("gam", kind, {"n_pairs": 4, "alpha": 0.1}).fit(
            X.iloc[:N_TRAIN], target[:N_TRAIN])
    return out


def test_the_strong_interaction_is_chosen_and_beats_the_additive_model(data, models):
    X, y = data
    model = models["regression"]
    assert model.encoder_.pair_names()[0] == ("a", "b")
    additive = ReasoningModel("gam", "regression", {"alpha": 0.1}).fit(X.iloc[:N_TRAIN],
                                                                      y[:N_TRAIN])
    held_out, truth = X.iloc[N_TRAIN:], y[N_TRAIN:]
    with_pairs, without = r2(truth, model.predict(held_out)), r2(truth,
                                                                  additive.predict(held_out))
    assert without < 0.5 and with_pairs > without + 0.4, (with_pairs, without)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_reasons_sum_to_the_output_with_pairs_and_split_evenly(data, models, task):
    X, _ = data
    model, rows = models[task], data[0].iloc[N_TRAIN:N_TRAIN + 40]
    assert model.encoder_.pairs_, "no pair was chosen"
    names = [f.name for f in model.features_]
    halves = model.explain(rows, top_k=None)
    apart = model.explain(rows, top_k=None, pairs=True)
    for split, whole in zip(halves, apart, strict=True):
        for row in (split, whole):
            total = row["base_value"] + sum(r["contribution"] for r in row["reasons"])
            assert total == pytest.approx(row["output"], abs=1e-6)
        assert whole["output"] == split["output"]
        own = {r["column"]: r["contribution"] for r in whole["reasons"] if "columns" not in r}
        pair_terms = [r for r in whole["reasons"] if "columns" in r]
        assert len(own) == len(names) and len(pair_terms) == len(model.encoder_.pairs_)
        expected = dict(own)
        for term in pair_terms:
            a, b = term["columns"]
            assert term["column"] == f"{a} & {b}"
            expected[a] += term["contribution"] / 2
            expected[b] += term["contribution"] / 2
        got = {r["column"]: r["contribution"] for r in split["reasons"]}
        assert got == pytest.approx(expected, abs=1e-12)
    # The contributions API and the even split agree too.
    base, contrib = model.contributions(rows)
    raw = model.decision_function(rows).reshape(len(rows), -1)
    assert np.allclose(base + contrib.sum(axis=1), raw, atol=1e-6)


def test_a_pair_reason_holds_both_values(data, models):
    rows = data[0].iloc[N_TRAIN:N_TRAIN + 3]
    row = models["regression"].explain(rows, top_k=None, pairs=True)[1]
    term = next(r for r in row["reasons"] if r.get("columns") == ["a", "b"])
    assert term["value"] == [rows["a"].iloc[1], rows["b"].iloc[1]]


def test_every_dtype_takes_part_and_missing_values_score():
    """Interactions of a boolean with a timestamp and of a category with a number are
    found; rows missing either value of a pair still score and still sum."""
    rng = np.random.default_rng(3)
    n = 1500
    X = pd.DataFrame({
        "flag": rng.random(n) < 0.5,
        "when": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), "D"),
        "seg": rng.choice(["x", "y", "z"], n),
        "size": rng.uniform(0, 10, n),
        "noise": rng.normal(size=n),
    })
    days = (X["when"] - X["when"].min()).dt.days.to_numpy() / 700
    y = (3.0 * X["flag"] * days + 0.8 * (X["seg"] == "y") * X["size"]
         + rng.normal(0, 0.2, n))
    model = ReasoningModel("gam", "regression", {"n_pairs": 2, "alpha": 0.01}).fit(X, y)
    assert {frozenset(p) for p in model.encoder_.pair_names()} == {
        frozenset({"flag", "when"}), frozenset({"seg", "size"})}
    holes = X.iloc[:4].astype(object).copy()
    holes.loc[holes.index[0], "flag"] = None
    holes.loc[holes.index[1], "when"] = None
    holes.loc[holes.index[2], "seg"] = None
    holes.loc[holes.index[3], "size"] = None
    for row in model.explain(holes, top_k=None, pairs=True):
        assert np.isfinite(row["output"])
        total = row["base_value"] + sum(r["contribution"] for r in row["reasons"])
        assert total == pytest.approx(row["output"], abs=1e-6)


def test_no_pairs_keeps_the_additive_model(data):
    X, y = data
    additive = ReasoningModel("gam", "regression", {"alpha": 0.1}).fit(X.iloc[:300], y[:300])
    assert additive.params_["n_pairs"] == 0 and additive.encoder_.pairs_ == ()
    assert all(c.kind != "pair" for c in additive.encoder_.design_)
    row = additive.explain(X.iloc[:1], pairs=True)[0]
    assert all("columns" not in r for r in row["reasons"])


def test_the_jacobian_of_pair_terms_matches_finite_differences(data, models):
    model, rows = models["multiclass"], data[0].iloc[N_TRAIN:N_TRAIN + 30]
    jac = model.jacobian(rows)
    step = 1e-5
    for j, column in enumerate(model.feature_names_in_):
        if column not in ("a", "b", "c"):
            assert np.isnan(jac[:, j, :]).all() == (column != "when")
            continue
        up, down = rows.copy(), rows.copy()
        up[column] = up[column] + step
        down[column] = down[column] - step
        numeric = (model.decision_function(up) - model.decision_function(down)) / (2 * step)
        present = rows[column].notna().to_numpy()
        assert np.allclose(jac[present, j, :], numeric[present], atol=1e-5), column


def test_a_diffmodel_teacher_with_an_interaction_is_matched():
    """Values and Jacobians of f = sin a + 2 a b + c²/2: a student with pair terms reaches
    what an additive one cannot (value R² and gradient cosine both)."""
    X, _ = interacting()
    X = X[["a", "b", "c", "seg"]]
    a, b, c = (X[k].to_numpy() for k in "abc")
    c0 = np.nan_to_num(c)
    f = np.sin(a) + 2 * a * b + 0.5 * c0**2
    jac = np.stack([np.cos(a) + 2 * b, 2 * a, c0, np.full(len(X), np.nan)], axis=1)
    fit, test = slice(0, N_TRAIN), slice(N_TRAIN, None)
    scores = {}
    for n_pairs in (0, 4):
        params = {"n_pairs": n_pairs, "n_knots": 10, "alpha": 1e-3}
        student = ReasoningModel(params=params).fit_sobolev(X.iloc[fit], f[fit], jac[fit])
        got = student.jacobian(X.iloc[test])[:, :3, 0]
        want, present = jac[test, :3], ~np.isnan(c[test])
        cosine = (got * want).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(
            want, axis=1)
        scores[n_pairs] = (r2(f[test], student.predict(X.iloc[test])),
                           float(cosine[present].mean()))
        if n_pairs:
            assert student.encoder_.pair_names()[0] == ("a", "b")
    assert scores[0][0] < 0.5 and scores[0][1] < 0.8, scores
    assert scores[4][0] > 0.999 and scores[4][1] > 0.995, scores


def test_soft_targets_take_pairs_and_reasons_still_sum(data):
    X, y = data
    p1 = 1 / (1 + np.exp(-2 * y))
    student = ReasoningModel("gam", "classification", {"n_pairs": 3}).fit_soft(
        X.iloc[:N_TRAIN], teacher_logits(p1[:N_TRAIN]), ["no", "yes"])
    assert ("a", "b") in student.encoder_.pair_names()
    rows = X.iloc[N_TRAIN:]
    m = student.decision_function(rows)[:, 1]
    target = np.log(p1[N_TRAIN:] / (1 - p1[N_TRAIN:]))
    assert r2(target, m) > 0.9
    for row in student.explain(rows.iloc[:5], top_k=None, pairs=True):
        total = row["base_value"] + sum(r["contribution"] for r in row["reasons"])
        assert total == pytest.approx(row["output"], abs=1e-6)


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_the_global_explanation_lists_pairs_with_their_surfaces(data, models, task):
    model = models[task]
    explanation = model.global_explanation(data[0].iloc[N_TRAIN:])
    pairs = Explanation(**explanation).pairs
    assert [tuple(p.columns) for p in pairs] != [] and len(pairs) == len(model.encoder_.pairs_)
    assert [p.importance for p in pairs] == sorted((p.importance for p in pairs), reverse=True)
    top = pairs[0]
    assert top.columns == ["a", "b"]
    surface = top.surface
    grid = np.array(surface["contribution"])
    assert grid.shape == (len(surface["x"]), len(surface["y"])) and grid.shape[0] > 5
    if task == "regression":
        # 2 a b, less what the columns' own terms hold: the corners of the surface agree.
        assert grid[0, 0] > 0 and grid[-1, -1] > 0 and grid[0, -1] < 0 and grid[-1, 0] < 0
    else:
        assert surface["classes"] == [0, 1, 2] and len(surface["by_class"]) == 3
        assert surface["class"] in surface["classes"]


def test_a_model_with_pairs_pickles_and_an_old_encoder_still_encodes(data, models):
    rows = data[0].iloc[N_TRAIN:N_TRAIN + 5]
    model = models["binary"]
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(again.predict_proba(rows), model.predict_proba(rows))
    old = ReasoningModel("gam", "regression").fit(data[0].iloc[:200], data[1][:200])
    del old.encoder_.__dict__["pairs_"]  # as pickled before pair terms existed
    assert old.encoder_.pairs_ == () and len(old.predict(rows)) == 5


def test_ranking_leaves_out_pairs_that_explain_only_noise():
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(2000, 6)), columns=list("uvwxyz"))
    features = ReasoningModel("gam").fit(X, rng.normal(size=2000)).features_
    noise = rng.normal(size=2000)
    assert len(rank_pairs(X, features, noise, np.ones(6), 15)) < 15
    signal = noise + 3 * X["u"] * X["z"]
    assert rank_pairs(X, features, signal, np.ones(6), 1) == [("u", "z")]


def test_the_design_bound_counts_pair_terms():
    from reasoning.column_stats import ColumnSummary

    summary = ColumnSummary(n_rows=100_000, n_present=100_000, minimum=0.0, maximum=1.0)
    dtypes = {"x": "float", "z": "float", "y": "float"}
    plain = design_problem(dtypes, "y", lambda _: summary, limit=1)
    paired = design_problem(dtypes, "y", lambda _: summary, limit=1, pairs=15)
    assert "× 32 columns" in plain  # two numbers of up to 16 columns
    # Two inputs make one pair at most, however many the search may try.
    assert f"× {32 + PAIR_WIDTH**2:,} columns" in paired and "1 pair terms" in paired


def test_pair_counts_are_checked():
    with pytest.raises(ValueError, match="n_pairs"):
        ReasoningModel("gam", params={"n_pairs": -1}).fit(*interacting(100))


class InteractingTeacher:
    """A DiffModel teacher in-process: f = sin a + 2 a b + c²/2, and its exact Jacobian."""

    url = "https://teacher.example/predict"

    def predict(self, frame: pd.DataFrame) -> TeacherAnswer:
        a, b, c = (frame[k].to_numpy(dtype=float) for k in "abc")
        return TeacherAnswer(np.sin(a) + 2 * a * b + 0.5 * c**2)

    def jacobians(self, frame: pd.DataFrame, url: str) -> np.ndarray:
        a, b, c = (frame[k].to_numpy(dtype=float) for k in "abc")
        return np.stack([np.cos(a) + 2 * b, 2 * a, c], axis=1)[:, None, :]


def test_a_diffmodel_job_fits_pairs_to_the_bar_of_the_benchmark():
    """The DiffModel path of a job (no search: its fixed parameters) reaches value R² 0.999
    and gradient cosine 0.995 on the held-out rows of a teacher with a pairwise term."""
    X, _ = interacting()
    frame = X[["a", "b"]].assign(c=X["c"].fillna(0.0), y=0.0)
    request = ReasoningFitRequest.model_validate({
        "dataset_id": "00000000-0000-0000-0000-000000000001",
        "task": {"task_kind": "regression", "label_column": "y"},
        "teacher_predict_url": InteractingTeacher.url,
        "teacher_get_grads_url": "https://teacher.example/grads"})
    data = prepare(frame, request)
    student, metrics, _ = diffmodel_fit(data, InteractingTeacher(), "https://teacher.example/grads",
                                     "gam", 42)
    assert ("a", "b") in student.encoder_.pair_names()
    assert metrics.fidelity["r2"] > 0.999 and metrics.fidelity["gradient_cosine"] > 0.995, (
        metrics.fidelity)
