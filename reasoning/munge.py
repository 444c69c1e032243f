"""MUNGE synthetic rows for distillation (Bucila, Caruana, Niculescu-Mizil 2006, Model Compression).

A student distilled on the real rows alone sees the teacher only where the labels already were;
MUNGE fills the space between real rows with plausible mixed-type rows the teacher can label.
Each synthetic row starts from a real row ``e`` and its nearest real neighbour ``e'``; per
attribute, with probability ``p``, a numeric/timestamp value becomes a draw from
``Normal(b, |a - b| / s)`` (``a`` the row's value, ``b`` the neighbour's: the row takes a value
*around the neighbour's*) and a categorical/boolean value becomes the neighbour's; otherwise the
row's value is kept.

Everything is vectorised per column over the whole batch: no Python loop per row. Output columns
keep the input dtypes exactly (integer columns stay integers, nullable ``Int64`` stays nullable,
timestamps keep their unit and time zone, strings/categoricals only take real levels).

Choices worth knowing:

- Distance for the neighbour search: numeric and timestamp columns are median-imputed and z-scored;
  categorical and boolean columns are one-hot (missing is its own level) scaled by 1/sqrt(2), so a
  level mismatch adds 1 to the squared distance, the same as a 1-sd numeric difference. At most
  ``MAX_LEVELS`` one-hot columns per column (rarer levels share one), which bounds the width.
- Missing values: if ``a`` or ``b`` is missing the attribute is copied from whichever side is taken
  (no NaN arithmetic), so each column's missing rate is roughly preserved.
- Perturbed columns are those whose pandas dtype is integer, float or datetime64. Every other dtype
  (bool, category, string, object, timedelta) is swapped as a whole value, so it never invents a
  value that was not in the real data; object columns holding numbers still count as numbers for
  the distance (via ``encoding.infer_dtype``).
- Sharding: shard ``i`` of a job draws from ``SeedSequence(random_state).spawn(...)[i]``, so N
  shards generated anywhere, in any order, give the same rows for the same seed and N.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.impute import SimpleImputer
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from reasoning.dtypes import DIFFERENTIABLE_DTYPES
from reasoning.encoding import infer_dtype, to_float

MAX_LEVELS = 50
"""One-hot columns per categorical column in the distance encoding (rarer levels share one)."""

_ONEHOT_SCALE = 1.0 / math.sqrt(2.0)
_INT64 = np.iinfo(np.int64)


def synthetic_size(n_real: int, factor: float = 5.0, cap: int = 100_000) -> int:
    """How many synthetic rows to make: about ``factor`` × the real rows, at most ``cap``."""
    if n_real < 0 or factor < 0 or cap < 0:
        raise ValueError("n_real, factor and cap must be non-negative")
    return int(min(cap, round(factor * n_real)))


def shard(n_total: int, n_shards: int) -> list[tuple[int, int]]:
    """Split ``n_total`` rows into ``n_shards`` contiguous ``(start, stop)`` ranges.

    Sizes differ by at most one (the first shards get the extra rows); with fewer rows than
    shards the last ranges are empty, so shard ``i`` always means the same slice for a given N.
    """
    if n_total < 0:
        raise ValueError("n_total must be non-negative")
    if n_shards < 1:
        raise ValueError("n_shards must be at least 1")
    base, extra = divmod(n_total, n_shards)
    sizes = np.full(n_shards, base, dtype=np.int64)
    sizes[:extra] += 1
    stops = np.cumsum(sizes)
    starts = stops - sizes
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def shard_seed(random_state: int, shard_index: int) -> np.random.SeedSequence:
    """The seed of one shard: child ``shard_index`` of ``SeedSequence(random_state).spawn``.

    Built directly from the spawn key, so a worker needs neither the other shards nor N.
    """
    if shard_index < 0:
        raise ValueError("shard_index must be non-negative")
    return np.random.SeedSequence(random_state, spawn_key=(shard_index,))


def neighbour_index(df: pd.DataFrame) -> np.ndarray:
    """For every real row, the position of its nearest other real row (Euclidean, see module doc).

    Computed once per table; pass it to ``munge``/``munge_shard`` so shards do not redo it. A
    table with a single row is its own neighbour (MUNGE then returns copies of it).
    """
    n = len(df)
    if n <= 1 or df.shape[1] == 0:
        return np.arange(n, dtype=np.intp)
    z = _distance_encoding(df)
    nn = NearestNeighbors(n_neighbors=1).fit(z)
    # With X=None sklearn leaves each point out of its own neighbour list.
    return nn.kneighbors(return_distance=False)[:, 0].astype(np.intp)


def munge(
    df: pd.DataFrame,
    n_samples: int,
    p: float = 0.5,
    s: float = 10.0,
    random_state: int = 42,
    *,
    neighbours: np.ndarray | None = None,
) -> pd.DataFrame:
    """``n_samples`` synthetic rows like ``df`` (same columns and dtypes, a fresh RangeIndex).

    Rows start from the real rows in rounds, each round a seeded permutation of all of them.
    ``neighbours`` is ``neighbour_index(df)`` if already known.
    """
    rng = np.random.default_rng(random_state)
    return _generate(df, n_samples, p, s, rng, neighbours)


def munge_shard(
    df: pd.DataFrame,
    n_samples: int,
    shard_index: int,
    p: float = 0.5,
    s: float = 10.0,
    random_state: int = 42,
    *,
    neighbours: np.ndarray | None = None,
) -> pd.DataFrame:
    """One shard's rows: ``n_samples`` (its size from ``shard``) drawn with ``shard_seed``.

    Shards are independent streams, so a job's rows depend only on the seed and the shard plan.
    """
    rng = np.random.default_rng(shard_seed(random_state, shard_index))
    return _generate(df, n_samples, p, s, rng, neighbours)


def _generate(
    df: pd.DataFrame,
    n_samples: int,
    p: float,
    s: float,
    rng: np.random.Generator,
    neighbours: np.ndarray | None,
) -> pd.DataFrame:
    if n_samples < 0:
        raise ValueError("n_samples must be non-negative")
    if not 0.0 <= p <= 1.0:
        raise ValueError("p must be in [0, 1]")
    if not s > 0:
        raise ValueError("s must be positive")
    n = len(df)
    if n_samples == 0:
        return df.iloc[:0].reset_index(drop=True)
    if n == 0:
        raise ValueError("cannot generate rows from an empty table")
    if neighbours is None:
        neighbours = neighbour_index(df)
    neighbours = np.asarray(neighbours, dtype=np.intp)
    if neighbours.shape != (n,):
        raise ValueError(f"neighbours must have one entry per row ({n}), got {neighbours.shape}")

    rounds = -(-n_samples // n)
    base = rng.permuted(np.tile(np.arange(n, dtype=np.intp), (rounds, 1)), axis=1)
    base = base.ravel()[:n_samples]
    nb = neighbours[base]

    columns: dict[int, pd.Series] = {}
    for j in range(df.shape[1]):
        swap = rng.random(n_samples) < p
        noise = rng.standard_normal(n_samples)
        columns[j] = _munge_column(df.iloc[:, j], base, nb, swap, noise, s)
    out = pd.DataFrame(columns, index=pd.RangeIndex(n_samples))
    out.columns = df.columns
    return out


def _munge_column(
    col: pd.Series,
    base: np.ndarray,
    nb: np.ndarray,
    swap: np.ndarray,
    noise: np.ndarray,
    s: float,
) -> pd.Series:
    """One column of the batch: take a (keep) or b (swap), then jitter swapped numeric values."""
    out = col.take(np.where(swap, nb, base)).reset_index(drop=True)
    dtype = col.dtype
    is_datetime = ptypes.is_datetime64_any_dtype(dtype)
    is_int = ptypes.is_integer_dtype(dtype) and not ptypes.is_bool_dtype(dtype)
    if not (is_datetime or is_int or ptypes.is_float_dtype(dtype)):
        return out
    missing = col.isna().to_numpy(dtype=bool)
    rows = np.flatnonzero(swap & ~missing[base] & ~missing[nb])
    if rows.size == 0:
        return out
    a, b, z = base[rows], nb[rows], noise[rows]
    if is_datetime:
        index = pd.DatetimeIndex(col)
        ticks = index.asi8  # int64 in the column's unit, UTC-based, NaT never reached here
        lo, hi = _float_bounds(_INT64.min + 1, _INT64.max)  # min is NaT
        new = _jitter_lattice(ticks[a], ticks[b], z, s, lo, hi).astype(np.int64)
        stamps = pd.DatetimeIndex(new.view(f"M8[{index.unit}]"))
        if index.tz is not None:
            stamps = stamps.tz_localize("UTC").tz_convert(index.tz)
        out.iloc[rows] = stamps
        return out
    np_dtype = np.dtype(getattr(dtype, "numpy_dtype", dtype))
    values = col.to_numpy(dtype=np_dtype, na_value=0 if is_int else np.nan)
    if is_int:
        info = np.iinfo(np_dtype)
        lo, hi = _float_bounds(int(info.min), int(info.max))
        new = _jitter_lattice(values[a], values[b], z, s, lo, hi)
    else:
        af, bf = values[a].astype(np.float64), values[b].astype(np.float64)
        new = bf + z * np.abs(af - bf) / s
    out.iloc[rows] = new.astype(np_dtype)
    return out


def _jitter_lattice(
    a: np.ndarray, b: np.ndarray, z: np.ndarray, s: float, lo: float, hi: float
) -> np.ndarray:
    """Normal(b, |a - b| / s) rounded to the integer lattice and kept inside the dtype's range."""
    af, bf = a.astype(np.float64), b.astype(np.float64)
    return np.clip(np.rint(bf + z * np.abs(af - bf) / s), lo, hi)


def _float_bounds(lo: int, hi: int) -> tuple[float, float]:
    """Float bounds inside [lo, hi], so a clipped float casts back without overflow."""
    flo, fhi = float(lo), float(hi)
    if flo < lo:
        flo = float(np.nextafter(flo, np.inf))
    if fhi > hi:
        fhi = float(np.nextafter(fhi, -np.inf))
    return flo, fhi


def _distance_encoding(df: pd.DataFrame) -> np.ndarray:
    """Standardized numerics next to scaled one-hot levels (see module doc), float64 (n, width)."""
    numeric: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    for j in range(df.shape[1]):
        col = df.iloc[:, j]
        kind = infer_dtype(col)
        if kind in DIFFERENTIABLE_DTYPES:  # numbers on a line: standardized
            numeric.append(to_float(col, kind))
        else:
            # factorize gives -1 for missing: its own level.
            codes.append(pd.factorize(col, use_na_sentinel=True)[0])
    parts: list[np.ndarray] = []
    if numeric:
        scale = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
        )
        parts.append(scale.fit_transform(np.column_stack(numeric)))
    if codes:
        onehot = OneHotEncoder(
            max_categories=MAX_LEVELS,
            handle_unknown="infrequent_if_exist",
            sparse_output=False,
            dtype=np.float64,
        )
        parts.append(onehot.fit_transform(np.column_stack(codes)) * _ONEHOT_SCALE)
    return np.ascontiguousarray(np.hstack(parts), dtype=np.float64)
