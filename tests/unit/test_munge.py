"""MUNGE: dtypes kept exactly, plausible values, the paper's swap semantics, seeds and shards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from reasoning.munge import (
    _distance_encoding,
    munge,
    munge_shard,
    neighbour_index,
    shard,
    shard_seed,
    synthetic_size,
)
from reasoning.synthetic import houses


def mixed_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """houses() plus one column of every other dtype the service meets, with missing values."""
    rng = np.random.default_rng(seed)
    df = houses(n, seed=seed)
    df["price32"] = df["price"].astype("float32")
    df["rooms_u8"] = df["rooms"].astype("uint8")
    df["rooms_nullable"] = df["rooms"].astype("Int64").mask(rng.random(n) < 0.1)
    df["ratio_nullable"] = pd.Series(rng.random(n), dtype="Float64").mask(rng.random(n) < 0.1)
    df["listed_berlin"] = (
        df["listed_at"]
        .dt.tz_localize("UTC")
        .dt.tz_convert("Europe/Berlin")
        .astype("datetime64[ms, Europe/Berlin]")
        .mask(rng.random(n) < 0.05)
    )
    df["listed_ns"] = df["listed_at"].astype("datetime64[ns]")
    df["hood_cat"] = df["neighborhood"].astype("category")
    df["garden_nullable"] = df["has_garden"].astype("boolean").mask(rng.random(n) < 0.1)
    df["floor_obj"] = pd.Series(rng.integers(0, 5, n), dtype=object)
    return df


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return mixed_table()


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(df, index=False).to_numpy()


def test_every_dtype_is_kept(table: pd.DataFrame) -> None:
    out = munge(table, 1500)
    assert len(out) == 1500
    assert list(out.columns) == list(table.columns)
    assert isinstance(out.index, pd.RangeIndex) and out.index[0] == 0
    pd.testing.assert_series_equal(out.dtypes, table.dtypes)
    assert str(out["listed_berlin"].dtype) == "datetime64[ms, Europe/Berlin]"
    assert list(out["hood_cat"].cat.categories) == list(table["hood_cat"].cat.categories)
    assert out["rooms_nullable"].isna().any()  # nullable stays nullable, NA included


def test_numeric_values_stay_in_a_plausible_range(table: pd.DataFrame) -> None:
    out = munge(table, 4000, p=0.8)
    k = 3.0
    for name in ["area_sqm", "rooms", "built_year", "price", "price32", "rooms_nullable"]:
        real = table[name].astype("float64")
        synth = out[name].astype("float64").dropna()
        lo, hi = real.min() - k * real.std(), real.max() + k * real.std()
        assert synth.between(lo, hi).all(), name
    for name in ["listed_at", "listed_berlin"]:
        days = (table[name] - table[name].min()) / pd.Timedelta(days=1)
        synth = ((out[name] - table[name].min()) / pd.Timedelta(days=1)).dropna()
        assert synth.between(days.min() - k * days.std(), days.max() + k * days.std()).all()
    assert out["rooms_u8"].between(0, 255).all()


def test_discrete_columns_only_take_real_values(table: pd.DataFrame) -> None:
    out = munge(table, 3000, p=0.9)
    for name in [
        "neighborhood",
        "segment",
        "hood_cat",
        "has_garden",
        "garden_nullable",
        "floor_obj",
    ]:
        real = set(table[name].dropna().tolist())
        assert set(out[name].dropna().tolist()) <= real, name


def test_missing_rate_is_roughly_preserved(table: pd.DataFrame) -> None:
    out = munge(table, 6000)
    for name in ["area_sqm", "neighborhood", "rooms_nullable", "listed_berlin", "garden_nullable"]:
        assert abs(out[name].isna().mean() - table[name].isna().mean()) < 0.04, name


def test_deterministic_for_a_seed(table: pd.DataFrame) -> None:
    assert_frame_equal(munge(table, 700, random_state=3), munge(table, 700, random_state=3))
    assert not munge(table, 700, random_state=3).equals(munge(table, 700, random_state=4))


def test_p_zero_cycles_through_copies_of_real_rows(table: pd.DataFrame) -> None:
    out = munge(table, 2 * len(table), p=0.0)
    real, synth = row_hashes(table), row_hashes(out)
    counts = pd.Series(synth).value_counts()
    # Two full rounds: every real row exactly twice (the table has no duplicate rows).
    assert len(set(real)) == len(table)
    assert set(counts.index) == set(real) and (counts == 2).all()


def test_larger_p_changes_more_attributes(table: pd.DataFrame) -> None:
    real_rows = row_hashes(table)
    real_prices = set(table["price"].tolist())
    copies, new_prices = [], []
    for p in (0.1, 0.5, 0.9):
        out = munge(table, 4000, p=p)
        copies.append(np.isin(row_hashes(out), real_rows).mean())
        new_prices.append((~out["price"].isin(real_prices)).mean())
    assert copies[0] > copies[1] > copies[2]
    assert new_prices[0] < new_prices[1] < new_prices[2]
    assert abs(new_prices[1] - 0.5) < 0.05  # each attribute is perturbed with probability p


def test_swap_takes_a_value_around_the_neighbours() -> None:
    # Two rows, each the other's neighbour: with p=1 a row takes the other's level and a value
    # from Normal(other's value, |a - b| / s).
    df = pd.DataFrame({"x": [0.0, 10.0], "c": ["a", "b"], "k": pd.array([0, 100], "Int64")})
    out = munge(df, 20_000, p=1.0, s=10.0, random_state=1)
    near_b = out[out["c"] == "b"]
    near_a = out[out["c"] == "a"]
    assert len(near_b) == len(near_a) == 10_000
    assert near_b["x"].mean() == pytest.approx(10.0, abs=0.05)
    assert near_b["x"].std() == pytest.approx(1.0, rel=0.05)
    assert near_a["x"].mean() == pytest.approx(0.0, abs=0.05)
    assert near_a["k"].astype(float).std() == pytest.approx(10.0, rel=0.05)
    assert near_b["k"].astype(float).mean() == pytest.approx(100.0, abs=0.5)


def test_missing_side_is_copied_not_computed() -> None:
    df = pd.DataFrame(
        {"x": [np.nan, 5.0, 5.5], "t": pd.to_datetime([None, "2020-01-01", "2020-01-02"])}
    )
    nb = np.array([1, 0, 1])
    out = munge(df, 3000, p=1.0, neighbours=nb)
    # Row 1 always takes row 0's missing value; row 0 takes row 1's 5.0 exactly (a missing).
    assert out["x"].isna().mean() == pytest.approx(1 / 3, abs=0.03)
    assert (out["x"] == 5.0).mean() == pytest.approx(1 / 3, abs=0.03)
    assert out["t"].isna().sum() == out["x"].isna().sum()


def test_integers_are_clipped_to_their_dtype_not_wrapped() -> None:
    df = pd.DataFrame({"v": np.array([-128, 127], dtype=np.int8)})
    out = munge(df, 2000, p=1.0, s=0.01)
    assert out["v"].dtype == np.int8
    assert out["v"].isin([-128, 127]).mean() > 0.95


def test_neighbours_exclude_the_row_itself() -> None:
    df = pd.DataFrame({"x": [0.0, 1.0, 10.0, 11.0, 11.0]})
    nb = neighbour_index(df)
    assert nb[0] == 1 and nb[1] == 0 and nb[2] in (3, 4)
    assert {nb[3], nb[4]} == {4, 3}  # duplicates find each other, not themselves
    assert neighbour_index(df.iloc[:1]).tolist() == [0]


def test_a_level_mismatch_counts_like_one_standard_deviation() -> None:
    df = pd.DataFrame({"x": [0.0, 0.0, 1.0, -1.0], "c": ["a", "b", "a", "a"]})
    z = _distance_encoding(df)
    sd = np.std(df["x"])
    assert np.linalg.norm(z[0] - z[1]) == pytest.approx(1.0)  # only the level differs
    assert np.linalg.norm(z[0] - z[2]) == pytest.approx(1.0 / sd)  # 1 unit = 1/sd sd's


def test_synthetic_size() -> None:
    assert synthetic_size(100) == 500
    assert synthetic_size(50_000) == 100_000
    assert synthetic_size(1000, factor=2.5, cap=10_000) == 2500
    assert synthetic_size(0) == 0
    with pytest.raises(ValueError):
        synthetic_size(-1)


def test_shard_ranges_cover_the_total() -> None:
    ranges = shard(10, 3)
    assert ranges == [(0, 4), (4, 7), (7, 10)]
    assert shard(2, 4) == [(0, 1), (1, 2), (2, 2), (2, 2)]
    big = shard(100_003, 7)
    sizes = [b - a for a, b in big]
    assert sum(sizes) == 100_003 and max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        shard(10, 0)


def test_shard_seed_is_the_spawned_child() -> None:
    children = np.random.SeedSequence(7).spawn(4)
    for i, child in enumerate(children):
        assert np.array_equal(shard_seed(7, i).generate_state(4), child.generate_state(4))


def test_shards_together_are_reproducible(table: pd.DataFrame) -> None:
    n_total = synthetic_size(len(table))
    nb = neighbour_index(table)

    def run(order: list[int]) -> pd.DataFrame:
        plan = shard(n_total, 4)
        parts = {
            i: munge_shard(table, plan[i][1] - plan[i][0], i, random_state=11, neighbours=nb)
            for i in order
        }
        return pd.concat([parts[i] for i in range(4)], ignore_index=True)

    first, again = run([0, 1, 2, 3]), run([3, 1, 0, 2])
    assert len(first) == n_total
    assert_frame_equal(first, again)
    assert not munge_shard(table, 50, 0, neighbours=nb).equals(
        munge_shard(table, 50, 1, neighbours=nb)
    )


def test_ten_thousand_rows_in_one_vectorised_batch() -> None:
    df = mixed_table(10_000, seed=1)
    out = munge(df, synthetic_size(len(df)))
    assert len(out) == 50_000
    pd.testing.assert_series_equal(out.dtypes, df.dtypes)


def test_edge_cases(table: pd.DataFrame) -> None:
    empty = munge(table, 0)
    assert len(empty) == 0
    pd.testing.assert_series_equal(empty.dtypes, table.dtypes)
    one = munge(table.iloc[[5]], 3, p=1.0)
    assert np.isin(row_hashes(one), row_hashes(table.iloc[[5]])).all()
    for bad in ({"p": -0.1}, {"p": 1.5}, {"s": 0.0}):
        with pytest.raises(ValueError):
            munge(table, 10, **bad)
    with pytest.raises(ValueError):
        munge(table.iloc[:0], 10)
    with pytest.raises(ValueError):
        munge(table, 10, neighbours=np.zeros(3, dtype=int))
    assert len(munge(table, len(table) + 1)) == len(table) + 1  # a partial last round
