"""Generated tables whose targets have known pairwise interactions (bench/quality_vs_ebm.py).

An additive model (today's `gam`) cannot express a target's pairwise terms, a GA²M (EBM, or a
`gam` with pairs) can: these tables are where the two differ. Every generator is seeded and
needs no download. They live in bench/, not reasoning/, because only the benchmarks use them.

- `census`: binary classification (`income`), mixed numeric / categorical / boolean columns
  with missing values, Bernoulli labels drawn from a true log-odds with four pairwise terms.
- `prices`: regression (`price`), a target dominated by pairwise terms (numeric × numeric,
  numeric × categorical, numeric × boolean) plus Gaussian noise.
- `pairwise_inputs` / `pairwise_teacher`: a smooth function of five numeric columns with one
  explicit product term, and its exact gradient, for a DiffModel teacher.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OCCUPATIONS = ("executive", "professional", "tech_support", "sales", "clerical", "craft",
               "service", "transport")
OCCUPATION_LOGIT = dict(zip(OCCUPATIONS, (1.0, 0.9, 0.4, 0.2, -0.2, -0.1, -0.9, -0.5),
                            strict=True))
OCCUPATION_HOURS_SLOPE = dict(zip(OCCUPATIONS, (0.05, 0.04, 0.02, 0.03, 0.0, 0.01, -0.01, 0.0),
                                  strict=True))
"""Per occupation, what an extra weekly hour adds to the log-odds (hours × occupation)."""
MARITAL = ("never_married", "married", "divorced", "widowed")
MARITAL_LOGIT = {"never_married": -0.9, "married": 1.1, "divorced": -0.3, "widowed": -0.4}
REGIONS = ("north", "south", "east", "west", "central")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def census_logit(frame: pd.DataFrame) -> np.ndarray:
    """The true log-odds of `income == ">50K"`: main effects plus four pairwise terms."""
    age = frame["age"].to_numpy(float)
    edu = frame["education_years"].to_numpy(float)
    hours = frame["hours_per_week"].to_numpy(float)
    gain = frame["capital_gain"].to_numpy(float)
    occupation = frame["occupation"].astype(object)
    married = (frame["marital_status"] == "married").to_numpy()
    male = (frame["sex"] == "male").to_numpy()
    self_employed = frame["self_employed"].to_numpy(bool)
    main = (
        -3.9
        + 0.11 * (age - 18) - 0.0013 * (age - 18) ** 2          # rises, then flattens
        + 0.32 * (edu - 12)
        + 0.03 * (hours - 40)
        + 0.22 * np.log1p(gain) / np.log1p(1e4)
        + 1.4 * (gain > 5000)
        + occupation.map(OCCUPATION_LOGIT).fillna(-0.4).to_numpy(float)
        + frame["marital_status"].map(MARITAL_LOGIT).to_numpy(float)
        + 0.25 * male
        + 0.2 * frame["union_member"].to_numpy(bool)
    )
    pairs = (
        0.012 * (age - 40) * (edu - 12)                                   # numeric × numeric
        + occupation.map(OCCUPATION_HOURS_SLOPE).fillna(0.0).to_numpy(float)
        * (hours - 40)                                                    # numeric × categorical
        + np.where(married, np.where(male, 0.7, -0.6), 0.0)              # categorical × categorical
        + 1.2 * (self_employed & (gain > 0)) - 0.5 * self_employed        # boolean × numeric
    )
    return main + pairs


def census(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    """A census-style table: does a person earn over 50K? (`income`, ">50K" / "<=50K")."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    edu = np.clip(np.round(rng.normal(13, 2.6, n)), 6, 20).astype(int)
    hours = np.clip(np.round(rng.normal(40, 11, n)), 5, 90).astype(int)
    gain = np.where(rng.random(n) < 0.12, np.round(rng.lognormal(8.3, 1.0, n)), 0.0)
    frame = pd.DataFrame({
        "age": age,
        "education_years": edu,
        "hours_per_week": hours,
        "capital_gain": gain,
        "occupation": rng.choice(OCCUPATIONS, n,
                                 p=[0.12, 0.14, 0.08, 0.13, 0.14, 0.14, 0.15, 0.10]),
        "marital_status": rng.choice(MARITAL, n, p=[0.32, 0.47, 0.15, 0.06]),
        "sex": rng.choice(("female", "male"), n, p=[0.45, 0.55]),
        "self_employed": rng.random(n) < 0.12,
        "union_member": rng.random(n) < 0.15,
        "region": rng.choice(REGIONS, n),
    })
    # Missing values, as real census extracts have them (Adult's "?" occupation).
    frame["occupation"] = frame["occupation"].mask(rng.random(n) < 0.03)
    p = _sigmoid(census_logit(frame))
    frame["income"] = np.where(rng.random(n) < p, ">50K", "<=50K")
    return frame


DISTRICTS = ("center", "harbor", "old_town", "suburb", "industrial", "park_side")
RATE = dict(zip(DISTRICTS, (4.2, 3.6, 3.1, 2.2, 1.6, 2.8), strict=True))
"""Price per square metre by district, in thousands: area × district."""
TYPES = ("apartment", "house", "loft")
DISTANCE_PENALTY = {"apartment": 40.0, "house": 12.0, "loft": 60.0}
"""What a log-kilometre from the centre costs, by property type: distance × type."""
TYPE_BASE = {"apartment": 120.0, "house": 160.0, "loft": 145.0}


def price_of(frame: pd.DataFrame) -> np.ndarray:
    """The noiseless price: pairwise terms dominate the main effects."""
    area = frame["area_sqm"].to_numpy(float)
    quality = frame["quality"].to_numpy(float)
    age = frame["building_age"].fillna(frame["building_age"].median()).to_numpy(float)
    renovated = frame["renovated"].to_numpy(bool)
    kind = frame["property_type"].astype(object)
    return (
        frame["district"].map(RATE).to_numpy(float) * area                 # numeric × categorical
        + 0.22 * (quality - 5.5) * area                                    # numeric × numeric
        - np.where(renovated, 0.3, 1.6) * age                              # numeric × boolean
        - kind.map(DISTANCE_PENALTY).to_numpy(float)
        * np.log1p(frame["distance_km"].to_numpy(float))                   # numeric × categorical
        + kind.map(TYPE_BASE).to_numpy(float)
        + 25.0 * frame["has_parking"].to_numpy(bool)
        + 2.0 * frame["floor"].to_numpy(float)
        + 30.0 * np.sin(quality / 2.0)
    )


def prices(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    """A property price table (`price`, thousands) with strong pairwise interactions."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "area_sqm": np.round(rng.gamma(5.0, 20.0, n) + 25, 1),
        "quality": rng.integers(1, 11, n),
        "building_age": np.round(rng.uniform(0, 80, n), 1),
        "distance_km": np.round(rng.gamma(2.0, 3.0, n), 2),
        "district": rng.choice(DISTRICTS, n, p=[0.12, 0.15, 0.18, 0.25, 0.12, 0.18]),
        "property_type": rng.choice(TYPES, n, p=[0.55, 0.3, 0.15]),
        "renovated": rng.random(n) < 0.35,
        "has_parking": rng.random(n) < 0.45,
        "floor": rng.integers(0, 16, n),
    })
    frame["building_age"] = frame["building_age"].mask(rng.random(n) < 0.02)
    frame["price"] = np.round(price_of(frame) + rng.normal(0, 30.0, n), 2)
    return frame


PAIRWISE_COLUMNS = ("x1", "x2", "x3", "x4", "x5")
PAIR_WEIGHT = 1.5
"""a in f = main effects + a·x1·x2."""


def pairwise_inputs(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Five independent uniform[-1, 1] columns and `y`, the teacher's value plus a little
    noise (the label only evaluates: a DiffModel teacher gives the targets)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.uniform(-1, 1, (n, len(PAIRWISE_COLUMNS))),
                         columns=list(PAIRWISE_COLUMNS))
    frame["y"] = pairwise_teacher(frame)[0] + rng.normal(0, 0.05, n)
    return frame


def pairwise_teacher(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """f(x) = sin(2 x1) + 0.5 x2² + 0.8 x3 + 0.3 cos(3 x4) + a x1 x2 (x5 unused), and its
    exact Jacobian (n, 5) in PAIRWISE_COLUMNS order."""
    x = frame[list(PAIRWISE_COLUMNS)].to_numpy(float)
    x1, x2, x3, x4 = x[:, 0], x[:, 1], x[:, 2], x[:, 3]
    value = (np.sin(2 * x1) + 0.5 * x2**2 + 0.8 * x3 + 0.3 * np.cos(3 * x4)
             + PAIR_WEIGHT * x1 * x2)
    jac = np.zeros_like(x)
    jac[:, 0] = 2 * np.cos(2 * x1) + PAIR_WEIGHT * x2
    jac[:, 1] = x2 + PAIR_WEIGHT * x1
    jac[:, 2] = 0.8
    jac[:, 3] = -0.9 * np.sin(3 * x4)
    return value, jac


def additive_ceiling(frame: pd.DataFrame) -> float:
    """The best R² any additive model can reach on these rows: x1, x2 are independent and
    centred, so a·x1·x2 has no additive part and its whole variance is out of reach."""
    value, _ = pairwise_teacher(frame)
    x = frame[["x1", "x2"]].to_numpy(float)
    pure = PAIR_WEIGHT * (x[:, 0] - x[:, 0].mean()) * (x[:, 1] - x[:, 1].mean())
    return float(1.0 - pure.var() / value.var())
